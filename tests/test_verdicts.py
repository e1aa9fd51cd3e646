"""Verdict labels, tests and sentences, and the update rule, on hand-made estimates (numbers checkable on paper)."""

import json
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from som_models.calibration import combine, propose
from som_models.estimators import ESTIMATES_SCHEMA
from som_models.parameters import parse_parameter_set
from som_models.verdicts import LABELS, PathCovariance, VerdictSettings, holm, judge

PARAMS = parse_parameter_set({
    "intervention": "x", "target_group": "tg", "start_year": 2020, "horizon_years": 5, "price_year": 2024,
    "cohorts": [{"year": 2020, "participants": 100}],
    "success_measure": {"name": "ok", "outcome": "nights", "rule": "zero"},
    "success_rate": {"value": 0.2, "se": 0.05},
    "costs": [{"course_year": 1, "payer": "kommune", "amount": -1000}],
    "consequences": {"nights": {"units": [-100, -50], "se": [10, 10]}},
    "prices": {"nights": {"kommune": 1}},
})
# Assumed path: 0.2 × (−100, −50) = (−20, −10) in consequence years 1, 2 (event times 1, 2); mean −15.


def table(sr=(0.2, 0.02), nights=((-20, 2), (-10, 2)), overall=None, n=500, n_by_e=None):
    rows = [{"outcome": "ok", "estimand": "event", "event_time": 1, "estimate": sr[0], "se": sr[1], "n_treated": n}]
    for e, (est, se) in enumerate(nights, start=1):
        rows.append({"outcome": "nights", "estimand": "event", "event_time": e, "estimate": est, "se": se,
                     "n_treated": (n_by_e or {}).get(e, n)})
    if overall is None:  # as the estimator reports it: the mean of the event-time effects, se for independent years
        k = len(nights)
        overall = (sum(x for x, _ in nights) / k, math.sqrt(sum(s**2 for _, s in nights)) / k)
    rows.append({"outcome": "nights", "estimand": "overall", "event_time": None, "estimate": overall[0], "se": overall[1],
                 "n_treated": n})
    for r in rows:
        r.update(ci_low=r["estimate"] - 1.96 * r["se"], ci_high=r["estimate"] + 1.96 * r["se"], group=None, time=None,
                 n_control=1000)
    return pl.DataFrame(rows, schema=ESTIMATES_SCHEMA)


def run(t, pre=None, cov=None, tested=None, inference=None, **kw):
    return {v.assumption: v for v in judge(PARAMS, t, pre or {"ok": 0.5, "nights": 0.5}, VerdictSettings(**kw),
                                           covariance=cov, tested=tested, inference=inference)}


def labels(t, pre=None, cov=None, **kw):
    return {a: v.label for a, v in run(t, pre, cov, **kw).items()}


def test_consistent_when_realised_matches():
    got = run(table())
    assert {a: v.label for a, v in got.items()} == {"success_rate": "consistent", "effect_path:nights": "consistent"}
    path = got["effect_path:nights"]
    assert path.assumed == pytest.approx(-15) and path.realised == pytest.approx(-15)
    assert path.evidence["level_source"].startswith("the estimator's overall row")
    assert path.sentence.startswith("Consistent:") and "consequence years 1–2" in path.sentence
    assert all(label in LABELS for label in labels(table()).values())


def test_refuted_overestimated_and_underestimated():
    assert labels(table(nights=((-5, 2), (-5, 2))))["effect_path:nights"] == "refuted-overestimated"
    assert labels(table(nights=((5, 2), (5, 2))))["effect_path:nights"] == "refuted-overestimated"  # opposite sign
    assert labels(table(nights=((-30, 2), (-30, 2))))["effect_path:nights"] == "refuted-underestimated"
    assert labels(table(sr=(0.05, 0.01)))["success_rate"] == "refuted-overestimated"
    v = run(table(nights=((-5, 2), (-5, 2))))["effect_path:nights"]
    # z = (−5 − (−15)) / (√8 / 2) = 10 / √2
    assert v.statistic == pytest.approx(10 / math.sqrt(2)) and v.p_value == pytest.approx(2 * stats.norm.sf(10 / math.sqrt(2)))
    assert v.sentence.startswith("Refuted:") and "overestimated" in v.sentence and "Holm-adjusted p < 0.001" in v.sentence


