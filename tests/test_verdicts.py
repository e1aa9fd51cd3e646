"""Verdict labels and the update rule on hand-made estimates."""

import polars as pl
import pytest

from som_models.calibration import combine, propose
from som_models.estimators import ESTIMATES_SCHEMA
from som_models.parameters import parse_parameter_set
from som_models.verdicts import VerdictSettings, holm, judge

PARAMS = parse_parameter_set({
    "intervention": "x", "target_group": "tg", "start_year": 2020, "horizon_years": 5, "price_year": 2024,
    "cohorts": [{"year": 2020, "participants": 100}],
    "success_measure": {"name": "ok", "outcome": "nights", "rule": "zero"},
    "success_rate": {"value": 0.2, "se": 0.05},
    "costs": [{"course_year": 1, "payer": "kommune", "amount": -1000}],
    "consequences": {"nights": {"units": [-100, -50], "se": [10, 10]}},
    "prices": {"nights": {"kommune": 1}},
})


def table(sr=(0.2, 0.02), nights=((-20, 2), (-10, 2)), overall=(-15, 1.5), n=500):
    rows = [{"outcome": "ok", "estimand": "event", "event_time": 1, "estimate": sr[0], "se": sr[1], "n_treated": n}]
    for e, (est, se) in enumerate(nights, start=1):
        rows.append({"outcome": "nights", "estimand": "event", "event_time": e, "estimate": est, "se": se, "n_treated": n})
    rows.append({"outcome": "nights", "estimand": "overall", "event_time": None, "estimate": overall[0], "se": overall[1], "n_treated": n})
    for r in rows:
        r.update(ci_low=r["estimate"] - 1.96 * r["se"], ci_high=r["estimate"] + 1.96 * r["se"], group=None, time=None, n_control=1000)
    return pl.DataFrame(rows, schema=ESTIMATES_SCHEMA)


def labels(t, pre=None, **kw):
    return {v.assumption: v.label for v in judge(PARAMS, t, pre or {"ok": 0.5, "nights": 0.5}, VerdictSettings(**kw))}


def test_consistent_when_realised_matches():
    # Assumed path: 0.2 × (−100, −50) = (−20, −10), mean −15.
    assert labels(table()) == {"success_rate": "consistent", "effect_path:nights": "consistent"}


def test_refuted_overestimated_and_underestimated():
    assert labels(table(overall=(-5, 1.5)))["effect_path:nights"] == "refuted-overestimated"
    assert labels(table(overall=(5, 1.5)))["effect_path:nights"] == "refuted-overestimated"  # opposite sign
    assert labels(table(overall=(-30, 1.5)))["effect_path:nights"] == "refuted-underestimated"
    assert labels(table(sr=(0.05, 0.01)))["success_rate"] == "refuted-overestimated"


def test_inconclusive_cases():
    assert labels(table(overall=(-8, 6)))["effect_path:nights"] == "inconclusive"  # CI holds 0 and −15
    assert labels(table(overall=(-15, 5)))["effect_path:nights"] == "inconclusive"  # wider than ±50 %
    assert labels(table(), pre={"ok": 0.5, "nights": 0.001})["effect_path:nights"] == "inconclusive"  # pre-trends
    assert set(labels(table(n=10)).values()) == {"inconclusive"}  # too few persons


def test_holm_adjustment():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    # z = 2.1 alone would refute at 5 %; with a second test Holm lifts p above 0.05.
    t = table(overall=(-15 + 2.1 * 1.5, 1.5), sr=(0.2 + 2.1 * 0.02, 0.02))
    assert labels(t)["effect_path:nights"] != "refuted-overestimated"


def test_precision_weighted_update_by_hand():
    value, se = combine(0.2, 0.05, 0.1, 0.05, "precision_weighted", 0.5)
    assert value == pytest.approx(0.15) and se == pytest.approx(0.05 / 2**0.5)
    assert combine(0.2, None, 0.1, 0.1, "precision_weighted", 0.5) == pytest.approx((0.15, 0.1 / 2**0.5))
    assert combine(0.2, 0.05, 0.1, 0.05, "replace", 0.5) == (0.1, 0.05)


def test_proposal_updates_success_rate_and_consequences():
    p = propose(PARAMS, table(sr=(0.1, 0.02), nights=((-20, 2), (-10, 2))))
    doc = p.document
    # success rate: (0.2/0.05² + 0.1/0.02²) / (1/0.05² + 1/0.02²)
    w1, w2 = 1 / 0.05**2, 1 / 0.02**2
    assert doc["success_rate"]["value"] == pytest.approx((0.2 * w1 + 0.1 * w2) / (w1 + w2), rel=1e-5)
    # consequence year 1: realised −20/0.1 = −200 against prior −100 (se 10)
    assert doc["consequences"]["nights"]["units"][0] < -100
    assert PARAMS.success_rate.value == 0.2  # the input is never modified
    parse_parameter_set(doc)
