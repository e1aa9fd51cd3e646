"""Descriptive profiles are judged and updated against SØM's descriptive contrast, causal ones against the ATT path.

Known-truth world (numbers checkable on paper). 3 000 persons in a target group, half start the intervention in
2020 (one course year; consequence years 1–3 = 2021–2023), half never; years 2016–2023. Each person has a
latent need ``h ~ Bernoulli(0.5)``. From 2021 a person is housed (no shelter night = success) when
``U < q_h`` (``q_0 = 0.6``, ``q_1 = 0.1``: success that happens anyway) or, if treated, when ``V < r = 0.3``
(the intervention's responders). Weeks on benefits ``W = 10 + 20 h − 5 · 1{extra success by the intervention}
+ N(0, 4²)``. Hence:

* net success rate ``s = r · (1 − E q_h) = 0.3 · 0.65 = 0.195``; causal effect per net success on W: ``−5``
  (ATT ``−0.975``);
* descriptive contrast among the listed persons, success vs non-success:
  ``P(H=1 | h=0) = 0.72``, ``P(H=1 | h=1) = 0.37``, so ``P(h=1 | H=1) = 0.185/0.545``, ``P(h=1 | H=0) = 0.315/0.455``,
  ``P(extra success | H=1) = 0.195/0.545`` and the contrast is
  ``20 · (0.185/0.545 − 0.315/0.455) − 5 · 0.195/0.545 = −8.85`` weeks — selection, not effect.

One fixed seed (its pre-trend test of W does not reject). Over 200 seeds the descriptive verdict's level test
at the true contrast rejected in 2 % of worlds (sd of z 0.89: the mean-of-se bound is slightly conservative).
"""

import numpy as np
import polars as pl
import pytest

from som_models.calibration import propose
from som_models.descriptive import (
    REFERENCE_COL,
    SUCCESS_COL,
    descriptive_comparison,
    descriptive_panel,
    estimate_descriptive,
)
from som_models.estimators import estimate_realised_effects, success_indicator
from som_models.estimators.dispatch import EstimationSettings
from som_models.parameters import check_kinds_kept, parse_parameter_set
from som_models.verdicts import VerdictSettings, judge

CONTRAST = 20 * (0.185 / 0.545 - 0.315 / 0.455) - 5 * 0.195 / 0.545  # −8.85
S = 0.195


def world(n=3000, seed=2):
    rng = np.random.default_rng(seed)
    years = np.arange(2016, 2024)
    h = rng.random(n) < 0.5
    treated = np.arange(n) < n // 2
    anyway = rng.random(n) < np.where(h, 0.1, 0.6)
    extra = treated & ~anyway & (rng.random(n) < 0.3)
    housed = anyway | extra
    rows = []
    for t in years:
        after = t >= 2021
        nights = np.where(after & housed, 0.0, np.clip(rng.normal(40 + 40 * h, 10), 1, None).round())
        weeks = 10 + 20 * h - 5 * (after & extra) + rng.normal(0, 4, n)
        rows.append(pl.DataFrame({"person_id": np.arange(n), "year": np.full(n, t), "nights": nights, "weeks": weeks,
                                  "sex": (np.arange(n) % 2).astype(float)}))
    panel = pl.concat(rows)
    treatments = pl.DataFrame({"person_id": np.arange(n), "start_year": [2020 if x else None for x in treated]},
                              schema={"person_id": pl.Int64, "start_year": pl.Int64})
    return panel, treatments


def params(kind, units):
    return parse_parameter_set({
        "intervention": "hf", "target_group": "tg", "start_year": 2020, "horizon_years": 6, "price_year": 2024,
        "cohorts": [{"year": 2020, "participants": 100}],
        "success_measure": {"name": "housed", "outcome": "nights", "rule": "zero"},
        "success_rate": {"value": S, "se": 0.05},
        "costs": [{"course_year": 1, "payer": "kommune", "amount": -1000}],
        "consequences": {"weeks": {"kind": kind, "units": list(units), "se": [2.0] * len(units)}},
        "prices": {"weeks": {"kommune": 100}},
    }, require_kind=True)


@pytest.fixture(scope="module")
def evidence():
    panel, treatments = world()
    data = success_indicator(panel, name="housed", outcome="nights", rule="zero")
    effects = estimate_realised_effects(data, treatments, outcomes=["housed", "weeks"],
                                        settings=EstimationSettings(min_e=1, aggregations=("dynamic",)))
    pre = {k: v.p_value for k, v in effects.pretrends.items()}
    desc = estimate_descriptive(panel, treatments, params("descriptive", [CONTRAST] * 3))
    return panel, treatments, effects.table, pre, desc.table


def verdict(evidence, p, **kw):
    _, _, table, pre, desc = evidence
    return {v.assumption: v for v in judge(p, table, pre, VerdictSettings(), descriptive=desc, **kw)}


def test_the_world_separates_the_causal_path_from_the_descriptive_contrast(evidence):
    _, _, table, _, desc = evidence
    att = table.filter((pl.col("outcome") == "weeks") & (pl.col("estimand") == "event") & (pl.col("event_time") >= 1))
    assert att.height == 3 and att["estimate"].mean() == pytest.approx(-5 * S, abs=0.4)
    assert desc["event_time"].to_list() == [1, 2, 3] and set(desc["estimand"]) == {"consequence"}
    for row in desc.to_dicts():  # the contrast recovers the planted −8.85 (within 4 se)
        assert abs(row["estimate"] - CONTRAST) < 4 * row["se"]
        assert row["n_treated"] + row["n_control"] == 1500  # every listed person, successes and non-successes


