"""A descriptive consequence profile goes through the one evaluation path: it is tested against SØM's
success-vs-non-success contrast (the ``descriptive_contrast`` output of the effects step), never against the
causal effect path, and the proposed version keeps its kind."""

from __future__ import annotations

import shutil

import dagster as dg
import yaml

from pipeline.runner import evaluate
from pipeline.store import ParameterStore
from som_reference import asset


def test_descriptive_profile_is_judged_against_the_descriptive_contrast(demo_delivery, tmp_path, monkeypatch):
    folder, _ = demo_delivery
    (tmp_path / "parameters").mkdir()
    (tmp_path / "evaluations").mkdir()
    params = yaml.safe_load(asset("parameters", "housing_first_demo.yaml").read_text(encoding="utf-8"))
    params["consequences"]["kontanthjaelp_weeks"]["kind"] = "descriptive"
    (tmp_path / "parameters" / "housing_first_demo.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    spec = yaml.safe_load(asset("evaluations", "housing_first_demo.yaml").read_text(encoding="utf-8"))
    spec["assumptions"] = ["success_rate", "effect_path:kontanthjaelp_weeks"]
    spec_path = tmp_path / "evaluations" / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    delivery = shutil.copytree(folder, tmp_path / "delivery")
    monkeypatch.setenv("SOM_DATABASE_URL", f"sqlite:///{tmp_path / 'som.db'}")

    outcome = evaluate(spec_path, workdir=tmp_path / "work", delivery=delivery, instance=dg.DagsterInstance.ephemeral())
    assert outcome.success, outcome.failures
    labels = {v["assumption"]: v for v in outcome.verdicts}
    assert set(labels) == {"success_rate", "effect_path:kontanthjaelp_weeks"}  # the family is what the spec tests
    with ParameterStore(f"sqlite:///{tmp_path / 'som.db'}") as store:
        stored = {v["assumption"]: v for v in store.verdicts_for_run(outcome.evaluation_run_id)}
        evidence = stored["effect_path:kontanthjaelp_weeks"]["evidence"]
        assert evidence["profile_kind"] == "descriptive"
        assert "causal" not in str(evidence.get("level_source", "")).lower()
        assert stored["success_rate"]["evidence"]["profile_kind"] is None
        proposed = store.get_version("housing_first_demo", outcome.proposal["version"]).content
        assert proposed["consequences"]["kontanthjaelp_weeks"]["kind"] == "descriptive"
        assert proposed["consequences"]["shelter_nights"]["kind"] == "causal"
