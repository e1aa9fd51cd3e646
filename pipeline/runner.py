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


def generate_demo_delivery(workdir: Path, *, persons: int, seed: int, name: str = "demo") -> Path:
    """Write a synthetic homelessness delivery to ``{workdir}/deliveries/{name}`` (replacing an old one whole)."""
    from som_models.simulate import simulate, write_delivery

    target = Path(workdir) / "deliveries" / name
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
    """Materialise every asset and check in-process; ``instance`` defaults to the workdir's Dagster instance."""
    import dagster as dg

    from pipeline.definitions import ASSETS, build_definitions
    from pipeline.quality.checks import build_gx_asset_checks
    from pipeline.store import database_url

    defs = build_definitions(str(workdir), delivery=str(delivery), evaluation_spec=evaluation_spec)
    if instance is None:
        home = dagster_home(Path(workdir))
        os.environ["DAGSTER_HOME"] = str(home)
        instance = dg.DagsterInstance.get()
    result = dg.materialize([*ASSETS, *build_gx_asset_checks()], resources=defs.resources, instance=instance,
                            raise_on_error=False, run_config={"loggers": {"console": {"config": {"log_level": log_level}}}})
    failures = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            failures.append(f"{event.step_key}: {error.message.strip().splitlines()[-1] if error else 'failed'}")
    for check in result.get_asset_check_evaluations():
        if not check.passed:
            sev = getattr(check.severity, "value", check.severity)
            failures.append(f"check {check.asset_key.to_user_string()}:{check.check_name} failed ({sev})")
    if not result.success:
        return RunOutcome(False, tuple(failures), (), {}, {}, None, database_url(workdir), result.run_id)
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
        database=defs.resources["som"].database_url or database_url(workdir),
        run_id=result.run_id,
    )
