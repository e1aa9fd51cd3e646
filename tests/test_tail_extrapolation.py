"""The unobserved tail: extrapolation by the realised/assumed ratio (hand-computed) and its use in ``propose``."""

import math

import polars as pl
import pytest

from som_models.calibration import propose
from som_models.extrapolation import DRIFT_FLOOR, between_year_sd, extrapolate
from som_models.parameters import ParameterError, parse_parameter_set


def test_hand_computed_small_case():
    # assumed 10, 8, 6, 4; years 1–2 observed as 5 ± 1 and 4 ± 1.
    ext = extrapolate([10, 8, 6, 4], {1: (5.0, 1.0), 2: (4.0, 1.0)})
    # ρ = (5 + 4)/(10 + 8) = 0.5; se_ρ = (1 + 1)/18 (delta method, correlation-free bound)
    assert ext.ratio == pytest.approx(0.5) and ext.ratio_se == pytest.approx(2 / 18)
    # year ratios 0.5 (se 0.1) and 0.5 (se 0.125) agree: τ̂ = 0, so τ = the floor 0.1
    assert ext.drift_estimate == 0 and ext.drift == DRIFT_FLOOR
    # v0 = max(se_ρ², 0.1², 0.125²) = 0.015625; σ_max = 1
    assert ext.base_variance == pytest.approx(0.125**2) and ext.se_floor == 1.0
    y3, y4 = ext.years
    # year 3: a = 6, h = 1: ĉ = 3, σ̂² = max(36 · 0.015625, 1) + 1 · (0.1 · 6)² = 1 + 0.36
    assert (y3.consequence_year, y3.distance, y3.value) == (3, 1, pytest.approx(3.0))
    assert y3.se == pytest.approx(math.sqrt(1.36))
    # year 4: a = 4, h = 2: ĉ = 2, σ̂² = max(16 · 0.015625, 1) + 2 · (0.1 · 4)² = 1 + 0.32
    assert (y4.consequence_year, y4.distance, y4.value) == (4, 2, pytest.approx(2.0))
    assert y4.se == pytest.approx(math.sqrt(1.32))
    assert ext.observed == (1, 2) and ext.unobserved == (3, 4)


def test_between_year_sd_by_hand():
    # ratios 0.2 and 0.8, SE 0.1 each: w = 100, 100; mean 0.5; Q = 2 · 100 · 0.09 = 18;
    # C = 200 − 20000/200 = 100; τ̂² = (18 − 1)/100 = 0.17
    assert between_year_sd([0.2, 0.8], [0.1, 0.1]) == pytest.approx(math.sqrt(0.17))
    assert between_year_sd([0.5], [0.1]) == 0.0
    # disagreeing years widen the drift beyond the floor
    ext = extrapolate([1.0, 1.0, 1.0], {1: (0.2, 0.1), 2: (0.8, 0.1)})
    assert ext.drift == pytest.approx(math.sqrt(0.17)) and ext.drift_estimate == ext.drift


def test_extrapolated_years_are_wider_than_every_observed_year_and_widen_with_distance():
    assumed = [-20, -18, -16, -14, -12, -12, -12, -12]
    observed = {1: (-6.0, 0.96), 2: (-6.1, 0.87), 3: (-6.8, 0.98), 4: (-7.7, 1.19)}
    ext = extrapolate(assumed, observed)
    for y in ext.years:
        for j, (_, s) in observed.items():
            assert y.se > s  # in units
            assert y.se / abs(y.assumed) > s / abs(assumed[j - 1])  # relative to the assumption
    same_assumed = [y.se for y in ext.years if y.assumed == -12]
    assert same_assumed == sorted(same_assumed) and len(set(same_assumed)) == len(same_assumed)


def test_years_before_and_between_observed_years_use_the_nearest_distance():
    ext = extrapolate([4, 4, 4, 4, 4], {2: (2.0, 0.5), 4: (2.0, 0.5)})
    assert {y.consequence_year: y.distance for y in ext.years} == {1: 1, 3: 1, 5: 1}


def test_no_ratio_when_the_assumed_window_sums_to_zero_and_zero_years_are_not_scaled():
    ext = extrapolate([2, -2, 5], {1: (1.0, 0.1), 2: (-1.0, 0.1)})
    assert ext.ratio is None and ext.years == () and ext.unobserved == (3,)
    assert "undefined" in ext.rule
    ext = extrapolate([2, 0, 5], {1: (1.0, 0.1)})
    assert [y.consequence_year for y in ext.years] == [3] and ext.unobserved == (2, 3)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="outside the profile"):
        extrapolate([1, 2], {3: (1.0, 0.1)})
    with pytest.raises(ValueError, match="not usable"):
        extrapolate([1, 2], {1: (1.0, -0.1)})
    with pytest.raises(ValueError, match="drift_floor"):
        extrapolate([1, 2], {1: (1.0, 0.1)}, drift_floor=-1)


