"""A real backfill over four vintages: Dagster instance on PostgreSQL, the daemon, the default run launcher
and the multiprocess executor (chosen by SOM_EXECUTOR, i.e. by configuration). Runs when
SOM_TEST_POSTGRES_URL names a PostgreSQL server (.ci/run starts one), skipped otherwise."""

import time

import dagster as dg
import pytest

from pipeline.store.testing import SKIP_REASON, postgres_admin_url, temporary_postgres_database

pytestmark = pytest.mark.skipif(postgres_admin_url() is None, reason=SKIP_REASON)

VINTAGES = ["2023-06", "2024-06", "2025-06", "2026-06"]
EVALUATION = "housing_first_demo_eval"
PERSONS = 400


def _deliveries(landing):
    """Four small homelessness deliveries (one per vintage, different seeds)."""
    from local_deployment import vintage_deliveries

    return vintage_deliveries(landing, VINTAGES, persons=PERSONS, first_seed=40)


def test_backfill_over_four_vintages_on_postgres_with_the_multiprocess_executor(tmp_path):
    from local_deployment import launch_asset_backfill, local_deployment, wait_for_backfill

    from pipeline.definitions import build_definitions
    from pipeline.defs.partitions import VINTAGES as VINTAGE_PARTITIONS
    from pipeline.registers import delivery_hash, read_manifest
    from pipeline.store import ParameterStore

    folders = _deliveries(tmp_path / "landing")
    key = tmp_path / "pseudonym.key"
    key.write_text("5a" * 32)
    admin = postgres_admin_url()
    with temporary_postgres_database(admin) as dagster_url, temporary_postgres_database(admin) as store_url:
        env = {"SOM_HOME": str(tmp_path / "som"), "SOM_LANDING": str(tmp_path / "landing"),
               "SOM_DATABASE_URL": store_url, "SOM_EXECUTOR": "multiprocess", "SOM_MAX_CONCURRENT": "2",
               "SOM_PSEUDONYM_KEY_FILE": str(key), "SOM_PSEUDONYM_KEY": "", "SOM_DELIVERY": "",
               "GX_ANALYTICS_ENABLED": "False"}
        with local_deployment(tmp_path / "deployment", env=env, postgres_url=dagster_url) as deployment:
            instance = deployment.instance
            instance.add_dynamic_partitions(VINTAGE_PARTITIONS.name, VINTAGES)
            instance.add_dynamic_partitions("evaluation", [EVALUATION])
            keys = [str(dg.MultiPartitionKey({"evaluation": EVALUATION, "vintage": v})) for v in VINTAGES]
            started = time.monotonic()
            backfill_id = launch_asset_backfill(instance, build_definitions(str(tmp_path / "som")), keys)
            deployment.start()
            runs = wait_for_backfill(instance, backfill_id, runs=len(keys), timeout=600)  # ~2.5 min on 2 busy cores
            elapsed = time.monotonic() - started
            failed = {r.tags.get("dagster/partition"): r.status.value for r in runs if r.status != dg.DagsterRunStatus.SUCCESS}
            assert failed == {}, (failed, (deployment.home / "daemon.log").read_text()[-3000:])
            assert sorted(r.tags["dagster/partition"] for r in runs) == sorted(keys)
            for run in runs:
                starts = [e for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)]
                pids = {e.dagster_event.pid for e in starts}
                assert len(starts) > 5 and len(pids) > 1, "steps ran in one process: not the multiprocess executor"
        with ParameterStore(store_url) as store:
            hashes = {r.data_vintage: r.data_hash for r in store.runs() if r.evaluation_id == EVALUATION}
    assert hashes == {v: delivery_hash(read_manifest(f)) for v, f in folders.items()}
    print(f"backfill over {len(keys)} partitions (multiprocess executor, PostgreSQL instance): {elapsed:.1f} s")
