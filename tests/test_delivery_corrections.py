"""A run evaluates exactly the delivery that triggered it; a corrected delivery of a vintage is a new run.

Two synthetic worlds (different seeds, same vintage) are dropped into the landing folder; the sensor's
requests are executed with the run config the sensor produced, and each run's delivery output and store
run carry that folder's own data hash.
"""

import json
import os
import time

import dagster as dg
import pytest

from pipeline.defs.automation import landing_requests
from pipeline.defs.partitions import VINTAGES
from pipeline.landing import deliveries_of, find_delivery, inspect_delivery
from pipeline.registers import delivery_hash, read_manifest

PERSONS = 600
EVALUATION = "housing_first_demo_eval"


def _drop(landing, name, seed, *, mtime):
    """Write a small homelessness delivery to ``landing/name`` with every file's mtime set to ``mtime``."""
    from som_models.simulate import simulate, write_delivery

    folder = write_delivery(simulate("homelessness", PERSONS, seed), landing / name)
    for path in folder.iterdir():
        os.utime(path, (mtime, mtime))
    return folder


@pytest.fixture
def landing(tmp_path):
    """Vintage 2023-06 delivered twice: ``b_original`` first, then the correction ``a_fix`` (sorts first by name)."""
    landing = tmp_path / "landing"
    now = time.time()
    original = _drop(landing, "b_original", 11, mtime=now - 3600)
    fix = _drop(landing, "a_fix", 12, mtime=now - 60)
    return landing, original, fix


@pytest.fixture
def env(monkeypatch):
    monkeypatch.delenv("SOM_DATABASE_URL", raising=False)
    monkeypatch.delenv("SOM_DELIVERY", raising=False)
    monkeypatch.delenv("SOM_REQUIRE_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("SOM_PSEUDONYM_KEY", "cd" * 32)


def _data_hash(folder):
    return delivery_hash(read_manifest(folder))


def test_the_current_delivery_of_a_vintage_is_the_newest_not_the_last_by_name(landing):
    landing, original, fix = landing
    assert [d.folder.name for d in deliveries_of(landing, "2023-06")] == ["b_original", "a_fix"]
    assert find_delivery(landing, "2023-06") == fix
    with pytest.raises(ValueError, match="no complete delivery with vintage '1999-06'"):
        find_delivery(landing, "1999-06")


def test_each_sensor_run_evaluates_its_own_delivery_and_the_store_is_not_replayed(tmp_path, landing, env):
    from pipeline.definitions import ASSETS, all_checks, build_resources
    from pipeline.store import ParameterStore, database_url

    landing, original, fix = landing
    work = tmp_path / "som"
    result = landing_requests(landing, known_vintages=set(), cursor=None)
    requests = result.run_requests
    assert [r.tags["som/delivery"] for r in requests] == ["b_original", "a_fix"]
    by_name = {r.tags["som/delivery"]: r for r in requests}
    assert "som/supersedes" not in by_name["b_original"].tags
    assert by_name["a_fix"].tags["som/supersedes"] == inspect_delivery(original).fingerprint
    assert {r.run_key for r in requests} == {f"{EVALUATION}|2023-06|{inspect_delivery(f).fingerprint}" for f in (original, fix)}

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(VINTAGES.name, ["2023-06"])
    instance.add_dynamic_partitions("evaluation", [EVALUATION])
    resources = build_resources(str(work), landing=str(landing))
    outputs = {}
    for request in requests:
        config = request.run_config["ops"]["delivery"]["config"]
        assert config["folder"] == str(landing / request.tags["som/delivery"])
        run = dg.materialize([*ASSETS, *all_checks()], resources=resources, instance=instance, tags=request.tags,
                             partition_key=request.partition_key, run_config=request.run_config, raise_on_error=False)
        delivery = run.output_for_node("delivery")
        outputs[request.tags["som/delivery"]] = (delivery, run.output_for_node("parameter_proposal"))
        assert instance.get_run_by_id(run.run_id).tags["som/fingerprint"] == config["fingerprint"]
    for name, folder in (("b_original", original), ("a_fix", fix)):
        delivery, proposal = outputs[name]
        assert delivery["folder"] == str(folder) and delivery["data_hash"] == _data_hash(folder)
        assert delivery["fingerprint"] == inspect_delivery(folder).fingerprint
    assert outputs["a_fix"][0]["supersedes"] == inspect_delivery(original).fingerprint
    assert _data_hash(original) != _data_hash(fix)
    with ParameterStore(database_url(work)) as store:
        runs = {r.id: r for r in store.runs()}
        for name, folder in (("b_original", original), ("a_fix", fix)):
            assert runs[outputs[name][1]["run_id"]].data_hash == _data_hash(folder)

    # A sensor starting afresh (empty cursor: first tick after `som evaluate` ran them) requests nothing.
    def store_runs():
        with ParameterStore(database_url(work)) as store:
            return store.runs()

    again = landing_requests(landing, known_vintages={"2023-06"}, cursor=None, store_runs=store_runs)
    assert again.run_requests == []
    assert again.skip_reason.skip_message.count("already evaluated on these data") == 2
    assert json.loads(again.cursor)["keys"] == sorted(r.run_key for r in requests)


def test_the_delivery_asset_refuses_a_folder_whose_content_changed(tmp_path, landing, env):
    from pipeline.definitions import assets, build_resources

    landing, original, fix = landing
    request = landing_requests(landing, known_vintages=set()).run_requests[0]
    assert request.tags["som/delivery"] == "b_original"
    (original / "indsats.parquet").write_bytes((original / "indsats.parquet").read_bytes() + b"\0")  # a rewrite
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(VINTAGES.name, ["2023-06"])
    instance.add_dynamic_partitions("evaluation", [EVALUATION])
    with pytest.raises(Exception, match="changed after the run was requested|no longer complete"):
        dg.materialize([assets.delivery], resources=build_resources(str(tmp_path / "som"), landing=str(landing)),
                       instance=instance, partition_key=request.partition_key, run_config=request.run_config)


def test_without_config_the_newest_delivery_is_evaluated_and_the_choice_is_recorded(tmp_path, landing, env):
    from pipeline.definitions import assets, build_resources

    landing, original, fix = landing
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(VINTAGES.name, ["2023-06"])
    instance.add_dynamic_partitions("evaluation", [EVALUATION])
    result = dg.materialize([assets.delivery], resources=build_resources(str(tmp_path / "som"), landing=str(landing)),
                            instance=instance,
                            partition_key=dg.MultiPartitionKey({"evaluation": EVALUATION, "vintage": "2023-06"}))
    output = result.output_for_node("delivery")
    assert output["folder"] == str(fix) and output["data_hash"] == _data_hash(fix)
    metadata = result.asset_materializations_for_node("delivery")[0].metadata
    assert metadata["chosen_by"].value == "newest of vintage"
    assert metadata["supersedes"].value == inspect_delivery(original).fingerprint
    assert "chose a_fix" in metadata["choice"].value and "b_original" in metadata["choice"].value
