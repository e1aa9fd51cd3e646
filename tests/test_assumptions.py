"""The assumption ↔ estimand mapping shared by verdicts and calibration (som_models.assumptions)."""

import copy
import math
from pathlib import Path

import pytest
import yaml

from som_models.assumptions import AssumptionMap, EstimandKey, units_per_success
from som_models.parameters import parse_parameter_set

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def doc():
    return yaml.safe_load((ROOT / "assets" / "parameters" / "housing_first_demo.yaml").read_text())


def test_mapping_of_the_demo_parameter_set(doc):
    params = parse_parameter_set(doc)
    amap = AssumptionMap.from_params(params)
    k, s = params.course_years, params.success_rate.value
    assert amap.success_estimand == EstimandKey(params.success_measure.name, "event", k)
    for cons in params.consequences:
        n = len(cons.units)
        assert [amap.event_time(j) for j in (1, n)] == [k, k - 1 + n]
        assert amap.consequence_estimand(cons.item, 2) == EstimandKey(cons.item, "event", k + 1)
        assert [amap.implied_effect(cons.item, k - 1 + j) for j in range(1, n + 1)] == [s * u for u in cons.units]
        assert amap.implied_effect(cons.item, k + n) == 0.0 and amap.beyond_profile(cons.item, k + n)
        assert not amap.beyond_profile(cons.item, k - 1 + n)
        assert amap.first_year_effect(cons.item) == s * cons.units[0]
    assert [amap.in_consequence_years(e) for e in (None, k - 1, k)] == [False, False, True]
    assert all(amap.consequence_year(amap.event_time(j)) == j for j in range(1, 6))


def test_course_length_moves_the_event_times(doc):
    doc = copy.deepcopy(doc)
    for entry in doc["consequences"].values():  # a course profile has one value per course year
        entry["course"]["units"], entry["course"]["se"] = [*entry["course"]["units"], 0, 0], [*entry["course"]["se"], 1, 1]
    longer = parse_parameter_set({**doc, "course_years": 3})
    amap = AssumptionMap.from_params(longer)
    assert amap.success_estimand.event_time == 3 and amap.event_time(1) == 3 and amap.consequence_year(5) == 3
    assert [amap.course_estimand("shelter_nights", k).event_time for k in (1, 2, 3)] == [0, 1, 2]


def test_units_per_success_delta_method():
    c, se = units_per_success(-2.0, 0.5, 0.25, 0.05)
    assert c == -8.0 and se == pytest.approx(8.0 * math.sqrt(0.25**2 + 0.2**2))
    assert units_per_success(0.0, 0.5, 0.25, 0.05) == (0.0, 2.0)  # zero effect: se = σ_ATT / r_s


def test_a_parameter_set_without_success_measure_is_refused(doc):
    bare = parse_parameter_set({k: v for k, v in doc.items() if k != "success_measure"})
    with pytest.raises(ValueError, match="has no success_measure"):
        AssumptionMap.from_params(bare)