def test_inconclusive_cases():
    assert labels(table(nights=((-8, 8.5), (-8, 8.5))))["effect_path:nights"] == "inconclusive"  # CI holds 0 and −15
    wide = run(table(nights=((-15, 7), (-15, 7))))["effect_path:nights"]  # se 4.95: TOST p = Φ(−7.5/4.95) ≈ 0.065
    assert wide.label == "inconclusive" and "too imprecise to tell" in wide.sentence
    pre = run(table(), pre={"ok": 0.5, "nights": 0.001})["effect_path:nights"]
    assert pre.label == "inconclusive" and pre.evidence["gate"] == "pretrend" and "before the start" in pre.sentence
    few = run(table(n=10))
    assert {v.label for v in few.values()} == {"inconclusive"}
    assert "only 10 treated persons" in few["success_rate"].sentence
    none = run(table().filter(pl.col("outcome") == "ok"))["effect_path:nights"]
    assert none.label == "inconclusive" and none.realised is None and "could not be estimated" in none.sentence


def test_pretrend_gate_is_not_adjusted_across_outcomes():
    # Each outcome's pre-trend test is judged at alpha on its own: 0.03 < 0.05 fails the gate even though a Holm
    # adjustment over the two outcomes (the former rule) would have lifted it to 0.06.
    pre = run(table(), pre={"ok": 0.5, "nights": 0.03})["effect_path:nights"]
    assert pre.label == "inconclusive" and pre.evidence["gate"] == "pretrend" and "p = 0.03 < 0.05" in pre.sentence
    assert labels(table(), pre={"ok": 0.5, "nights": 0.06})["effect_path:nights"] == "consistent"
    assert labels(table(), pre={"ok": 0.5, "nights": float("nan")})["effect_path:nights"] == "consistent"  # no pre-periods


def test_holm_adjustment():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([]) == []
    # z = 2.1 alone would refute at 5 %; with a second test Holm lifts p above 0.05.
    d = 2.1 * math.sqrt(8) / 2
    t = table(nights=((-20 + d, 2), (-10 + d, 2)), sr=(0.2 + 2.1 * 0.02, 0.02))
    got = run(t)
    assert got["effect_path:nights"].p_value < 0.05 < got["effect_path:nights"].p_adjusted
    assert got["effect_path:nights"].label != "refuted-overestimated"
    # Gated assumptions are not in the family: with the success rate failing its pre-trend the path is tested alone.
    alone = run(t, pre={"ok": 0.0001, "nights": 0.9})["effect_path:nights"]
    assert alone.p_adjusted == pytest.approx(alone.p_value) and alone.label == "refuted-overestimated"


def test_consistent_means_equivalence_shown_by_tost():
    # Realised −12, se of the mean 3: not refuted, and the former `precision` rule (half-width 5.9 ≤ δ = 7.5)
    # called it consistent; but the 90 % interval of the difference (3 ± 4.9) reaches beyond the 7.5 margin,
    # so equivalence is not shown: inconclusive.
    t = table(nights=((-12, 3 * math.sqrt(2)), (-12, 3 * math.sqrt(2))))  # se of the mean = 3
    got = run(t)["effect_path:nights"]
    assert got.label == "inconclusive" and "cannot show" in got.sentence
    # by hand: d = 3, δ = 7.5, p = max(1 − Φ((3 + 7.5)/3), Φ((3 − 7.5)/3)); Holm over 2 (the success rate's
    # TOST p is ≈ 0): the larger p is multiplied by 1.
    p_tost = max(stats.norm.sf(10.5 / 3), stats.norm.cdf(-4.5 / 3))
    assert got.evidence["tost"]["p_value"] == pytest.approx(p_tost)
    assert got.evidence["tost"]["p_adjusted"] == pytest.approx(p_tost) and got.evidence["tost"]["equivalent"] is False
    close = table(nights=((-14, 1.5 * math.sqrt(2)), (-14, 1.5 * math.sqrt(2))))
    ok = run(close)["effect_path:nights"]
    assert ok.label == "consistent" and ok.evidence["tost"]["equivalent"] and "lies within ±50 %" in ok.sentence
    # the TOST interval printed in the sentence lies within the margin (−22.5, −7.5)
    assert -22.5 < ok.evidence["tost"]["ci_low"] < ok.evidence["tost"]["ci_high"] < -7.5


