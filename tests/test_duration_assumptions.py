"""Duration assumptions of an evaluation spec (som_models/duration_assumptions.py): the person-level durations
built from a panel (a hand-computed case), the spec's ``durations:`` validated strictly, and known truth — a
hazard ratio planted in a simulated panel is recovered by the Cox fit and judged by the verdict engine
(pipeline.evaluation.verdicts → som_models.verdicts.judge) in the spec's Holm family."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

from pipeline import evaluation as ev
from som_models.duration_assumptions import (
    DURATION_SCHEMA,
    PRETREND_NOT_APPLICABLE,
    DurationAssumption,
    comparison_units,
    estimate_durations,
    person_durations,
)
from som_models.estimators.results import ESTIMATES_SCHEMA
from som_models.evaluation_spec import parse_evaluation_spec
from som_models.parameters import ParameterError, parse_parameter_set

BASE = {"evaluation": "e", "intervention": "i", "parameters": "p.yaml"}
EXIT = {"name": "exit", "column": "sh", "event": "zero", "horizon": 3, "hazard_ratio": 1.5}
PARAMS = parse_parameter_set({
    "intervention": "i", "title": "t", "target_group": "x", "start_year": 2015, "horizon_years": 3, "price_year": 2024,
    "course_years": 1, "cohorts": [{"year": 2015, "participants": 100}],
    "success_measure": {"name": "success", "outcome": "convictions", "rule": "zero"},
    "success_rate": {"value": 0.2, "source": "test"}, "costs": [],
    "consequences": {"convictions": {"kind": "causal", "units": [-1], "source": "test"}},
    "prices": {"convictions": {"kommune": 0, "region": 0, "stat": 0}}})


# --------------------------------------------------------------------------------------- a hand-computed case


def test_person_durations_follow_the_stated_rules_on_a_hand_computed_panel():
    """Randomised in 2019, follow-up from 2020 (follow_up_from 1), horizon 3 years, panel to 2022.

    a: 2020 = 2, 2021 = 0                → event in follow-up year 2
    b: never 0                           → censored at 3 (the horizon, = the panel's last year 2022)
    c: no row in 2020 (2021 observed)    → no follow-up year: a gap ends follow-up, later years are not used
    d: first row 2019                    → no baseline year (last observed year before 2019): excluded
    e: 2020 = 0                          → event in follow-up year 1
    f: 2018 = 0 (baseline)               → already out of shelter before the start: excluded
    g: 2020 = 4, 2021 = 3, no 2022 row   → censored at 2 (left the panel)
    """
    panel = pl.DataFrame({
        "person_id": ["a"] * 5 + ["b"] * 5 + ["c"] * 3 + ["d"] * 4 + ["e"] * 5 + ["f"] * 5 + ["g"] * 4,
        "year": [2018, 2019, 2020, 2021, 2022] * 2 + [2018, 2019, 2021] + [2019, 2020, 2021, 2022]
        + [2018, 2019, 2020, 2021, 2022] * 2 + [2018, 2019, 2020, 2021],
        "sh": [5, 3, 2, 0, 4] + [5] * 5 + [3, 2, 0] + [0, 5, 0, 0] + [2, 0, 0, 0, 0] + [0, 4, 4, 4, 4] + [1, 1, 4, 3]})
    treatments = pl.DataFrame({"person_id": list("abcdefg"), "start_year": [2019] * 7,
                               "arm": ["T", "C", "T", "C", "T", "C", "T"]})
    units = comparison_units(treatments, panel.get_column("person_id"), design="rct")
    assert units.get_column("treated").to_list() == [1, 0, 1, 0, 1, 0, 1]
    exit_ = DurationAssumption("exit", "sh", "zero", horizon=3, hazard_ratio=1.5)
    got = {r["person_id"]: (r["status"], r["time"], r["event"])
           for r in person_durations(panel, units, exit_, last_year=2022).iter_rows(named=True)}
    assert got == {"a": ("used", 2, 1), "b": ("used", 3, 0), "c": ("no follow-up year", None, None),
                   "d": ("no baseline year", None, None), "e": ("used", 1, 1), "f": ("event at baseline", None, None),
                   "g": ("used", 2, 0)}
    # keep: persons in the event state at baseline stay; a horizon of 1 censors at follow-up year 1
    keep = DurationAssumption("exit", "sh", "zero", horizon=1, hazard_ratio=1.5, baseline="keep")
    got = {r["person_id"]: (r["status"], r["time"], r["event"])
           for r in person_durations(panel, units, keep, last_year=2022).iter_rows(named=True)}
    assert got["f"] == ("used", 1, 0) and got["d"] == ("used", 1, 0) and got["e"] == ("used", 1, 1)
    # follow_up_from 0: the start year is follow-up year 1 (a's 2019 = 3, 2020 = 2, 2021 = 0 → year 3)
    from0 = DurationAssumption("exit", "sh", "zero", horizon=5, hazard_ratio=1.5, follow_up_from=0)
    rows = person_durations(panel, units, from0, last_year=2022).filter(pl.col("person_id") == "a").row(0, named=True)
    assert (rows["first_year"], rows["time"], rows["event"]) == (2019, 3, 1)


def test_staggered_units_align_comparisons_on_each_cohort_and_censor_the_not_yet_treated():
    treatments = pl.DataFrame({"person_id": ["p1", "p2", "p3", "p4"], "start_year": [2016, 2018, 2018, 2017],
                               "arm": [None, None, None, "C"]})
    persons = pl.Series(["p1", "p2", "p3", "p4", "n1"])
    never = comparison_units(treatments, persons, design="staggered", control="never")
    notyet = comparison_units(treatments, persons, design="staggered", control="notyet")
    as_set = {(r["stratum"], r["person_id"], r["treated"], r["end_year"]) for r in notyet.iter_rows(named=True)}
    # p4 is in the randomised control arm: never treated; p2/p3 are not yet treated in the 2016 stack until 2017
    assert as_set == {(2016, "p1", 1, None), (2016, "n1", 0, None), (2016, "p4", 0, None), (2016, "p2", 0, 2017),
                      (2016, "p3", 0, 2017), (2018, "p2", 1, None), (2018, "p3", 1, None), (2018, "n1", 0, None),
                      (2018, "p4", 0, None)}
    assert never.height == 7 and set(never.filter(pl.col("treated") == 0).get_column("person_id")) == {"n1", "p4"}
    panel = pl.DataFrame({"person_id": ["p2"] * 5, "year": [2015, 2016, 2017, 2018, 2019], "sh": [1, 1, 1, 0, 0]})
    d = person_durations(panel, notyet.filter(pl.col("person_id") == "p2"),
                         DurationAssumption("x", "sh", "zero", horizon=5, hazard_ratio=1.0), last_year=2019)
    # as a not-yet-treated comparison in 2016 p2 is followed in 2017 only (its own start is 2018): censored at 1;
    # as treated in 2018 (baseline 2017 = 1) it exits in 2019, follow-up year 1
    assert [(r["stratum"], r["time"], r["event"]) for r in d.iter_rows(named=True)] == [(2016, 1, 0), (2018, 1, 1)]


# ---------------------------------------------------------------------------------------------- the spec


def test_durations_are_validated_strictly_with_errors_naming_entry_and_key():
    s = parse_evaluation_spec({**BASE, "design": "rct", "durations": [EXIT], "assumptions": ["duration:exit"]})
    (d,) = s.durations
    assert (d.assumption, d.follow_up_from, d.baseline, d.log_hazard_ratio) == ("duration:exit", 1, "exclude",
                                                                                 pytest.approx(math.log(1.5)))
    bad = {
        r"durations\[0\] \(exit\).hazard_ratio: the assumed hazard ratio must be > 0": {**EXIT, "hazard_ratio": 0},
        r"durations\[0\] \(exit\).event: 'gone' is not one of zero, positive, at_least, at_most": {**EXIT, "event": "gone"},
        r"durations\[0\] \(exit\).value: event at_least needs a value": {**EXIT, "event": "at_least"},
        r"durations\[0\] \(exit\).value: only for event at_least or at_most": {**EXIT, "value": 3},
        r"durations\[0\].horizon: required key missing": {k: v for k, v in EXIT.items() if k != "horizon"},
        r"durations\[0\].colour: unknown key": {**EXIT, "colour": "red"},
        r"durations\[0\] \(exit\).horizon: must be ≥ 1": {**EXIT, "horizon": 0},
        r"durations\[0\] \(exit\).baseline: 'drop' is not one of exclude, keep": {**EXIT, "baseline": "drop"},
        r"durations\[0\].name: 'exit home' must start with a letter": {**EXIT, "name": "exit home"},
    }
    for message, entry in bad.items():
        with pytest.raises(ParameterError, match=message):
            parse_evaluation_spec({**BASE, "durations": [entry]})
    with pytest.raises(ParameterError, match="durations: exit named twice"):
        parse_evaluation_spec({**BASE, "durations": [EXIT, EXIT]})
    with pytest.raises(ParameterError, match="durations: expected a non-empty list"):
        parse_evaluation_spec({**BASE, "durations": {"exit": EXIT}})
    with pytest.raises(ParameterError, match=r"assumptions\[1\]: 'duration:exits' is not one of the spec's durations "
                                             r"\(duration:exit\)"):
        parse_evaluation_spec({**BASE, "durations": [EXIT], "assumptions": ["success_rate", "duration:exits"]})
    with pytest.raises(ParameterError, match=r"'duration:exit' is not one of the spec's durations \(the spec has none\)"):
        parse_evaluation_spec({**BASE, "assumptions": ["duration:exit"]})


# ------------------------------------------------------------------------------------------------ known truth


def planted_duration_panel(n: int, hazard_ratio: float, seed: int, *, design: str = "rct", clusters: int = 0,
                           lam: float = 0.15) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A yearly panel 2012–2022 with a recurrent yearly event ``convictions`` (probability ``1 − exp(−λ)``; for a
    treated person after the start year ``1 − exp(−λ·HR)``, a grouped-time proportional hazard with hazard ratio
    ``HR``). ``rct``: randomised in 2015 (arm T/C); ``staggered``: cohorts 2015 and 2017 and never treated, by
    ``clusters`` municipalities (treated municipalities roll out, persons inherit their municipality's start)."""
    rng = np.random.default_rng(seed)
    years = np.arange(2012, 2023)
    if design == "rct":
        start = np.full(n, 2015)
        treated = rng.random(n) < 0.5
        municipality = np.zeros(n, dtype=int)
    else:
        municipality = rng.integers(0, clusters, n)
        m_start = np.where(np.arange(clusters) % 3 == 0, 2015, np.where(np.arange(clusters) % 3 == 1, 2017, 0))
        start = m_start[municipality]
        treated = start > 0
    pid = np.repeat(np.arange(n), years.size)
    yr = np.tile(years, n)
    on = np.repeat(treated, years.size) & (yr > np.repeat(start, years.size))
    p = 1 - np.exp(-lam * np.where(on, hazard_ratio, 1.0))
    panel = pl.DataFrame({"person_id": pid.astype(str), "year": yr, "convictions": (rng.random(pid.size) < p).astype(float),
                          "municipality": np.repeat(municipality, years.size)})
    if design == "rct":
        treatments = pl.DataFrame({"person_id": np.arange(n).astype(str), "start_year": start,
                                   "arm": np.where(treated, "T", "C")})
    else:
        treatments = pl.DataFrame({"person_id": np.arange(n)[treated].astype(str), "start_year": start[treated]})
    return panel, treatments


FIRST = {"name": "first_conviction", "column": "convictions", "event": "positive", "horizon": 6, "baseline": "keep"}


def _verdicts(frame: pl.DataFrame, assumed: float, design: str = "rct", **spec):
    doc = {**BASE, "design": design, "durations": [{**FIRST, "hazard_ratio": assumed}],
           "assumptions": ["duration:first_conviction"], **spec}
    s = parse_evaluation_spec(doc)
    empty = pl.DataFrame(schema=ESTIMATES_SCHEMA)
    (v,) = ev.verdicts(PARAMS, empty, pl.DataFrame(schema=ev.PRETREND_SCHEMA), s, durations=frame)
    return v


def test_a_planted_hazard_ratio_is_recovered_and_judged_in_a_randomised_trial():
    panel, treatments = planted_duration_panel(2000, 0.5, seed=11)
    a = DurationAssumption("first_conviction", "convictions", "positive", horizon=6, hazard_ratio=0.5, baseline="keep")
    frame = estimate_durations(panel, treatments, [a], design="rct")
    assert frame.schema == pl.Schema(DURATION_SCHEMA)
    row = frame.filter(pl.col("estimand") == "log_hazard_ratio").row(0, named=True)
    assert row["ci_low"] < math.log(0.5) < row["ci_high"] and row["se"] < 0.08
    assert (row["n_treated"], row["n_control"]) == (int((treatments["arm"] == "T").sum()), int((treatments["arm"] == "C").sum()))
    km = frame.filter((pl.col("estimand") == "km") & (pl.col("event_time") == 1)).sort("group")
    # Kaplan–Meier after one follow-up year ≈ exp(−λ) in the comparison arm, exp(−λ·HR) in the treated arm
    assert km.get_column("estimate").to_list() == pytest.approx([math.exp(-0.15), math.exp(-0.075)], abs=0.03)

    consistent = _verdicts(frame, 0.5)
    assert consistent.label == "consistent", consistent.sentence
    assert consistent.assumed == pytest.approx(math.log(0.5)) and consistent.realised == pytest.approx(row["estimate"])
    ev_ = consistent.evidence
    assert ev_["details"]["pretrend_gate"] == PRETREND_NOT_APPLICABLE and ev_["pretrend_p"] is None
    assert ev_["family_size"] == 1 and ev_["profile_kind"] == "duration" and ev_["tost"]["equivalent"]
    assert ev_["details"]["hazard_ratio_assumed"] == 0.5 and ev_["assignment"]["level"] == "person"
    assert "log hazard ratio of the time to convictions > 0" in consistent.sentence
    # assumed far off, on either side
    assert _verdicts(frame, 1.5).label == "refuted-overestimated"   # the assumption had the wrong sign
    assert _verdicts(frame, 0.9).label == "refuted-underestimated"  # the effect is larger than assumed
    # too few treated persons for the spec: inconclusive
    assert "only" in _verdicts(frame, 0.5, min_persons=5000).sentence


def test_durations_join_the_holm_family_of_the_parameter_assumptions():
    panel, treatments = planted_duration_panel(600, 0.5, seed=3)
    a = DurationAssumption("first_conviction", "convictions", "positive", horizon=6, hazard_ratio=0.5, baseline="keep")
    frame = estimate_durations(panel, treatments, [a], design="rct")
    s = parse_evaluation_spec({**BASE, "design": "rct", "durations": [{**FIRST, "hazard_ratio": 0.5}]})
    out = ev.verdicts(PARAMS, pl.DataFrame(schema=ESTIMATES_SCHEMA), pl.DataFrame(schema=ev.PRETREND_SCHEMA), s,
                      durations=frame)
    # assumptions: all → the parameter set's two and the duration; the two without estimates are not estimable
    assert [v.assumption for v in out] == ["success_rate", "effect_path:convictions", "duration:first_conviction"]
    assert out[2].evidence["family_size"] == 1 and out[0].label == "inconclusive"
    # not estimated (no duration output) → inconclusive with the reason
    (none,) = ev.verdicts(PARAMS, pl.DataFrame(schema=ESTIMATES_SCHEMA), pl.DataFrame(schema=ev.PRETREND_SCHEMA),
                          parse_evaluation_spec({**BASE, "durations": [{**FIRST, "hazard_ratio": 0.5}],
                                                 "assumptions": ["duration:first_conviction"]}))
    assert none.label == "inconclusive" and "could not be estimated from the data: the duration was not" in none.sentence


def test_no_event_is_not_estimable_with_the_reason():
    panel, treatments = planted_duration_panel(200, 0.5, seed=1, lam=1e-9)
    a = DurationAssumption("first_conviction", "convictions", "positive", horizon=6, hazard_ratio=0.5, baseline="keep")
    frame = estimate_durations(panel, treatments, [a], design="rct")
    assert frame.height == 1 and frame["estimate"][0] is None
    assert "no event (convictions > 0) was observed" in json.loads(frame["details"][0])["not_estimable"]
    v = _verdicts(frame, 0.5)
    assert v.label == "inconclusive" and "no event (convictions > 0) was observed in follow-up" in v.sentence


def test_staggered_roll_out_by_municipality_clusters_and_few_clusters_are_said():
    # 45 municipalities: 15 start 2015, 15 start 2017, 15 never; assignment by municipality
    panel, treatments = planted_duration_panel(3000, 0.6, seed=5, design="staggered", clusters=45)
    a = DurationAssumption("first_conviction", "convictions", "positive", horizon=6, hazard_ratio=0.6, baseline="keep")
    frame = estimate_durations(panel, treatments, [a], design="staggered", control="notyet", cluster="municipality")
    row = frame.filter(pl.col("estimand") == "log_hazard_ratio").row(0, named=True)
    assert row["ci_low"] < math.log(0.6) < row["ci_high"]
    assert (row["cluster"], row["clusters"], row["treated_clusters"]) == ("municipality", 45, 30)
    details = json.loads(row["details"])
    assert details["strata"] == 2 and "clustered by municipality (45 clusters)" in details["standard_errors"]
    v = _verdicts(frame, 0.6, design="staggered", assigned_by="municipality")
    assert v.label == "consistent" and v.evidence["assignment"]["treated_clusters"] == 30
    # 6 municipalities, 2 + 2 treated: at most 5 treated clusters → inconclusive, the sentence says why
    panel, treatments = planted_duration_panel(1500, 0.6, seed=6, design="staggered", clusters=6)
    few = estimate_durations(panel, treatments, [a], design="staggered", cluster="municipality")
    v = _verdicts(few, 0.6, design="staggered")
    assert v.label == "inconclusive" and v.evidence["gate"] == "too-few-clusters"
    assert "the evidence rests on 4 treated clusters (municipality; 6 in all), too few" in v.sentence
    # 15 municipalities, 5 + 5 treated → 10 treated: the wild cluster bootstrap decides, from the clusters' dfbeta
    panel, treatments = planted_duration_panel(1500, 0.6, seed=7, design="staggered", clusters=15)
    some = estimate_durations(panel, treatments, [a], design="staggered", cluster="municipality")
    assert len(some.filter(pl.col("estimand") == "log_hazard_ratio")["cluster_scores"][0]) == 15
    v = _verdicts(some, 3.0, design="staggered")
    assert v.evidence["decision_method"] == "wild cluster bootstrap" and "rests on 10 treated clusters" in v.sentence
    assert v.label == "refuted-overestimated"


def test_matched_comparison_recovers_a_planted_hazard_ratio():
    panel, treatments = planted_duration_panel(3000, 0.6, seed=5, design="staggered", clusters=45)
    a = DurationAssumption("first_conviction", "convictions", "positive", horizon=6, hazard_ratio=0.6, baseline="keep")
    frame = estimate_durations(panel, treatments, [a], design="matched", matching={"pre_periods": 2, "replace": False})
    row = frame.filter(pl.col("estimand") == "log_hazard_ratio").row(0, named=True)
    assert row["ci_low"] < math.log(0.6) < row["ci_high"] and row["se"] < 0.1
    details = json.loads(row["details"])
    assert details["weighted"] and details["strata"] == 2 and details["design"] == "matched"
