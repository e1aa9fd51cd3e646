"""Course-year effects (event times 0 … K−1) as a part of the parameter set: schema, assumption map, verdicts
(``course_path:<item>``), the update and its plausibility — on hand-made estimates (numbers checkable on paper)."""

import copy
import math

import polars as pl
import pytest

from som_models.assumptions import AssumptionMap
from som_models.calibration import combine, propose
from som_models.estimators import ESTIMATES_SCHEMA
from som_models.parameters import ParameterError, check_kinds_kept, parse_parameter_set
from som_models.plausibility import plausibility_problems
from som_models.verdicts import COURSE_PATH, VerdictSettings, judge

DOC = {
    "intervention": "x", "target_group": "tg", "start_year": 2020, "horizon_years": 6, "price_year": 2024,
    "course_years": 2, "cohorts": [{"year": 2020, "participants": 100}],
    "success_measure": {"name": "ok", "outcome": "nights", "rule": "zero"},
    "success_rate": {"value": 0.2, "se": 0.05},
    "costs": [{"course_year": 1, "payer": "kommune", "amount": -1000}],
    "consequences": {"nights": {"kind": "causal", "units": [-100, -50], "se": [10, 10],
                                "course": {"kind": "causal", "units": [-12, -8], "se": [4, 4], "source": "assumed"}}},
    "prices": {"nights": {"kommune": 1}},
}
PARAMS = parse_parameter_set(DOC, require_kind=True)
# Course path (per participant): −12 at e = 0, −8 at e = 1; mean −10. Effect path: 0.2 × (−100, −50) at e = 2, 3.


def doc(**course):
    d = copy.deepcopy(DOC)
    d["consequences"]["nights"]["course"] = course
    return d


def table(course=((-12, 1), (-8, 1)), sr=(0.2, 0.02), nights=((-20, 2), (-10, 2)), n=500):
    rows = [{"outcome": "ok", "estimand": "event", "event_time": 2, "estimate": sr[0], "se": sr[1], "n_treated": n}]
    for e, (est, se) in enumerate([*course, *nights]):
        rows.append({"outcome": "nights", "estimand": "event", "event_time": e, "estimate": est, "se": se,
                     "n_treated": n})
    for r in rows:
        r.update(ci_low=r["estimate"] - 1.96 * r["se"], ci_high=r["estimate"] + 1.96 * r["se"], group=None, time=None,
                 n_control=1000)
    return pl.DataFrame(rows, schema=ESTIMATES_SCHEMA)


def run(t, params=PARAMS, **kw):
    return {v.assumption: v for v in judge(params, t, {"ok": 0.5, "nights": 0.5}, VerdictSettings(), **kw)}


# ---- schema ----------------------------------------------------------------------------------------------------

def test_the_course_profile_is_parsed_per_participant_and_absent_means_none():
    c = PARAMS.consequence("nights").course
    assert c is not None and c.units == (-12.0, -8.0) and c.se == (4.0, 4.0) and c.kind == "causal" and c.kind_stated
    plain = copy.deepcopy(DOC)
    del plain["consequences"]["nights"]["course"]
    assert parse_parameter_set(plain).consequence("nights").course is None
    assert parse_parameter_set(plain).course_profiles() == {}
    assert "effects during the course" in PARAMS.describe_course()