def test_equivalence_is_holm_adjusted_like_the_refutations():
    # One path alone: TOST p = Φ((|d| − δ)/se) with d = 0, δ = 7.5, se = 4 → Φ(−1.875) ≈ 0.0304 < 0.05: consistent.
    t = table(nights=((-20, 4 * math.sqrt(2)), (-10, 4 * math.sqrt(2))))
    alone = run(t, tested=["effect_path:nights"])["effect_path:nights"]
    assert alone.evidence["tost"]["p_value"] == pytest.approx(stats.norm.cdf(-7.5 / 4))
    assert alone.label == "consistent" and alone.evidence["family_size"] == 1
    # With an uncertain success rate in the family (TOST p = Φ(−0.1/0.06) ≈ 0.048), the path's smaller p is
    # compared at α/2 = 0.025 < 0.0304 (Holm-adjusted 2 · 0.0304): equivalence is shown for neither.
    weak = run(table(sr=(0.2, 0.06), nights=((-20, 4 * math.sqrt(2)), (-10, 4 * math.sqrt(2)))))
    assert weak["effect_path:nights"].evidence["tost"]["p_adjusted"] == pytest.approx(
        2 * stats.norm.cdf(-7.5 / 4)) and weak["effect_path:nights"].label == "inconclusive"
    assert weak["success_rate"].label == "inconclusive"


def test_the_precision_rule_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="'precision' is no longer accepted: a narrow interval is not a test"):
        VerdictSettings(consistency="precision")
    assert VerdictSettings().consistency == "tost"


def test_printed_interval_is_the_one_the_decision_used():
    # z = 2.1 on the path alone: refuted at 5 %, and the 95 % interval excludes −15.
    d = 2.1 * math.sqrt(8) / 2
    t = table(nights=((-20 + d, 2), (-10 + d, 2)), sr=(0.2 + 2.1 * 0.02, 0.02))
    alone = run(t, tested=["effect_path:nights"])["effect_path:nights"]
    assert alone.label == "refuted-overestimated" and not alone.ci_low <= -15 <= alone.ci_high
    assert alone.evidence["ci_level"].startswith("95 %")
    # Both tested: Holm makes both "not significantly different"; the printed intervals (Holm step 1 − α/2,
    # 97.5 %) contain the assumptions, though the 95 % pointwise ones do not.
    both = run(t)
    for v, assumed in ((both["effect_path:nights"], -15), (both["success_rate"], 0.2)):
        assert "not significantly different" in v.sentence and v.ci_low <= assumed <= v.ci_high
        assert v.evidence["ci_level"].startswith("97.5 %") and "97.5 % CI" in v.sentence
        assert not v.evidence["pointwise_ci"]["ci_low"] <= assumed <= v.evidence["pointwise_ci"]["ci_high"]
        assert v.ci_high - v.ci_low == pytest.approx(2 * stats.norm.ppf(1 - 0.025 / 2) * v.evidence["se"])


def test_holm_divisors_match_the_rejections():
    from som_models.verdicts import holm_divisors

    # p = (0.01, 0.04, 0.03), α = 0.05: 0.01 ≤ 0.05/3 rejected (h = 3); 0.03 > 0.05/2 stops (h = 2 for the rest).
    assert holm_divisors([0.01, 0.04, 0.03], 0.05) == [3, 2, 2]
    assert holm_divisors([0.001, 0.002, 0.004], 0.05) == [3, 2, 1]
    assert holm_divisors([], 0.05) == []


def test_only_the_tested_assumptions_form_the_family():
    d = 2.1 * math.sqrt(8) / 2
    t = table(nights=((-20 + d, 2), (-10 + d, 2)), sr=(0.2 + 2.1 * 0.02, 0.02))
    got = run(t, tested=("effect_path:nights",))
    assert set(got) == {"effect_path:nights"}  # the success rate gets no verdict
    assert got["effect_path:nights"].p_adjusted == pytest.approx(got["effect_path:nights"].p_value)
    with pytest.raises(ValueError, match="unknown assumption.*effect_path:beds.*has success_rate, effect_path:nights"):
        run(t, tested=["effect_path:beds"])


