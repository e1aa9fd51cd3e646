"""A duration assumption through the one evaluation path (pipeline.runner.evaluate → the Dagster graph) on the
small randomised world: its verdict is in the spec's Holm family, the ``duration_effects`` asset carries the Cox
estimates (small cells suppressed in its metadata), the store keeps them, and the proposal says it leaves the
parameters untouched for it."""

from __future__ import annotations

import math

import dagster as dg
import pytest
import yaml

from pipeline.runner import evaluate
from pipeline.store import ParameterStore
from som_models.simulate import simulate, write_delivery

PARAMS = {
    "intervention": "small_trial", "title": "small randomised world (test)", "target_group": "x", "start_year": 2020,
    "horizon_years": 3, "price_year": 2024, "course_years": 1, "cohorts": [{"year": 2020, "participants": 100}],
    "success_measure": {"name": "no_shelter_stay", "outcome": "shelter_nights", "rule": "zero"},
    "success_rate": {"value": 0.2, "source": "test"}, "costs": [],
    "consequences": {"shelter_nights": {"kind": "causal", "units": [-30, -20], "source": "test"}},
    "prices": {"shelter_nights": {"kommune": 0, "region": 0, "stat": 0}},
}


def test_a_duration_assumption_is_judged_stored_and_left_out_of_the_update(tmp_path, monkeypatch):
    write_delivery(simulate("small", 1500, 7), tmp_path / "delivery")
    (tmp_path / "evaluations").mkdir()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS), encoding="utf-8")
    # The world plants fewer shelter nights for responders in the T arm: exits come sooner (HR > 1). The spec assumes
    # the opposite (HR 0.5), and names the success rate too: a Holm family of two.
    spec = {"evaluation": "small_durations", "intervention": "small_trial", "parameters": "../params.yaml",
            "intervention_code": "SMALL_TRIAL", "design": {"design": "rct", "method": "dim"},
            "reestimate_consequences": False, "assumptions": ["success_rate", "duration:exit_shelter"],
            "durations": [{"name": "exit_shelter", "column": "shelter_nights", "event": "zero", "horizon": 2,
                           "hazard_ratio": 0.5, "description": "first year without a shelter night"}]}
    spec_path = tmp_path / "evaluations" / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'som.db'}"
    monkeypatch.setenv("SOM_DATABASE_URL", url)
    instance = dg.DagsterInstance.ephemeral()

    outcome = evaluate(spec_path, workdir=tmp_path / "work", delivery=tmp_path / "delivery", instance=instance)
    assert outcome.success, outcome.failures
    verdicts = {v["assumption"]: v for v in outcome.verdicts}
    assert set(verdicts) == {"success_rate", "duration:exit_shelter"}
    v = verdicts["duration:exit_shelter"]
    assert v["assumed"] == math.log(0.5) and v["realised"] > 0 and v["label"] == "refuted-overestimated"
    assert "Holm-adjusted over 2 assumptions" in v["sentence"] and "log hazard ratio" in v["sentence"]
    assert "unchanged for them" in outcome.proposal["reason"]
    assert outcome.proposal["content"]["consequences"] == PARAMS["consequences"]  # nothing re-estimated, nothing moved
    with ParameterStore(url) as store:
        stored = {r["assumption"]: r for r in store.verdicts_for_run(outcome.evaluation_run_id)}
        details = stored["duration:exit_shelter"]["evidence"]["details"]
        assert details["pretrend_gate"].startswith("not applicable") and details["design"] == "rct"
        assert details["event"] == "shelter_nights = 0" and details["cluster"] == "person"
        estimates = [e for e in store.estimates_for_run(outcome.evaluation_run_id)
                     if e["outcome"] == "duration:exit_shelter"]
        hr = next(e for e in estimates if e["estimand"] == "hazard_ratio")
        assert math.log(hr["estimate"]) == pytest.approx(v["realised"]) and hr["n_treated"] >= 20
        assert {e["estimand"] for e in estimates} == {"log_hazard_ratio", "hazard_ratio", "survival_difference"}
    event = instance.get_latest_materialization_event(dg.AssetKey("duration_effects"))
    assert event is not None
    metadata = event.asset_materialization.metadata
    table = metadata["hazard_ratios"].value
    assert [r.data["estimand"] for r in table.records][:2] == ["log_hazard_ratio", "hazard_ratio"]
