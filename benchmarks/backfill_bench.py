"""Wall time of two single evaluation runs against a backfill over the same two vintages.

    uv run --frozen python benchmarks/backfill_bench.py [--persons 2000] [--executor in_process|multiprocess]
                                                      [--postgres URL]

Both go through a real local deployment (``pipeline.defs.local_deployment``): ``dagster-daemon`` on an
instance configured like ``deploy/dagster.yaml`` (SQLite, or PostgreSQL with ``--postgres``), the code
location in a gRPC server, every run launched as its own process with the Definitions-level executor
(``SOM_EXECUTOR``, default in-process).

* backfill: an asset backfill over the two partitions (what the UI's "Materialize" over partitions submits),
  queued before the daemon starts; the clock runs from the daemon's start (code location load included) until
  both runs have finished;
* two single runs: ``evaluation_job`` on each partition, queued with ``dagster job launch`` one after the other
  on the running daemon; the clock runs from each run's submission until it has finished (summed).

The in-process ``run_evaluation`` time of the same two runs (``som evaluate``, imports done beforehand) is printed
for reference. Target: backfill ≤ 2 × the two single runs. Run it on a quiet machine, never next to the tests.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

VINTAGES = ("2023-06", "2024-06")
EVALUATION = "housing_first_demo_eval"


def _deliveries(landing: Path, persons: int) -> dict[str, Path]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the deploy-kit harness of the tests
    from local_deployment import vintage_deliveries

    return vintage_deliveries(landing, VINTAGES, persons=persons, first_seed=2)


def in_process_runs(tmp: Path, deliveries: dict[str, Path]) -> float:
    """Seconds for ``run_evaluation`` on each delivery, one after the other, in this process."""
    import dagster as dg

    from pipeline.runner import run_evaluation

    instance = dg.DagsterInstance.ephemeral()
    started = time.perf_counter()
    for folder in deliveries.values():
        outcome = run_evaluation(tmp / "in_process", delivery=folder, instance=instance)
        if not outcome.success:
            raise SystemExit(f"run failed: {outcome.failures}")
    return time.perf_counter() - started


def _durations(instance, runs) -> list[float]:
    records = [instance.get_run_record_by_id(r.run_id) for r in runs]
    return sorted(r.end_time - r.start_time for r in records)


def deployed(tmp: Path, landing: Path, executor: str, postgres: str | None) -> dict:
    """Backfill, then two single runs, on one local deployment; wall times and each run's own duration."""
    import dagster as dg

    from pipeline.definitions import build_definitions
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the deploy-kit harness of the tests
    from local_deployment import (
        launch_asset_backfill,
        local_deployment,
        submit_run,
        wait_for_backfill,
        wait_for_runs,
    )

    from pipeline.defs.partitions import VINTAGES as VINTAGE_PARTITIONS

    env = {"SOM_HOME": str(tmp / "deployed"), "SOM_LANDING": str(landing), "SOM_EXECUTOR": executor,
           "SOM_DATABASE_URL": "", "SOM_DELIVERY": "", "GX_ANALYTICS_ENABLED": "False"}
    keys = [str(dg.MultiPartitionKey({"evaluation": EVALUATION, "vintage": v})) for v in VINTAGES]
    out = {}
    with local_deployment(tmp / "deployment", env=env, postgres_url=postgres) as deployment:
        instance = deployment.instance
        instance.add_dynamic_partitions(VINTAGE_PARTITIONS.name, list(VINTAGES))
        instance.add_dynamic_partitions("evaluation", [EVALUATION])
        backfill_id = launch_asset_backfill(instance, build_definitions(str(tmp / "deployed")), keys, title="bench")
        started = time.perf_counter()
        deployment.start()
        runs = wait_for_backfill(instance, backfill_id, runs=len(keys), timeout=1800)
        out["backfill"] = time.perf_counter() - started
        out["backfill_runs"] = _durations(instance, runs)
        single, single_runs = 0.0, []
        for key in keys:
            run_id = submit_run(deployment, "evaluation_job", {"dagster/partition": key})
            started = time.perf_counter()
            single_runs += wait_for_runs(instance, [run_id], timeout=1800)
            single += time.perf_counter() - started
        out["single"], out["single_runs"] = single, _durations(instance, single_runs)
        failed = [r.run_id for r in [*runs, *single_runs] if r.status != dg.DagsterRunStatus.SUCCESS]
        if failed:
            raise SystemExit(f"runs failed: {failed}; see {deployment.home / 'daemon.log'}")
    return out


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
        reference = in_process_runs(tmp, deliveries)
        result = deployed(tmp, tmp / "landing", args.executor, args.postgres)
    runs = lambda ts: ", ".join(f"{t:.1f} s" for t in ts)  # noqa: E731
    print(f"persons per delivery: {args.persons}; vintages: {', '.join(VINTAGES)}; executor: {args.executor}; "
          f"cpus: {os.cpu_count()}; load average (1 min): {os.getloadavg()[0]:.2f}")
    print(f"two single runs, launched one after the other: {result['single']:7.1f} s (runs: {runs(result['single_runs'])})")
    print(f"backfill over the same two vintages:           {result['backfill']:7.1f} s (runs: {runs(result['backfill_runs'])}; "
          "clock includes daemon start and code location load)")
    print(f"ratio backfill / single runs: {result['backfill'] / result['single']:.2f} (target ≤ 2)")
    print(f"reference: the two runs in one warm process (run_evaluation, as som evaluate): {reference:.1f} s")


if __name__ == "__main__":
    main()
