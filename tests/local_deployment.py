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
from pathlib import Path

import dagster as dg
import yaml

from som_reference.strict_yaml import load_yaml

REPO_ROOT = Path(__file__).resolve().parents[1]  # the deploy kit lives in the repository, not in the package

KIT_INSTANCE = REPO_ROOT / "deploy" / "dagster.yaml"
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def instance_config(home: Path, *, postgres_url: str | None, max_concurrent_runs: int) -> dict:
    """The kit's instance config with storage, folders and the run queue limit for a local deployment."""
    config = load_yaml(KIT_INSTANCE)
    config["storage"] = ({"postgres": {"postgres_url": postgres_url}} if postgres_url
                         else {"sqlite": {"base_dir": str(home / "history")}})
    config["compute_logs"]["config"]["base_dir"] = str(home / "compute_logs")
    config["local_artifact_storage"]["config"]["base_dir"] = str(home / "storage")
    config["run_queue"]["max_concurrent_runs"] = max_concurrent_runs
    config["run_queue"]["dequeue_interval_seconds"] = 1
    return config


MARKER_ENV = "SOM_LOCAL_DEPLOYMENT"


def _marked_processes(marker: str) -> list[int]:
    """Ids of the processes whose environment carries this deployment's marker (Linux /proc)."""
    wanted = f"{MARKER_ENV}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


class LocalDeployment:
    """An instance in ``home`` and, after :meth:`start`, a daemon serving it (stopped by :meth:`stop`).

    Every process of the deployment (daemon, code server, runs, steps) carries a marker in its environment;
    :meth:`stop` ends exactly those, as the code server starts runs in sessions of their own.
    """

    def __init__(self, folder: Path, *, env: Mapping[str, str], postgres_url: str | None, max_concurrent_runs: int):
        self.home = Path(folder) / "dagster_home"
        self.home.mkdir(parents=True, exist_ok=True)
        config = instance_config(self.home, postgres_url=postgres_url, max_concurrent_runs=max_concurrent_runs)
        (self.home / "dagster.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        self.workspace = self.home / "workspace.yaml"
        self.workspace.write_text(yaml.safe_dump({"load_from": [{"python_module": {
            "module_name": "pipeline.definitions", "working_directory": str(REPO_ROOT), "location_name": "som"}}]}))
        self.marker = uuid.uuid4().hex
        self.env = {**os.environ, **env, "DAGSTER_HOME": str(self.home), MARKER_ENV: self.marker}
        self.instance = dg.DagsterInstance.from_config(str(self.home))
        self._daemon: subprocess.Popen | None = None

    def start(self) -> None:
        """Start ``dagster-daemon run`` (output in ``{home}/daemon.log``)."""
        daemon_bin = Path(sys.executable).with_name("dagster-daemon")
        with open(self.home / "daemon.log", "wb") as log:
            self._daemon = subprocess.Popen([str(daemon_bin), "run", "-w", str(self.workspace)], cwd=REPO_ROOT,
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        """End the daemon and every process it started (by their ids), then release the instance."""
        if self._daemon is not None:
            self._daemon.terminate()
            try:
                self._daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._daemon.kill()
                self._daemon.wait()
        for _ in range(3):
            pids = _marked_processes(self.marker)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
        self.instance.dispose()


@contextmanager
def local_deployment(folder: Path, *, env: Mapping[str, str], postgres_url: str | None = None,
                     max_concurrent_runs: int = 2) -> Iterator[LocalDeployment]:
    """A :class:`LocalDeployment` in ``folder`` (``env`` is added to the environment of every process);
    call ``start()`` once the work is submitted, so the daemon's first iteration finds it."""
    deployment = LocalDeployment(folder, env=env, postgres_url=postgres_url, max_concurrent_runs=max_concurrent_runs)
    try:
        yield deployment
    finally:
        deployment.stop()


def launch_asset_backfill(instance: dg.DagsterInstance, defs: dg.Definitions, partition_keys: Sequence[str],
                          *, title: str = "backfill") -> str:
    """Submit a backfill of the evaluation graph's assets over ``partition_keys`` (as "Materialize" on the
    evaluation job's Partitions tab does: the plan and knowledge assets have partitions of their own); its id."""
    from dagster._core.execution.backfill import PartitionBackfill

    from pipeline.definitions import ASSETS

    graph = defs.resolve_asset_graph()
    evaluation = {key for a in ASSETS for key in a.keys}
    evaluation_assets = [key for key in graph.get_all_asset_keys() if key in evaluation]
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=uuid.uuid4().hex[:8], asset_graph=graph, partition_names=list(partition_keys),
        asset_selection=evaluation_assets, backfill_timestamp=time.time(), tags={},
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


def submit_run(deployment: LocalDeployment, job_name: str, tags: Mapping[str, str]) -> str:
    """Queue one run of ``job_name`` with ``tags`` through the deployment's workspace (``dagster job launch``,
    as an operator would from a shell); the daemon's run queue launches it. Returns the run id."""
    import json

    run_id = str(uuid.uuid4())
    command = [str(Path(sys.executable).with_name("dagster")), "job", "launch", "-w", str(deployment.workspace),
               "-j", job_name, "--tags", json.dumps(dict(tags)), "--run-id", run_id]
    done = subprocess.run(command, cwd=REPO_ROOT, env=deployment.env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"dagster job launch failed: {done.stderr.strip().splitlines()[-1:]}")
    return run_id


def wait_for_runs(instance: dg.DagsterInstance, run_ids: Sequence[str], *, timeout: float) -> list[dg.DagsterRun]:
    """Wait until every run in ``run_ids`` has finished; the runs."""
    deadline = time.monotonic() + timeout
    while True:
        runs = [instance.get_run_by_id(r) for r in run_ids]
        if all(r is not None and r.status in FINISHED for r in runs):
            return runs
        if time.monotonic() > deadline:
            raise TimeoutError(f"runs not finished after {timeout:.0f} s: {[r.status.value if r else None for r in runs]}")
        time.sleep(0.5)


def vintage_deliveries(landing: Path, vintages: Sequence[str], *, persons: int, first_seed: int) -> dict[str, Path]:
    """One small homelessness delivery per vintage (seeds ``first_seed``, ``first_seed + 1``, …) under ``landing``."""
    import json

    from som_models.simulate import simulate, write_delivery

    folders = {}
    for i, vintage in enumerate(vintages):
        folder = write_delivery(simulate("homelessness", persons, first_seed + i), Path(landing) / f"d{vintage}")
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["vintage"] = vintage
        (folder / "manifest.json").write_text(json.dumps(manifest))
        folders[vintage] = folder
    return folders
