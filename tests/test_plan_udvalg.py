"""Value of information per udvalg: the kommune NPV per committee and draw (exact for the linear parts, checked
against the projection frame at the point values), adding up to the kommune NPV in every draw."""

import numpy as np
import pytest
import yaml

from som_models.parameters import parse_parameter_set
from som_models.planning.voi import committee_attribution, projection_draws, value_of_information
from som_models.projection import monte_carlo, project
from som_models.projection.engine import base_inputs, compile_calculation
from som_reference import asset


def _params(name: str):
    return parse_parameter_set(yaml.safe_load(asset("parameters", f"{name}.yaml").read_text()))


@pytest.mark.parametrize("name", ["housing_first_demo", "ips_employment_demo"])
def test_committee_attribution_is_the_projection_split_at_the_point_values(name):
    # housing first: the default committee split; IPS: a committee cost line, the refusion staircase and tax
    params = _params(name)
    c = compile_calculation(params)
    exact, expensive = committee_attribution(c, *base_inputs(c), None)
    point = project(params).npv_by_committee
    assert float(expensive[0]) == 0.0
    assert set(exact) == set(point) - {"unassigned"}
    for k, v in exact.items():
        assert float(v[0]) == pytest.approx(point[k], rel=1e-9)


def test_udvalg_draws_add_up_to_the_kommune_npv_and_carry_the_expensive_case_refusion():
    params = _params("children_placement_demo")  # expensive-case refusion: split at the projection's proportions
    inputs, npv, committees = projection_draws(params, draws=3000, seed=5, committees=True)
    assert np.array_equal(npv, monte_carlo(params, draws=3000, seed=5).npv_draws)
    assert set(committees) >= set(project(params).npv_by_committee)
    assert np.allclose(np.sum(list(committees.values()), axis=0), npv[:, 0])


def test_value_of_information_per_udvalg():
    params = _params("housing_first_demo")
    voi = value_of_information(params, draws=4000, seed=2)
    keys = set(project(params).npv_by_committee)
    assert set(voi["udvalg"]["keys"]) == keys
    for entry in voi["by_assumption"].values():
        assert set(entry["udvalg"]) == keys
        for k, e in entry["udvalg"].items():  # EVPPI is bounded by the udvalg's EVPI (within Monte Carlo error)
            assert 0 <= e["evppi"] <= voi["udvalg"]["evpi"][k] + 3 * e["se"] + 1e-6
