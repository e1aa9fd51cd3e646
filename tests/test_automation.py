"""Sensor, schedule and partitions: new deliveries start runs once; a verdict changes between vintages."""

import datetime
import json
import shutil

import dagster as dg

from pipeline.defs.automation import evaluation_job, landing_requests, landing_sensor, rerun_schedule, schedule_requests
from pipeline.defs.partitions import VINTAGES, evaluation_specs
from pipeline.defs.resources import SomSettings
from pipeline.landing import inspect_delivery


def _copy(delivery, landing, name, *, vintage=None, interventions=None):
    target = landing / name
    shutil.copytree(delivery, target)
    manifest = json.loads((target / "manifest.json").read_text())
    if vintage:
        manifest["vintage"] = vintage
    if interventions is not None:
        manifest["interventions"] = interventions
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def test_new_delivery_requests_one_run_then_none(tmp_path, demo_delivery):
    folder, _ = demo_delivery
    landing = tmp_path / "landing"
    _copy(folder, landing, "d1", interventions=["HOUSING_FIRST"])
    first = landing_requests(landing, known_vintages=set())
    assert [r.partition_key.keys_by_dimension for r in first.run_requests] == [
        {"evaluation": "housing_first_demo_eval", "vintage": "2023-06"}]
    assert first.dynamic_partitions_requests[0].partition_keys == ["2023-06"]
    again = landing_requests(landing, known_vintages={"2023-06"}, cursor=first.cursor)
    assert again.run_requests == [] and again.dynamic_partitions_requests == []
    assert "no new complete delivery" in again.skip_reason.skip_message


def test_runs_are_requested_only_for_evaluations_of_the_delivered_interventions(tmp_path, demo_delivery):
    folder, _ = demo_delivery
    _copy(folder, tmp_path / "landing", "d1", interventions=["MST"])
    mst = landing_requests(tmp_path / "landing", known_vintages=set())
    assert [r.partition_key.keys_by_dimension["evaluation"] for r in mst.run_requests] == ["youth_crime_demo_eval"]
    shutil.rmtree(tmp_path / "landing")
    _copy(folder, tmp_path / "landing", "d1", interventions=["SOMETHING_ELSE"])
    assert landing_requests(tmp_path / "landing", known_vintages=set()).run_requests == []


def test_half_copied_delivery_is_skipped_with_reason(tmp_path, demo_delivery):
    folder, _ = demo_delivery
    target = _copy(folder, tmp_path / "landing", "partial")
    (target / "dream.parquet").unlink()
    result = landing_requests(tmp_path / "landing", known_vintages=set())
    assert result.run_requests == []
    assert "partial: 1 listed file(s) missing" in result.skip_reason.skip_message
    assert "dream.parquet" in result.skip_reason.skip_message
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["files"].remove("dream.parquet")
    manifest["sha256"] = {"indsats.parquet": "0" * 64}
    (target / "manifest.json").write_text(json.dumps(manifest))
    assert "checksum mismatch" in inspect_delivery(target).reason


def test_sensor_through_dagster_context(tmp_path, demo_delivery, monkeypatch):
    folder, _ = demo_delivery
    _copy(folder, tmp_path / "landing", "d1")
    som = SomSettings(workdir=str(tmp_path / "som"), landing=str(tmp_path / "landing"))
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        with dg.build_sensor_context(instance=instance, resources={"som": som}) as context:
            result = landing_sensor(context)
        # The demo manifest lists its intervention (HOUSING_FIRST): only that evaluation is requested.
        assert [r.partition_key.keys_by_dimension["evaluation"] for r in result.run_requests] == ["housing_first_demo_eval"]
        assert all(r.run_key.endswith(inspect_delivery(tmp_path / "landing" / "d1").fingerprint) for r in result.run_requests)


