"""The evaluation plan made when a parameter version is approved: the ``evaluation_plan`` asset (the same function
as ``som plan``) materialised by Dagster, and the approval sensor's decision; cohort sizes observed in the delivery;
realised vs planned precision as rows."""

import shutil

import dagster as dg
import pytest

from pipeline.defs.partitions import EVALUATIONS, evaluation_specs
from pipeline.defs.planning import approval_requests, approval_sensor, evaluation_plan
from pipeline.defs.resources import SomSettings
from pipeline.plan import load_plan, plan_path, realised_vs_planned

EVALUATION = "housing_first_demo_eval"


def test_plan_asset_plans_the_approved_version_from_the_landed_delivery(tmp_path, demo_delivery, monkeypatch):
    monkeypatch.setenv("SOM_PSEUDONYM_KEY", "ab" * 32)
    monkeypatch.delenv("SOM_DATABASE_URL", raising=False)
    folder, sim = demo_delivery
    landing = tmp_path / "landing"
    shutil.copytree(folder, landing / folder.name)
    specs = evaluation_specs()
    # nothing is approved yet: no request; once version 1 is approved (seeded), one request
    assert approval_requests(specs, {}, tmp_path).run_requests == []
    (request,) = approval_requests(specs, {"housing_first_demo": 1}, tmp_path, known_evaluations=[]).run_requests
    assert request.partition_key == EVALUATION and request.run_key == f"plan|{EVALUATION}|v1"
    with dg.instance_for_test() as instance:
        # the sensor reads the approvals from the parameter store: the seeded version 1 is approved, not planned
        import yaml

        from pipeline.store import ParameterStore
        from som_reference import asset

        store = ParameterStore.from_workdir(tmp_path)
        store.upgrade()
        store.ensure_parameter_set("housing_first_demo",
                                   yaml.safe_load(asset("parameters", "housing_first_demo.yaml").read_text()),
                                   source="test")
        store.close()
        som = SomSettings(workdir=str(tmp_path), landing=str(landing))
        tick = approval_sensor(dg.build_sensor_context(instance=instance, resources={"som": som}))
        assert [r.run_key for r in tick.run_requests] == [f"plan|{EVALUATION}|v1"]
        instance.add_dynamic_partitions(EVALUATIONS.name, [EVALUATION])
        result = dg.materialize(
            [evaluation_plan], partition_key=EVALUATION, instance=instance,
            resources={"som": som},
            run_config={"ops": {"evaluation_plan": {"config": {"version": 0, "voi_draws": 1000, "sim_draws": 300}}}},
        )
    assert result.success
    out = result.output_for_node("evaluation_plan")
    assert out["version"] == 1 and out["path"] == str(plan_path(tmp_path, "housing_first_demo", 1))
    stored = load_plan(tmp_path, "housing_first_demo", 1)
    # the cohorts are the delivery's observed participants, not the parameter set's 150 + 150
    design = stored["design"]
    assert set(design["cohort_sources"].values()) == {"observed"}
    assert sum(design["cohorts"].values()) > 300
    assert {a["assumption"] for a in stored["assumptions"]} >= {"success_rate", "course_years", "cost_per_participant"}
    course = next(a for a in stored["assumptions"] if a["assumption"] == "course_years")
    assert course["method"] == "simulation" and course["simulation"]["draws"] == 300
    assert "observed values" in course["simulation"]["values"]
    # the plan now exists: the sensor asks for nothing more for this approval
    assert approval_requests(specs, {"housing_first_demo": 1}, tmp_path).run_requests == []


def test_realised_vs_planned_rows():
    plan = {"assumptions": [
        {"assumption": "success_rate", "vintages": [{"vintage": 2019, "se": 0.05}, {"vintage": 2020, "se": 0.04}]},
        {"assumption": "course_years", "vintages": [{"vintage": 2021, "se": 0.1}]}]}
    verdicts = [{"assumption": "success_rate", "evidence": {"se": 0.02, "n_treated": 400}},
                {"assumption": "course_years", "evidence": {"se": 0.3, "n_treated": 3}}]
    rows = realised_vs_planned(plan, verdicts, 2020)
    assert rows == [{"assumption": "success_rate", "vintage": 2020, "planned_se": 0.04, "realised_se": 0.02,
                     "ratio": pytest.approx(0.5)}]  # course_years: no planned vintage by 2020
    (late,) = [r for r in realised_vs_planned(plan, verdicts, 2022) if r["assumption"] == "course_years"]
    assert late["realised_se"] is None and late["ratio"] is None  # 3 persons: withheld
    with pytest.raises(ValueError, match="register year"):
        realised_vs_planned(plan, verdicts, "2023-06")  # a delivery label, not a register year


def test_som_plan_on_the_demo_prints_the_decidable_vintage_per_assumption(tmp_path, demo_delivery, monkeypatch):
    import json

    from typer.testing import CliRunner

    from pipeline.cli import app
    from som_reference import asset

    monkeypatch.setenv("SOM_PSEUDONYM_KEY", "ab" * 32)
    monkeypatch.delenv("SOM_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    folder, _ = demo_delivery
    out = tmp_path / "plan.json"
    result = CliRunner().invoke(app, ["plan", str(asset("evaluations", "housing_first_demo.yaml")), "--delivery",
                                      str(folder), "--workdir", str(tmp_path), "--draws", "1000", "--sim-draws", "200",
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert "Cohort sizes: observed (2018: " in result.output
    for d in doc["decidable"]:  # every assumption is printed with its vintage (or that the horizon is too short)
        line = next(x for x in result.output.splitlines() if x.startswith(f"│ {d['assumption']} "))
        assert str(d["refutable_from"] or "not by the plan") in line
    assert {d["assumption"] for d in doc["decidable"]} == {
        "success_rate", "effect_path:shelter_nights", "effect_path:kontanthjaelp_weeks", "participants",
        "course_years", "cost_per_participant"}
    assert doc["value_of_information"]["udvalg"]["keys"]
