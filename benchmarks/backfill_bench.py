"""Wall time of two single evaluation runs against a backfill over the same two vintages.

    uv run --frozen python benchmarks/backfill_bench.py [--persons 2000] [--executor in_process|multiprocess]
                                                      [--postgres URL]

* single runs: ``pipeline.runner.run_evaluation`` (what ``som evaluate`` does) on each vintage, one after the
  other, in this process (module imports are done before the clock starts);
* backfill: a real asset backfill over the two partitions — ``dagster-daemon`` on an instance configured like
  ``deploy/dagster.yaml`` (SQLite, or PostgreSQL with ``--postgres``), code location in a gRPC server, each
  run launched as its own process with the Definitions-level executor (``SOM_EXECUTOR``, default
  in-process). The clock starts when the daemon starts (code location load included) and stops when both
  runs have finished; each run's own duration is printed too.

Target: backfill ≤ 2 × the two single runs. Run it on a quiet machine, never next to the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

VINTAGES = ("2023-06", "2024-06")
EVALUATION = "housing_first_demo_eval"


def _deliveries(landing: Path, persons: int) -> dict[str, Path]:
    from som_models.simulate import simulate, write_delivery

    out = {}
    for i, vintage in enumerate(VINTAGES):
        folder = write_delivery(simulate("homelessness", persons, 2 + i), landing / f"d{vintage}")
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["vintage"] = vintage
        (folder / "manifest.json").write_text(json.dumps(manifest))
        out[vintage] = folder
    return out


def single_runs(tmp: Path, deliveries: dict[str, Path]) -> float:
    import dagster as dg

    from pipeline.runner import run_evaluation

    instance = dg.DagsterInstance.ephemeral()
    started = time.perf_counter()
    for folder in deliveries.values():
        outcome = run_evaluation(tmp / "single", delivery=folder, instance=instance)
        if not outcome.success:
            raise SystemExit(f"single run failed: {outcome.failures}")
    return time.perf_counter() - started


def backfill(tmp: Path, landing: Path, executor: str, postgres: str | None) -> tuple[float, list[float]]:
    import dagster as dg

    from pipeline.definitions import build_definitions
    from pipeline.defs.local_deployment import launch_asset_backfill, local_deployment, wait_for_backfill
    from pipeline.defs.partitions import VINTAGES as VINTAGE_PARTITIONS

    env = {"SOM_HOME": str(tmp / "backfill"), "SOM_LANDING": str(landing), "SOM_EXECUTOR": executor,
           "SOM_DATABASE_URL": "", "SOM_DELIVERY": "", "GX_ANALYTICS_ENABLED": "False"}
    with local_deployment(tmp / "deployment", env=env, postgres_url=postgres) as deployment:
        instance = deployment.instance
        instance.add_dynamic_partitions(VINTAGE_PARTITIONS.name, list(VINTAGES))
        keys = [str(dg.MultiPartitionKey({"evaluation": EVALUATION, "vintage": v})) for v in VINTAGES]
        backfill_id = launch_asset_backfill(instance, build_definitions(str(tmp / "backfill")), keys, title="bench")
        started = time.perf_counter()
        deployment.start()
        runs = wait_for_backfill(instance, backfill_id, runs=len(keys), timeout=1800)
        wall = time.perf_counter() - started
        failed = [r.run_id for r in runs if r.status != dg.DagsterRunStatus.SUCCESS]
        if failed:
            raise SystemExit(f"backfill runs failed: {failed}; see {deployment.home / 'daemon.log'}")
        per_run = []
        for run in runs:
            record = instance.get_run_record_by_id(run.run_id)
            per_run.append(record.end_time - record.start_time)
    return wall, per_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--executor", default=os.environ.get("SOM_EXECUTOR") or "in_process")
    parser.add_argument("--postgres", default=None, help="SQLAlchemy URL of an empty PostgreSQL database for the instance")
    args = parser.parse_args()
    os.environ.setdefault("SOM_PSEUDONYM_KEY", "bb" * 32)
    os.environ["SOM_DATABASE_URL"] = ""
    os.environ["GX_ANALYTICS_ENABLED"] = "False"
    import great_expectations  # noqa: F401  (imports before the clock: the runs below pay them in their processes)

    import pipeline.definitions  # noqa: F401

    with tempfile.TemporaryDirectory(prefix="som-backfill-bench-") as name:
        tmp = Path(name)
        deliveries = _deliveries(tmp / "landing", args.persons)
        single = single_runs(tmp, deliveries)
        wall, per_run = backfill(tmp, tmp / "landing", args.executor, args.postgres)
    print(f"persons per delivery: {args.persons}; vintages: {', '.join(VINTAGES)}; cpus: {os.cpu_count()}; "
          f"load average: {os.getloadavg()[0]:.2f}")
    print(f"two single runs (in-process, one after the other): {single:7.1f} s")
    print(f"backfill over the same two vintages ({args.executor} executor, daemon + run launcher): {wall:7.1f} s "
          f"(runs: {', '.join(f'{t:.1f} s' for t in sorted(per_run))})")
    print(f"ratio backfill / single runs: {wall / single:.2f} (target ≤ 2)")


if __name__ == "__main__":
    main()
