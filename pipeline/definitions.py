"""The one Dagster composition root (``workspace.yaml`` points here)."""

from __future__ import annotations

from pipeline.threads import apply_blas_policy

apply_blas_policy()  # run workers import this module first: one BLAS thread unless SOM_BLAS_THREADS (pipeline.threads)

import dagster as dg

from pipeline.defs import assets
from pipeline.defs.automation import evaluation_job, landing_sensor, rerun_schedule
from pipeline.defs.checks import build_extra_checks
from pipeline.defs.executor import executor_from_env
from pipeline.defs.io_managers import PolarsParquetIOManager
from pipeline.defs.planning import approval_sensor, evaluation_plan, plan_job
from pipeline.defs.resources import settings_from_env, storage_url
from pipeline.defs.retention import run_retention_job, run_retention_schedule
from pipeline.quality.checks import INGEST_OUTPUT_SUITES, build_gx_asset_checks, validate_suite_assets
from pipeline.workdir import resolve_workdir

ASSETS = [
    assets.delivery, assets.registers, assets.assumptions, assets.effects, assets.verdicts,
    assets.parameter_candidate, assets.parameter_proposal, assets.projections, assets.audit_report,
]
#: assets outside the evaluation graph (their own partitions and job): the plan of an approved version
PLAN_ASSETS = [evaluation_plan]
#: assets outside the evaluation loop, materialised on their own with a run config (not in ``evaluation_job``)
KNOWLEDGE_ASSETS = [assets.consequence_profiles]


def asset_keys() -> set[str]:
    return {key.to_user_string() for a in [*ASSETS, *KNOWLEDGE_ASSETS] for key in a.keys}


def all_checks() -> list[dg.AssetChecksDefinition]:
    """The checks not defined on the assets themselves: GX suites of stored assets (the panel and treatments
    suites run during ingestion, as checks of the ``registers`` multi-asset) and the extra checks."""
    partitions = {key: assets.PARTITIONS for key in asset_keys()}
    return [*build_gx_asset_checks(partitions_defs=partitions, skip_assets=INGEST_OUTPUT_SUITES),
            *build_extra_checks(assets.PARTITIONS)]


def build_resources(workdir: str = "", **settings: str) -> dict:
    """Resources resolved now: settings from ``workdir``/``settings``, else ``dg.EnvVar`` of set ``SOM_*``
    variables, else defaults; asset values under ``SOM_STORAGE_URL`` or ``{workdir}/storage``."""
    base = resolve_workdir(workdir or None)
    return {"som": settings_from_env(workdir, **settings),
            "io_manager": PolarsParquetIOManager(base_dir=storage_url(base))}


def build_definitions(workdir: str = "", **settings: str) -> dg.Definitions:
    """Definitions with resources bound to ``workdir`` (default: ``SOM_HOME`` or ``./.som``).

    The executor is set here, for every job and every backfill (backfills of assets run the implicit asset
    job, not ``evaluation_job``): in-process unless ``SOM_EXECUTOR`` says otherwise (pipeline.defs.executor).
    """
    validate_suite_assets(asset_keys())
    return dg.Definitions(
        assets=[*ASSETS, *PLAN_ASSETS, *KNOWLEDGE_ASSETS],
        asset_checks=all_checks(),
        jobs=[evaluation_job, run_retention_job, plan_job],
        sensors=[landing_sensor, approval_sensor],
        schedules=[rerun_schedule, run_retention_schedule],
        resources=build_resources(workdir, **settings),
        executor=executor_from_env(),
    )


defs = build_definitions()
