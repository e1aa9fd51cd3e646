"""The one Dagster composition root (``workspace.yaml`` points here)."""

from __future__ import annotations

import dagster as dg

from pipeline.defs import assets
from pipeline.defs.automation import evaluation_job, landing_sensor, rerun_schedule
from pipeline.defs.checks import build_extra_checks
from pipeline.defs.executor import executor_from_env
from pipeline.defs.io_managers import PolarsParquetIOManager
from pipeline.defs.resources import SomSettings
from pipeline.defs.retention import run_retention_job, run_retention_schedule
from pipeline.quality.checks import build_gx_asset_checks, validate_suite_assets
from pipeline.workdir import resolve_workdir

ASSETS = [
    assets.delivery, assets.registers, assets.assumptions, assets.effects, assets.verdicts,
    assets.parameter_proposal, assets.projections, assets.audit_report,
]


def asset_keys() -> set[str]:
    return {key.to_user_string() for a in ASSETS for key in a.keys}


def all_checks() -> list[dg.AssetChecksDefinition]:
    partitions = {key: assets.PARTITIONS for key in asset_keys()}
    return [*build_gx_asset_checks(partitions_defs=partitions), *build_extra_checks(assets.PARTITIONS)]


def build_resources(workdir: str = "", **settings: str) -> dict:
    base = resolve_workdir(workdir or None)
    return {
        "som": SomSettings(workdir=str(base), **settings),
        "io_manager": PolarsParquetIOManager(base_dir=str(base / "storage")),
    }


def build_definitions(workdir: str = "", **settings: str) -> dg.Definitions:
    """Definitions with resources bound to ``workdir`` (default: ``SOM_HOME`` or ``./.som``).

    The executor is set here, for every job and every backfill (backfills of assets run the implicit asset
    job, not ``evaluation_job``): in-process unless ``SOM_EXECUTOR`` says otherwise (pipeline.defs.executor).
    """
    validate_suite_assets(asset_keys())
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=all_checks(),
        jobs=[evaluation_job, run_retention_job],
        sensors=[landing_sensor],
        schedules=[rerun_schedule, run_retention_schedule],
        resources=build_resources(workdir, **settings),
        executor=executor_from_env(),
    )


defs = build_definitions()