def test_covariance_gives_the_level_se_and_the_joint_path_test():
    # Two years correlated at 0.9: the mean's se is larger than with independence.
    se, rho = 2.0, 0.9
    v = [[se**2, rho * se**2], [rho * se**2, se**2]]
    cov = {"nights": PathCovariance.from_array([1, 2], v)}
    got = run(table(), cov=cov)["effect_path:nights"]
    assert got.evidence["se"] == pytest.approx(math.sqrt(sum(map(sum, v))) / 2)
    assert "covariance" in got.evidence["level_source"]
    # A path with the right mean but the wrong shape: (−8, −20) against (−20, −10).
    shaped = table(nights=((-8, 2), (-20, 2)))
    mean_only = run(shaped, cov=cov)["effect_path:nights"]
    assert mean_only.label == "consistent"
    w = np.array([12.0, -10.0]) @ np.linalg.inv(np.array(v)) @ np.array([12.0, -10.0])
    assert mean_only.evidence["shape_test"]["statistic"] == pytest.approx(w)
    assert mean_only.evidence["shape_test"]["p_value"] == pytest.approx(stats.chi2.sf(w, 2))
    joint = run(shaped, cov=cov, path_test="joint")["effect_path:nights"]
    assert joint.label == "refuted-overestimated"  # the mean −14 is smaller in magnitude than −15
    assert joint.test.startswith("Wald χ²(2)") and joint.statistic == pytest.approx(w)
    assert "χ² =" in joint.sentence and "test of the whole path" in joint.sentence


def test_without_covariance_the_path_test_is_bonferroni():
    got = run(table(nights=((-8, 2), (-20, 2))), path_test="joint")["effect_path:nights"]
    # per-year z: (−8 + 20)/2 = 6 and (−20 + 10)/2 = −5; p = 2 · 2 · (1 − Φ(6))
    assert got.test.startswith("Bonferroni over 2 consequence years")
    assert got.statistic == pytest.approx(6.0) and got.p_value == pytest.approx(4 * stats.norm.sf(6.0))
    assert got.label == "refuted-overestimated"


def test_overall_row_that_does_not_match_the_path_is_not_used():
    t = table(overall=(-5, 0.1))  # inconsistent with the event rows (mean −15)
    got = run(t)["effect_path:nights"]
    assert got.realised == pytest.approx(-15)
    assert got.evidence["se"] == pytest.approx(2.0)  # conservative: the mean of the event-time se
    assert got.evidence["level_source"].startswith("mean of the event-time ATTs, conservative")


def test_event_times_with_too_few_persons_are_left_out_of_the_path():
    got = run(table(nights=((-20, 2), (40, 2)), n_by_e={2: 5}))["effect_path:nights"]
    assert got.label == "consistent" and got.realised == pytest.approx(-20) and got.assumed == pytest.approx(-20)
    assert [p["used"] for p in got.evidence["path"]] == [True, False]
    assert got.evidence["consequence_years"] == [1] and "consequence year 1 " in got.sentence


def test_years_beyond_the_profile_assume_no_effect():
    t = table(nights=((-20, 2), (-10, 2), (0.5, 2)))
    got = run(t)["effect_path:nights"]
    assert [p["assumed"] for p in got.evidence["path"]] == [-20, -10, 0.0]
    assert got.evidence["path"][2]["beyond_profile"] is True


def test_zero_assumption():
    zero = parse_parameter_set({**PARAMS.to_dict(), "consequences": {"nights": {"units": [0, 0]}}})
    refuted = {v.assumption: v for v in judge(zero, table(), {}, VerdictSettings())}["effect_path:nights"]
    assert refuted.label == "refuted-underestimated"
    quiet = {v.assumption: v for v in judge(zero, table(nights=((0.5, 2), (-0.5, 2))), {}, VerdictSettings())}
    assert quiet["effect_path:nights"].label == "inconclusive" and "zero assumption" in quiet["effect_path:nights"].sentence


def test_records_are_plain_json():
    for v in judge(PARAMS, table(), {"ok": 0.5, "nights": 0.5}, VerdictSettings(),
                   covariance={"nights": PathCovariance.from_array([1, 2], [[4, 0], [0, 4]])}):
        rec = v.to_record()
        assert json.loads(json.dumps(rec, allow_nan=False))["label"] == v.label
        assert set(rec) == {"assumption", "outcome", "label", "test", "statistic", "p_value", "p_adjusted", "margin",
                            "assumed", "realised", "ci_low", "ci_high", "sentence", "evidence"}


