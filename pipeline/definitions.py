"""The one Dagster composition root (``workspace.yaml`` points here)."""

from __future__ import annotations

import dagster as dg

from pipeline.defs import assets
from pipeline.defs.io_managers import PolarsParquetIOManager
from pipeline.defs.resources import SomSettings
from pipeline.quality.checks import build_gx_asset_checks, validate_suite_assets
from pipeline.workdir import resolve_workdir

ASSETS = [
    assets.delivery, assets.registers, assets.assumptions, assets.effects, assets.verdicts,
    assets.parameter_proposal, assets.projections, assets.audit_report,
]


def asset_keys() -> set[str]:
    return {key.to_user_string() for a in ASSETS for key in a.keys}


def build_definitions(workdir: str = "", **settings: str) -> dg.Definitions:
    """Definitions with resources bound to ``workdir`` (default: ``SOM_HOME`` or ``./.som``)."""
    validate_suite_assets(asset_keys())
    base = resolve_workdir(workdir or None)
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=build_gx_asset_checks(),
        jobs=[dg.define_asset_job("evaluation_job", selection=dg.AssetSelection.all(), description="The whole evaluation loop.")],
        resources={
            "som": SomSettings(workdir=str(base), **settings),
            "io_manager": PolarsParquetIOManager(base_dir=str(base / "storage")),
        },
    )


defs = build_definitions()