def test_schedule_reruns_the_applicable_evaluations_on_the_latest_vintage(tmp_path, demo_delivery):
    folder, _ = demo_delivery
    assert rerun_schedule.cron_schedule == "0 3 1 * *"
    assert rerun_schedule.job_name == evaluation_job.name
    # every asset except the plan group and the knowledge group (each runs on its own job / config)
    assert evaluation_job.selection == dg.AssetSelection.all() - dg.AssetSelection.groups("plan", "knowledge")
    landing = tmp_path / "landing"
    _copy(folder, landing, "old", vintage="2022-06")
    current = _copy(folder, landing, "new", interventions=["HOUSING_FIRST"])  # the demo vintage 2023-06
    som = SomSettings(workdir=str(tmp_path / "som"), landing=str(landing))
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime.datetime(2026, 11, 1, 3),
                                       resources={"som": som}) as context:
            assert isinstance(rerun_schedule(context), dg.SkipReason)
        instance.add_dynamic_partitions(VINTAGES.name, ["2022-06", "2023-06"])
        instance.add_dynamic_partitions("evaluation", sorted(evaluation_specs()))
        tick = datetime.datetime(2026, 12, 1, 3, tzinfo=datetime.UTC)
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick, resources={"som": som}) as context:
            requests = rerun_schedule(context)
    # Only the evaluation of the delivered intervention (HOUSING_FIRST), pinned to the current delivery.
    assert [r.partition_key.keys_by_dimension for r in requests] == [
        {"evaluation": "housing_first_demo_eval", "vintage": "2023-06"}]
    config = requests[0].run_config["ops"]["delivery"]["config"]
    assert config["folder"] == str(current) and config["fingerprint"] == inspect_delivery(current).fingerprint
    assert requests[0].tags["som/delivery"] == "new"


def test_schedule_skips_when_no_evaluation_applies_or_no_delivery(tmp_path, demo_delivery):
    folder, _ = demo_delivery
    landing = tmp_path / "landing"
    assert "no complete delivery of the latest vintage 2023-06" in schedule_requests(["2023-06"], landing).skip_message
    _copy(folder, landing, "d", interventions=["MST"])
    mst = schedule_requests(["2023-06"], landing)
    assert [r.partition_key.keys_by_dimension["evaluation"] for r in mst] == ["youth_crime_demo_eval"]
    shutil.rmtree(landing)
    _copy(folder, landing, "d", interventions=["SOMETHING_ELSE"])
    skip = schedule_requests(["2023-06"], landing)
    assert isinstance(skip, dg.SkipReason) and "no evaluation applies to the interventions SOMETHING_ELSE" in skip.skip_message
    shutil.rmtree(landing)
    _copy(folder, landing, "d", interventions=None)
    without = json.loads((landing / "d" / "manifest.json").read_text())
    without.pop("interventions")
    (landing / "d" / "manifest.json").write_text(json.dumps(without))
    requested = {r.partition_key.keys_by_dimension["evaluation"] for r in schedule_requests(["2023-06"], landing)}
    assert requested == set(evaluation_specs())


def test_two_vintages_and_a_verdict_that_changes(tmp_path, demo_delivery, monkeypatch):
    """Vintage 2023-06: the demo world (kontanthjælp refuted). Vintage 2024-06: a world where the
    kontanthjælp effect is as large as assumed, so the verdict on it turns consistent."""
    from pipeline.runner import run_evaluation
    from pipeline.store import ParameterStore, database_url
    from som_models.simulate import write_delivery
    from som_models.simulate.homelessness import HomelessnessWorld, simulate_homelessness

    monkeypatch.delenv("SOM_DATABASE_URL", raising=False)
    folder, _ = demo_delivery
    landing = tmp_path / "landing"
    first = _copy(folder, landing, "2023")
    # a later vintage has more information than the earlier one (deliveries are cumulative); a look with less
    # gets no α under alpha spending over repeated looks and could not change the verdict
    second = write_delivery(simulate_homelessness(9000, 2, HomelessnessWorld(kh_effect_per_responder=0.13)), landing / "2024")
    manifest = json.loads((second / "manifest.json").read_text())
    manifest["vintage"] = "2024-06"
    (second / "manifest.json").write_text(json.dumps(manifest))
    instance = dg.DagsterInstance.ephemeral()
    work = tmp_path / "som"
    labels = {}
    for delivery in (first, second):
        outcome = run_evaluation(work, delivery=delivery, instance=instance)
        assert outcome.success, outcome.failures
        labels[delivery.name] = {v["assumption"]: v["label"] for v in outcome.verdicts}
    assert labels["2023"]["effect_path:kontanthjaelp_weeks"] == "refuted-overestimated"
    assert labels["2024"]["effect_path:kontanthjaelp_weeks"] == "consistent"
    assert set(instance.get_dynamic_partitions(VINTAGES.name)) == {"2023-06", "2024-06"}
    with ParameterStore(database_url(work)) as store:
        assert {v.data_vintage for v in store.versions("housing_first_demo") if v.status == "proposed"} == {"2023-06", "2024-06"}