def test_settings_are_validated():
    for bad in ({"alpha": 0.7}, {"margin": 0}, {"min_persons": 0}, {"consistency": "vibes"}, {"consistency": "precision"},
                {"path_test": "each"}):
        with pytest.raises(ValueError):
            VerdictSettings(**bad)
    with pytest.raises(ValueError, match="2×2"):
        PathCovariance.from_array([1, 2], [[1.0]])


def test_precision_weighted_update_by_hand():
    value, se = combine(0.2, 0.05, 0.1, 0.05, "precision_weighted", 0.5)
    assert value == pytest.approx(0.15) and se == pytest.approx(0.05 / 2**0.5)
    assert combine(0.2, None, 0.1, 0.1, "precision_weighted", 0.5) == pytest.approx((0.15, 0.1 / 2**0.5))
    assert combine(0.2, 0.05, 0.1, 0.05, "replace", 0.5) == (0.1, 0.05)
    with pytest.raises(ValueError, match="unknown update policy"):
        combine(0.2, 0.05, 0.1, 0.05, "average", 0.5)


def test_proposal_updates_success_rate_and_consequences():
    p = propose(PARAMS, table(sr=(0.1, 0.02), nights=((-20, 2), (-10, 2))))
    doc = p.document
    # success rate: (0.2/0.05² + 0.1/0.02²) / (1/0.05² + 1/0.02²)
    w1, w2 = 1 / 0.05**2, 1 / 0.02**2
    assert doc["success_rate"]["value"] == pytest.approx((0.2 * w1 + 0.1 * w2) / (w1 + w2), rel=1e-5)
    # consequence year 1: realised −20/0.1 = −200 (delta-method se 200·√(0.1² + 0.2²)) against prior −100 (se 10)
    se_c = 200 * math.sqrt(0.1**2 + 0.2**2)
    expected = (-100 / 10**2 + -200 / se_c**2) / (1 / 10**2 + 1 / se_c**2)
    assert doc["consequences"]["nights"]["units"][0] == pytest.approx(expected, rel=1e-5)
    year = next(c for c in p.changes if c["parameter"] == "consequences.nights")["years"][0]
    assert year["method"] == "ATT / realised success rate" and year["realised"] == pytest.approx(-200)
    assert PARAMS.success_rate.value == 0.2  # the input is never modified
    parse_parameter_set(doc)


def test_proposal_respects_the_evaluations_choice_of_items():
    kept = propose(PARAMS, table(sr=(0.1, 0.02)), items=())
    assert kept.document["consequences"] == PARAMS.to_dict()["consequences"]
    assert {"parameter": "consequences.nights", "kept": "the evaluation does not ask to re-estimate it"} in kept.changes
    with pytest.raises(ValueError, match="unknown consequence item"):
        propose(PARAMS, table(), items=("beds",))
    few = propose(PARAMS, table(sr=(0.1, 0.02), n_by_e={1: 3, 2: 3}), min_persons=20)
    assert {"parameter": "consequences.nights", "kept": "no realised consequence year"} in few.changes


def test_proposal_uses_external_consequence_estimates():
    external = pl.DataFrame({"item": ["nights"], "consequence_year": [2], "estimate": [-80.0], "se": [10.0]})
    p = propose(PARAMS, table(sr=(0.1, 0.02)), consequence_estimates=external, policy="replace")
    # year 1 has no estimate: extrapolated by the realised/assumed ratio −80/−50 = 1.6 and marked unverified
    assert p.document["consequences"]["nights"]["units"] == [-160.0, -80.0]
    assert p.document["consequences"]["nights"]["unverified"] == [1]
    (change,) = [c for c in p.changes if c["parameter"] == "consequences.nights"]
    assert change["years"] == [{"consequence_year": 2, "from": -50, "to": -80.0, "realised": -80.0,
                                "realised_se": 10.0, "method": "external estimate"}]
    with pytest.raises(ValueError, match="missing column"):
        propose(PARAMS, table(), consequence_estimates=external.drop("se"))


def test_no_realised_success_rate_leaves_the_parameters_unchanged():
    p = propose(PARAMS, table().filter(pl.col("outcome") != "ok"))
    assert p.changes == () and p.document == PARAMS.to_dict() and "unchanged" in p.reason