def test_descriptive_profile_follows_the_descriptive_contrast_not_the_causal_path(evidence):
    right = verdict(evidence, params("descriptive", [CONTRAST] * 3))["effect_path:weeks"]
    assert right.label == "consistent"
    assert right.assumed == pytest.approx(CONTRAST)  # per successful person, not × the success rate
    assert right.evidence["profile_kind"] == "descriptive" and right.evidence["pretrend_p"] is None
    assert "success-vs-non-success contrast on weeks" in right.sentence
    assert [p["consequence_year"] for p in right.evidence["path"]] == [1, 2, 3]
    # The causal effect per net success (−5) is the wrong answer to the descriptive question: refuted.
    causal_truth = verdict(evidence, params("descriptive", [-5.0] * 3))["effect_path:weeks"]
    assert causal_truth.label == "refuted-underestimated"


def test_the_same_numbers_as_a_causal_profile_are_judged_on_the_att_path(evidence):
    wrong = verdict(evidence, params("causal", [CONTRAST] * 3))["effect_path:weeks"]
    assert wrong.evidence["profile_kind"] == "causal"
    assert wrong.assumed == pytest.approx(S * CONTRAST)  # implied path s · units
    assert wrong.label == "refuted-overestimated"
    right = verdict(evidence, params("causal", [-5.0] * 3))["effect_path:weeks"]
    assert not right.label.startswith("refuted")


def test_without_a_contrast_a_descriptive_profile_is_not_judged_on_the_causal_path(evidence):
    _, _, table, pre, desc = evidence
    (sr, weeks) = judge(params("descriptive", [CONTRAST] * 3), table, pre, VerdictSettings())
    assert weeks.label == "inconclusive" and weeks.realised is None
    assert weeks.evidence["level_source"] == "no descriptive contrast was estimated for this item"
    with pytest.raises(ValueError, match="never with a causal estimate"):
        judge(params("descriptive", [CONTRAST] * 3), table, pre, VerdictSettings(), descriptive=table)
    with pytest.raises(ValueError, match="only a descriptive profile is compared"):
        descriptive_comparison(params("causal", [-5.0]), "weeks", desc)


def test_descriptive_panel_defines_success_and_reference_per_person(evidence):
    panel, treatments, *_ = evidence
    d = descriptive_panel(panel, treatments, params("descriptive", [CONTRAST]))
    per = d.group_by("person_id").agg(pl.col(SUCCESS_COL).first(), pl.col(REFERENCE_COL).first())
    assert per.height == 1500 and set(per[REFERENCE_COL]) == {2020}
    housed = panel.filter((pl.col("year") == 2021) & (pl.col("nights") == 0) & (pl.col("person_id") < 1500))
    assert per[SUCCESS_COL].sum() == housed.height
    assert abs(per[SUCCESS_COL].mean() - 0.545) < 0.05  # P(H = 1) among the treated


def test_calibration_updates_each_kind_from_its_own_evidence_and_keeps_it(evidence):
    _, _, table, _, desc = evidence
    pd = params("descriptive", [-3.0] * 3)
    p = propose(pd, table, descriptive=desc, policy="replace", min_persons=20)
    new = parse_parameter_set(p.document, require_kind=True)
    assert new.kinds() == {"weeks": "descriptive"}
    check_kinds_kept(pd, new)
    assert np.allclose(new.consequence("weeks").units, desc["estimate"].to_list(), rtol=1e-5)
    (change,) = [c for c in p.changes if c["parameter"] == "consequences.weeks"]
    assert change["kind"] == "descriptive" and {y["method"] for y in change["years"]} == {
        "descriptive contrast (success vs non-success, regression-adjusted)"}

    pc = params("causal", [-3.0] * 3)
    q = propose(pc, table, policy="replace")
    newc = parse_parameter_set(q.document, require_kind=True)
    assert newc.kinds() == {"weeks": "causal"}
    assert np.mean(newc.consequence("weeks").units) == pytest.approx(-5, abs=2.5)  # ATT / realised success rate


def test_calibration_refuses_to_store_one_kind_into_the_other(evidence):
    _, _, table, _, desc = evidence
    with pytest.raises(ValueError, match="refusing to store the descriptive success-vs-non-success contrast into a causal"):
        propose(params("causal", [-3.0] * 3), table, descriptive=desc)
    external = pl.DataFrame({"item": ["weeks"], "consequence_year": [1], "estimate": [-7.0], "se": [1.0]})
    with pytest.raises(ValueError, match="refusing to store a causal estimate .* into a descriptive profile"):
        propose(params("descriptive", [-3.0] * 3), table, consequence_estimates=external)
    with pytest.raises(ValueError, match="refusing to store a descriptive estimate .* into a causal profile"):
        propose(params("causal", [-3.0] * 3), table, consequence_estimates=external.with_columns(kind=pl.lit("descriptive")))
    ok = propose(params("descriptive", [-3.0] * 3), table, policy="replace",
                 consequence_estimates=external.with_columns(kind=pl.lit("descriptive")))
    assert ok.document["consequences"]["weeks"]["units"][0] == -7.0
    assert ok.document["consequences"]["weeks"]["kind"] == "descriptive"
