"""A throwaway Dagster deployment on this machine, for the backfill test and benchmark.

It is the deploy kit's set-up without containers: the instance config is ``deploy/dagster.yaml`` (storage
replaced by the given PostgreSQL URL, or SQLite; logs and artifacts in the deployment's folder), a
``dagster-daemon`` process runs the run queue and backfills, and the daemon's code location is
``pipeline.definitions`` started in a gRPC server subprocess, which launches every run as its own process
(Dagster's default run launcher) — the same path as a backfill launched from the UI.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import yaml

from pipeline.workdir import REPO_ROOT

KIT_INSTANCE = REPO_ROOT / "deploy" / "dagster.yaml"
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def instance_config(home: Path, *, postgres_url: str | None, max_concurrent_runs: int) -> dict:
    """The kit's instance config with storage, folders and the run queue limit for a local deployment."""
    config = yaml.safe_load(KIT_INSTANCE.read_text(encoding="utf-8"))
    config["storage"] = ({"postgres": {"postgres_url": postgres_url}} if postgres_url
                         else {"sqlite": {"base_dir": str(home / "history")}})
    config["compute_logs"]["config"]["base_dir"] = str(home / "compute_logs")
    config["local_artifact_storage"]["config"]["base_dir"] = str(home / "storage")
    config["run_queue"]["max_concurrent_runs"] = max_concurrent_runs
    config["run_queue"]["dequeue_interval_seconds"] = 1
    return config


@dataclass(frozen=True)
class LocalDeployment:
    home: Path
    env: Mapping[str, str]
    instance: dg.DagsterInstance


@contextmanager
def local_deployment(folder: Path, *, env: Mapping[str, str], postgres_url: str | None = None,
                     max_concurrent_runs: int = 2) -> Iterator[LocalDeployment]:
    """Start a daemon on an instance in ``folder`` (``env`` is added to the environment of every process)."""
    home = Path(folder) / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    config = instance_config(home, postgres_url=postgres_url, max_concurrent_runs=max_concurrent_runs)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    workspace = home / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [{"python_module": {
        "module_name": "pipeline.definitions", "working_directory": str(REPO_ROOT), "location_name": "som"}}]}))
    full_env = {**os.environ, **env, "DAGSTER_HOME": str(home)}
    daemon_bin = Path(sys.executable).with_name("dagster-daemon")
    log = open(home / "daemon.log", "wb")
    daemon = subprocess.Popen([str(daemon_bin), "run", "-w", str(workspace)], cwd=REPO_ROOT, env=full_env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        yield LocalDeployment(home, env, instance)
    finally:
        instance.dispose()
        try:
            os.killpg(daemon.pid, signal.SIGTERM)  # the daemon, its code server and any run still going
            daemon.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        log.close()


def launch_asset_backfill(instance: dg.DagsterInstance, defs: dg.Definitions, partition_keys: Sequence[str],
                          *, title: str = "backfill") -> str:
    """Submit a backfill of every asset over ``partition_keys`` (as the UI's "Materialize" does); its id."""
    from dagster._core.execution.backfill import PartitionBackfill

    graph = defs.resolve_asset_graph()
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=uuid.uuid4().hex[:8], asset_graph=graph, partition_names=list(partition_keys),
        asset_selection=list(graph.get_all_asset_keys()), backfill_timestamp=time.time(), tags={},
        dynamic_partitions_store=instance, all_partitions=False, title=title, description=None, run_config=None)
    instance.add_backfill(backfill)
    return backfill.backfill_id


def wait_for_backfill(instance: dg.DagsterInstance, backfill_id: str, *, runs: int, timeout: float) -> list[dg.DagsterRun]:
    """Wait until ``runs`` runs of the backfill have finished; their runs (TimeoutError with the daemon's
    state when it takes longer than ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        found = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        if len(found) >= runs and all(r.status in FINISHED for r in found):
            return found
        if time.monotonic() > deadline:
            backfill = instance.get_backfill(backfill_id)
            raise TimeoutError(f"backfill {backfill_id} not finished after {timeout:.0f} s: status "
                               f"{backfill.status if backfill else 'unknown'}, runs {[r.status.value for r in found]}")
        time.sleep(0.5)
