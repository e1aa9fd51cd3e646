"""Running the evaluation graph in-process against a workdir (used by ``som demo`` and the tests)."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.workdir import dagster_home


@dataclass(frozen=True)
class RunOutcome:
    success: bool
    failures: tuple[str, ...]
    verdicts: tuple[dict, ...]
    projections: dict
    versions: dict
    report: str | None
    database: str
    run_id: str


def _root_message(error) -> str:
    """The innermost error's one-line message (Dagster wraps user errors in its own)."""
    if error is None:
        return "failed"
    while error.cause is not None:
        error = error.cause
    lines = error.message.strip().splitlines()
    return lines[-1] if lines else error.cls_name or "failed"


def generate_demo_delivery(workdir: Path, *, persons: int, seed: int, name: str = "demo") -> Path:
    """Write a synthetic homelessness delivery to ``{workdir}/landing/{name}`` (replacing an old one whole)."""
    from som_models.simulate import simulate, write_delivery

    target = Path(workdir) / "landing" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        write_delivery(simulate("homelessness", persons, seed), staging)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def run_evaluation(workdir: Path, *, delivery: Path, evaluation_spec: str = "", instance=None,
                   log_level: str = "WARNING") -> RunOutcome:
    """Materialise every asset and check in-process for one evaluation × vintage partition.

    ``evaluation_spec`` defaults to the demo spec; its folder becomes the evaluations folder. The delivery's
    vintage is registered as a dynamic partition. ``instance`` defaults to the workdir's Dagster instance.
    """
    import dagster as dg

    from pipeline.definitions import ASSETS, all_checks, build_resources
    from pipeline.defs.partitions import VINTAGES
    from pipeline.evaluation import load_spec
    from pipeline.registers import read_manifest
    from pipeline.store import database_url
    from pipeline.workdir import DEFAULT_SPEC

    spec_path = Path(evaluation_spec or DEFAULT_SPEC).resolve()
    evaluation = load_spec(spec_path).spec.evaluation
    vintage = read_manifest(Path(delivery)).vintage
    resources = build_resources(str(workdir), delivery=str(delivery), evaluations_dir=str(spec_path.parent))
    if instance is None:
        home = dagster_home(Path(workdir))
        os.environ["DAGSTER_HOME"] = str(home)
        instance = dg.DagsterInstance.get()
    if not instance.has_dynamic_partition(VINTAGES.name, vintage):
        instance.add_dynamic_partitions(VINTAGES.name, [vintage])
    result = dg.materialize(
        [*ASSETS, *all_checks()], resources=resources, instance=instance, raise_on_error=False,
        partition_key=dg.MultiPartitionKey({"evaluation": evaluation, "vintage": vintage}),
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    failures = []
    for event in result.all_events:
        if event.is_step_failure:
            failures.append(f"{event.step_key}: {_root_message(event.step_failure_data.error)}")
    for check in result.get_asset_check_evaluations():
        if not check.passed:
            sev = getattr(check.severity, "value", check.severity)
            failures.append(f"check {check.asset_key.to_user_string()}:{check.check_name} failed ({sev})")
    if not result.success:
        return RunOutcome(False, tuple(failures), (), {}, {}, None, database_url(workdir), result.run_id)
    # The evaluation assets are partitioned: read this partition's outputs.
    verdicts = result.output_for_node("verdicts")
    proposal = result.output_for_node("parameter_proposal")
    assumptions = result.output_for_node("assumptions")
    return RunOutcome(
        success=True,
        failures=tuple(failures),
        verdicts=tuple(verdicts.drop("evidence").to_dicts()),
        projections=result.output_for_node("projections"),
        versions={"before": assumptions["version"], "after": proposal["version"]},
        report=result.output_for_node("audit_report"),
        database=database_url(workdir),  # the same rule as the settings (SOM_DATABASE_URL, else SQLite)
        run_id=result.run_id,
    )
