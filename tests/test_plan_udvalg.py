"""Value of information per udvalg: the NPV per udvalg account (payer/udvalg of the udvalg ledger) and draw —
the same draws as the projection's Monte Carlo, the ledger's own attribution (equal to the deterministic ledger at
the point values), the accounts of each payer adding up to the payer in every draw."""

import numpy as np
import pytest
import yaml

from som_models.parameters import parse_parameter_set
from som_models.planning.voi import projection_draws, value_of_information
from som_models.projection import ledger, monte_carlo
from som_models.projection.engine import base_inputs, compile_calculation
from som_models.projection.ledger import account_flows, label
from som_reference import asset


def _params(name: str):
    return parse_parameter_set(yaml.safe_load(asset("parameters", f"{name}.yaml").read_text()))


@pytest.mark.parametrize("name", ["housing_first_demo", "ips_employment_demo"])
def test_account_draws_at_the_point_values_are_the_ledger(name):
    # housing first: the default udvalg mapping; IPS: a committee cost line, the refusion staircase and tax
    params = _params(name)
    c = compile_calculation(params)
    _, accts, Y = account_flows(c, *base_inputs(c))
    led = ledger(params)
    for a, acct in enumerate(accts):
        key = label(*acct)
        assert float(Y[0, a, :] @ c.factors) == pytest.approx(led.npv.get(key, 0.0), rel=1e-9, abs=1e-6)


@pytest.mark.parametrize("name", ["children_placement_demo", "youth_crime_demo"])
def test_udvalg_draws_add_up_to_each_payer_in_every_draw(name):
    params = _params(name)  # children placement: the expensive-case refusion, split over its items by the ledger
    inputs, npv, accounts = projection_draws(params, draws=3000, seed=5, committees=True)
    assert np.array_equal(npv, monte_carlo(params, draws=3000, seed=5).npv_draws)
    for p, payer in enumerate(("kommune", "region", "stat")):
        own = [v for k, v in accounts.items() if k.startswith(payer + "/")]
        total = np.sum(own, axis=0) if own else np.zeros(len(npv))
        assert np.allclose(total, npv[:, p], rtol=1e-9, atol=1e-3)


def test_value_of_information_per_udvalg():
    params = _params("housing_first_demo")
    voi = value_of_information(params, draws=4000, seed=2)
    keys = set(voi["udvalg"]["keys"])
    assert keys == set(monte_carlo(params, draws=4000, seed=2).udvalg)  # the accounts with a stake
    assert any(k.startswith("kommune/") for k in keys) and any(k.startswith("stat/") for k in keys)
    for entry in voi["by_assumption"].values():
        assert set(entry["udvalg"]) == keys
        for k, e in entry["udvalg"].items():  # EVPPI is bounded by the udvalg's EVPI (within Monte Carlo error)
            assert 0 <= e["evppi"] <= voi["udvalg"]["evpi"][k] + 3 * e["se"] + 1e-6