def _params(units, se=None):
    doc = {
        "intervention": "x", "target_group": "t", "start_year": 2018, "horizon_years": 10, "price_year": 2024,
        "cohorts": [{"year": 2018, "participants": 100}],
        "success_measure": {"name": "ok", "outcome": "y", "rule": "zero"},
        "success_rate": {"value": 0.2, "se": 0.05},
        "costs": [{"course_year": 1, "payer": "kommune", "amount": -1000}],
        "consequences": {"y": {"kind": "causal", "units": units, **({"se": se} if se else {})}},
        "prices": {"y": {"kommune": 100}},
    }
    return parse_parameter_set(doc)


def _estimates(success, consequence):
    rows = [{"outcome": "ok", "estimand": "event", "event_time": 1, "estimate": success[0], "se": success[1],
             "n_treated": 500}]
    rows += [{"outcome": "y", "estimand": "event", "event_time": e, "estimate": est, "se": se, "n_treated": 500}
             for e, (est, se) in consequence.items()]
    return pl.DataFrame(rows)


def test_propose_replaces_the_tail_by_the_extrapolation_and_marks_it_unverified():
    params = _params([10.0, 8.0, 6.0, 4.0], se=[2.0, 2.0, 2.0, 2.0])
    # success 0.5 ± 0 (exact) → c_j = ATT / 0.5: years 1–2 realised 5 ± 1 and 4 ± 1 (the hand case above)
    est = _estimates((0.5, 1e-12), {1: (2.5, 0.5), 2: (2.0, 0.5)})
    doc = propose(params, est, policy="replace").document
    entry = doc["consequences"]["y"]
    assert entry["units"] == pytest.approx([5.0, 4.0, 3.0, 2.0], rel=1e-5)
    assert entry["se"] == pytest.approx([1.0, 1.0, math.sqrt(1.36), math.sqrt(1.32)], rel=1e-5)
    assert entry["unverified"] == [3, 4]
    assert entry["extrapolation"]["rule"] == "ratio" and entry["extrapolation"]["ratio"] == pytest.approx(0.5)
    assert "years 3–4 without data extrapolated (unverified)" in entry["source"]
    parsed = parse_parameter_set(doc)
    assert parsed.consequence("y").unverified == (3, 4) and parsed.unverified() == {"y": (3, 4)}
    assert parsed.describe_unverified() == ("unverified consequence years (no data; extrapolated from the observed "
                                            "years): y 3–4")


def test_propose_precision_weighted_combines_the_extrapolation_with_the_prior():
    params = _params([10.0, 8.0, 6.0, 4.0], se=[2.0, 2.0, 2.0, 2.0])
    est = _estimates((0.5, 1e-12), {1: (2.5, 0.5), 2: (2.0, 0.5)})
    p = propose(params, est, policy="precision_weighted")
    entry = p.document["consequences"]["y"]
    # year 3: prior 6 ± 2, extrapolation 3 ± √1.36 → (6/4 + 3/1.36)/(1/4 + 1/1.36)
    w_a, w_r = 1 / 4, 1 / 1.36
    assert entry["units"][2] == pytest.approx((w_a * 6 + w_r * 3) / (w_a + w_r), rel=1e-5)
    assert entry["se"][2] == pytest.approx((w_a + w_r) ** -0.5, rel=1e-5)
    (change,) = [c for c in p.changes if c["parameter"] == "consequences.y"]
    assert [y["consequence_year"] for y in change["years"]] == [1, 2]
    assert [y["consequence_year"] for y in change["extrapolated"]] == [3, 4] and change["unverified"] == [3, 4]


def test_a_fully_observed_profile_has_no_unverified_years_and_a_kept_item_keeps_its_marks():
    params = _params([10.0, 8.0], se=[2.0, 2.0])
    doc = propose(params, _estimates((0.5, 1e-12), {1: (2.5, 0.5), 2: (2.0, 0.5)})).document
    assert "unverified" not in doc["consequences"]["y"]
    marked = _params([10.0, 8.0, 6.0], se=[2.0, 2.0, 2.0]).to_dict()
    marked["consequences"]["y"]["unverified"] = [3]
    kept = propose(parse_parameter_set(marked), _estimates((0.5, 1e-12), {1: (2.5, 0.5)}), items=()).document
    assert kept["consequences"]["y"]["unverified"] == [3]


def test_schema_validates_the_unverified_mark():
    doc = _params([1.0, 2.0, 3.0]).to_dict()
    for bad, message in (([4], "must be ≤ 3"), ([2, 2], "increasing and listed once"), ("3", "expected a list"),
                         ([0], "must be ≥ 1")):
        doc["consequences"]["y"]["unverified"] = bad
        with pytest.raises(ParameterError, match=message):
            parse_parameter_set(doc)
    doc["consequences"]["y"]["unverified"] = [2, 3]
    doc["consequences"]["y"]["extrapolation"] = "ratio"
    with pytest.raises(ParameterError, match="extrapolation: expected a mapping"):
        parse_parameter_set(doc)