@pytest.mark.parametrize("course, message", [
    ({"units": [-12]}, "consequences.nights.course.units: expected a list of 2 number(s)"),
    ({"units": [-12, -8, -1]}, "consequences.nights.course.units: expected a list of 2"),
    ({"units": "-12"}, "consequences.nights.course.units"),
    ({"units": [-12, "a"]}, "consequences.nights.course.units[1]: expected a number"),
    ({"units": [-12, -8], "se": [1]}, "consequences.nights.course.se: expected a list as long as units (2)"),
    ({"units": [-12, -8], "se": [1, -1]}, "consequences.nights.course.se[1]: must be ≥ 0"),
    ({"units": [-12, -8], "per": "success"}, "consequences.nights.course.per: unknown key"),
    ({"units": [-12, -8], "kind": "assumed"}, "consequences.nights.course.kind: 'assumed' is not a kind"),
    ({"se": [1, 1]}, "consequences.nights.course.units: required key missing"),
])
def test_a_bad_course_profile_is_refused_naming_the_key(course, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        parse_parameter_set(doc(**course))


def test_kind_rules_are_the_items():
    with pytest.raises(ParameterError, match="consequences.nights.course.kind: required key missing"):
        parse_parameter_set(doc(units=[-1, -1]), require_kind=True)
    assumed = parse_parameter_set(doc(units=[-1, -1])).consequence("nights").course
    assert assumed.kind == "causal" and not assumed.kind_stated
    child = parse_parameter_set(doc(units=[-1, -1], kind="descriptive"))
    with pytest.raises(ParameterError, match="course.kind: changed from causal to descriptive"):
        check_kinds_kept(PARAMS, child)


# ---- the assumption map ------------------------------------------------------------------------------------------

def test_course_year_k_is_event_time_k_minus_1():
    amap = AssumptionMap.from_params(PARAMS)
    assert [amap.course_estimand("nights", k).event_time for k in (1, 2)] == [0, 1]
    assert [amap.in_course_years(e) for e in (-1, 0, 1, 2)] == [False, True, True, False]
    assert amap.course_effect("nights", 0) == -12 and amap.course_effect("nights", 1) == -8
    assert amap.consequence_estimand("nights", 1).event_time == 2  # consequence years start after the course
    with pytest.raises(ValueError, match="outside the course"):
        amap.course_estimand("nights", 3)


# ---- verdicts ----------------------------------------------------------------------------------------------------

def test_course_path_is_its_own_assumption_and_consistent_when_it_holds():
    got = run(table())
    assert set(got) == {"success_rate", "effect_path:nights", f"{COURSE_PATH}nights"}
    v = got["course_path:nights"]
    assert v.label == "consistent" and v.assumed == pytest.approx(-10) and v.realised == pytest.approx(-10)
    assert v.evidence["course_years"] == [1, 2] and v.evidence["family_size"] == 3
    assert [p["event_time"] for p in v.evidence["path"]] == [0, 1]
    assert [p["course_year"] for p in v.evidence["path"]] == [1, 2]
    assert "during the course" in v.sentence and "course years 1–2" in v.sentence
    # the effect path still covers the consequence years only (e ≥ K)
    assert [p["event_time"] for p in got["effect_path:nights"].evidence["path"]] == [2, 3]


def test_course_path_refuted_when_far_off_and_the_level_test_is_hand_checkable():
    # realised mean −2 (se of the mean from the conservative bound: mean of the se = 1) against assumed −10
    v = run(table(course=((-2, 1), (-2, 1))))["course_path:nights"]
    assert v.label == "refuted-overestimated"
    assert v.statistic == pytest.approx((-2 - -10) / 1.0)
    v = run(table(course=((-30, 1), (-30, 1))))["course_path:nights"]
    assert v.label == "refuted-underestimated"


def test_course_path_in_the_holm_family_only_when_tested():
    only = run(table(), tested=["course_path:nights"])
    assert set(only) == {"course_path:nights"} and only["course_path:nights"].evidence["family_size"] == 1
    with pytest.raises(ValueError, match="course_path:other"):
        run(table(), tested=["course_path:other"])


def test_no_course_year_observed_is_inconclusive_and_says_so():
    t = table().filter(~((pl.col("outcome") == "nights") & (pl.col("event_time") < 2)))
    v = run(t)["course_path:nights"]
    assert v.label == "inconclusive" and "course year" in v.sentence and v.realised is None


def test_a_descriptive_course_profile_is_not_tested_against_the_causal_path():
    params = parse_parameter_set(doc(units=[-12, -8], kind="descriptive"))
    assert "course_path:nights" not in run(table(), params)


def test_without_a_course_profile_the_verdicts_are_what_they_were():
    plain = copy.deepcopy(DOC)
    del plain["consequences"]["nights"]["course"]
    got = run(table(), parse_parameter_set(plain))
    assert set(got) == {"success_rate", "effect_path:nights"}


# ---- the update and its plausibility -----------------------------------------------------------------------------

def test_course_years_are_updated_precision_weighted_per_participant():
    realised = ((-16, 2), (-6, 2))
    p = propose(PARAMS, table(course=realised))
    course = p.document["consequences"]["nights"]["course"]
    expected = [combine(a, 4, r, s, "precision_weighted", 0.5) for a, (r, s) in zip((-12, -8), realised, strict=True)]
    assert course["units"] == [pytest.approx(v, rel=1e-5) for v, _ in expected]  # stored to 6 significant digits
    assert course["se"] == [pytest.approx(s, rel=1e-5) for _, s in expected]
    # by hand: weights 1/16 and 1/4 → (−12/16 − 16/4)/(1/16 + 1/4) = −15.2, se = √(1/(5/16)) = 1.78885
    assert course["units"][0] == pytest.approx(-15.2) and course["se"][0] == pytest.approx(math.sqrt(16 / 5), rel=1e-5)
    assert course["kind"] == "causal"
    change = next(c for c in p.changes if c["parameter"] == "consequences.nights.course")
    assert [y["course_year"] for y in change["course_years"]] == [1, 2]
    assert [y["event_time"] for y in change["course_years"]] == [0, 1]
    assert "course-year effects of 1 item(s) updated" in p.reason
    new = parse_parameter_set(p.document)  # a valid parameter set, the consequence years updated alongside
    assert new.consequence("nights").course.units == tuple(course["units"])
    assert new.consequence("nights").se != PARAMS.consequence("nights").se  # updated (realised = assumed here)
    assert plausibility_problems(PARAMS.document, p.document, p.changes) == ()


def test_course_years_update_without_a_significant_success_rate_and_from_the_root_prior():
    # success rate not significant: consequences kept, the course years (per participant) still updated
    p = propose(PARAMS, table(sr=(0.01, 0.05), course=((-16, 2), (-6, 2))))
    assert p.document["consequences"]["nights"]["units"] == [-100, -50]
    assert p.document["consequences"]["nights"]["course"]["units"][0] == pytest.approx(-15.2)
    # an update of a version fitted to overlapping data combines the root prior, not the current version
    current = parse_parameter_set(p.document)
    again = propose(current, table(course=((-16, 2), (-6, 2))), prior=PARAMS, prior_label="root prior: version 1")
    course = again.document["consequences"]["nights"]["course"]
    assert course["units"][0] == pytest.approx(-15.2)  # not −15.2 combined with −16 once more
    change = next(c for c in again.changes if c["parameter"] == "consequences.nights.course")
    assert change["course_years"][0]["prior"] == -12 and "root prior" in course["source"]


def test_course_years_not_re_estimated_are_kept():
    p = propose(PARAMS, table(course=((-16, 2), (-6, 2))), items=())
    assert p.document["consequences"]["nights"]["course"]["units"] == [-12, -8]
    descriptive = parse_parameter_set(doc(units=[-12, -8], kind="descriptive"))
    p = propose(descriptive, table(course=((-16, 2), (-6, 2))))
    assert p.document["consequences"]["nights"]["course"]["units"] == [-12, -8]
    assert any(c.get("kept", "").startswith("a descriptive course-year profile") for c in p.changes)


def test_plausibility_refuses_an_unsupported_sign_flip_of_a_course_year():
    p = propose(PARAMS, table(course=((-16, 2), (-6, 2))), policy="replace")
    flipped = copy.deepcopy(dict(p.document))
    flipped["consequences"]["nights"]["course"]["units"] = [5, -6]  # course year 1 flips; its estimate says −16
    problems = plausibility_problems(PARAMS.document, flipped, p.changes)
    assert [(x.check, x.parameter, x.consequence_year) for x in problems] == [
        ("sign_flip", "consequences.nights.course", 1)]
    # a flip the realised estimate shows significantly is accepted
    q = propose(PARAMS, table(course=((9, 2), (-6, 2))), policy="replace")
    assert q.document["consequences"]["nights"]["course"]["units"][0] == 9
    assert plausibility_problems(PARAMS.document, q.document, q.changes) == ()
    big = copy.deepcopy(dict(p.document))
    big["consequences"]["nights"]["course"]["units"] = [-200, -6]
    assert [x.check for x in plausibility_problems(PARAMS.document, big, p.changes)] == ["magnitude"]
