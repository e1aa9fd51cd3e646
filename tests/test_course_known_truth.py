"""Known truth: a demo world with a success rate and consequences planted in the course year — the evaluation's own
functions recover the course-year effects within their confidence intervals, call the course path ``consistent`` when
the assumption is the planted value and ``refuted-*`` when it is far off, and the update moves towards the truth."""

from __future__ import annotations

import copy
import tempfile
from functools import cache
from pathlib import Path

import pytest

from pipeline import evaluation as ev
from pipeline.registers import build_panel, read_manifest
from som_models.parameters import parse_parameter_set
from som_models.simulate import write_delivery
from som_models.simulate.homelessness import simulate_homelessness
from som_reference import asset

ITEMS = ("shelter_nights", "kontanthjaelp_weeks")


@cache
def _world(persons: int = 12000, seed: int = 7):
    """The demo world (homelessness, roll-out by municipality) through delivery → panel → realised effects."""
    sim = simulate_homelessness(persons, seed)
    with tempfile.TemporaryDirectory() as tmp:
        built = build_panel(read_manifest(write_delivery(sim, Path(tmp) / "d")), b"k" * 32, max_gx_rows=0)
    loaded = ev.load_spec(asset("evaluations", "housing_first_demo.yaml"))
    effects = ev.realised_effects(built.panel, built.treatments, loaded.spec, loaded.seed, assigned_by="municipality")
    return sim.truth, loaded, effects, ev.pretrend_frame(effects)


def _with_course(params, values: dict[str, float]):
    doc = copy.deepcopy(params.to_dict())
    for item, v in values.items():
        doc["consequences"][item]["course"] = {"kind": "causal", "units": [v], "se": [abs(v) / 2]}
    return parse_parameter_set(doc)


def _verdicts(params, loaded, effects, pre):
    return {v.assumption: v for v in ev.verdicts(params, effects.table, pre, loaded.spec)}


def test_the_truth_records_the_planted_course_year_effects():
    truth, *_ = _world()
    course = truth["course_effects"]
    assert truth["course_years"] == 1 and course["event_times"] == [0] and course["course_years"] == [1]
    e0 = next(r for r in truth["att_by_event_time"] if r["event_time"] == 0)
    assert all(course[k] == [e0[k]] for k in (*ITEMS, "no_shelter_stay"))
    # planted: responders are housed in the course year, so fewer shelter nights and a positive success indicator
    assert course["shelter_nights"][0] < -5 and course["no_shelter_stay"][0] > 0.05
    assert course["kontanthjaelp_weeks"][0] < -0.5


def test_course_year_effects_are_recovered_within_their_confidence_intervals():
    truth, loaded, effects, _ = _world()
    rows = {r["outcome"]: r for r in effects.table.filter((effects.table["estimand"] == "event")
                                                          & (effects.table["event_time"] == 0)).to_dicts()}
    for outcome in (*ITEMS, "no_shelter_stay"):
        planted = truth["course_effects"][outcome][0]
        r = rows[outcome]
        assert r["ci_low"] <= planted <= r["ci_high"], (outcome, planted, r)


def test_course_path_verdicts_against_the_planted_values():
    truth, loaded, effects, pre = _world()
    planted = {item: truth["course_effects"][item][0] for item in ITEMS}
    at_truth = _verdicts(_with_course(loaded.seed, planted), loaded, effects, pre)
    for item in ITEMS:
        v = at_truth[f"course_path:{item}"]
        assert v.label == "consistent", v.sentence
        assert v.evidence["course_years"] == [1] and v.evidence["path"][0]["event_time"] == 0
        assert v.ci_low <= planted[item] <= v.ci_high
    # the Holm family holds the course paths as assumptions of their own (every assumption not gated by the data)
    decided = [a for a, v in at_truth.items() if v.evidence["gate"] is None]
    assert {f"course_path:{i}" for i in ITEMS} <= set(decided)
    assert at_truth["course_path:shelter_nights"].evidence["family_size"] == len(decided)
    far = _verdicts(_with_course(loaded.seed, {i: 3 * v for i, v in planted.items()}), loaded, effects, pre)
    assert {far[f"course_path:{i}"].label for i in ITEMS} == {"refuted-overestimated"}
    small = _verdicts(_with_course(loaded.seed, {i: v / 4 for i, v in planted.items()}), loaded, effects, pre)
    assert {small[f"course_path:{i}"].label for i in ITEMS} == {"refuted-underestimated"}


def test_the_update_moves_the_course_years_towards_the_truth_and_is_plausible():
    truth, loaded, effects, _ = _world()
    planted = {item: truth["course_effects"][item][0] for item in ITEMS}
    assumed = {i: 3 * v for i, v in planted.items()}
    params = _with_course(loaded.seed, assumed)
    doc, reason, changes = ev.proposal_document(params, effects.table, loaded.spec, run_label="known truth")
    for item in ITEMS:
        new = doc["consequences"][item]["course"]["units"][0]
        assert abs(new - planted[item]) < abs(assumed[item] - planted[item]) / 2, (item, new, planted[item])
    assert "course-year effects of 2 item(s) updated" in reason
    candidate = {"content": doc, "changes": list(changes), "alpha": 0.05}
    assert ev.proposal_problems(candidate, {"content": params.to_dict()}) == ()


@pytest.mark.parametrize("name", ["course_path:shelter_nights"])
def test_the_spec_can_name_a_course_path(name):
    _, loaded, effects, pre = _world()
    spec = ev.parse_evaluation_spec({**loaded.spec.document, "assumptions": [name]})
    got = ev.verdicts(loaded.seed, effects.table, pre, spec)
    assert [v.assumption for v in got] == [name] and got[0].evidence["family_size"] == 1
    assert name in ev.assumption_names(loaded.seed)
