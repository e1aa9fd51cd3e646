"""Dagster resources: where the workdir, the store, the evaluation spec and the delivery are."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from pipeline.workdir import DEFAULT_SPEC, resolve_workdir


class SomSettings(dg.ConfigurableResource):
    """Settings of one evaluation run; empty strings fall back to the environment and defaults.

    * ``workdir`` — ``SOM_HOME`` or ``./.som``;
    * ``database_url`` — ``SOM_DATABASE_URL`` or SQLite ``{workdir}/som.db``;
    * ``evaluation_spec`` — ``SOM_EVALUATION_SPEC`` or the demo spec in ``assets/evaluations``;
    * ``delivery`` — ``SOM_DELIVERY`` or ``{workdir}/deliveries/demo``.
    """

    workdir: str = ""
    database_url: str = ""
    evaluation_spec: str = ""
    delivery: str = ""

    def workdir_path(self) -> Path:
        return resolve_workdir(self.workdir or None)

    def spec_path(self) -> Path:
        return Path(self.evaluation_spec or os.environ.get("SOM_EVALUATION_SPEC", "") or DEFAULT_SPEC)

    def delivery_path(self) -> Path:
        return Path(self.delivery or os.environ.get("SOM_DELIVERY", "") or self.workdir_path() / "deliveries" / "demo")

    def store(self):
        from pipeline.store import ParameterStore, database_url

        return ParameterStore(self.database_url or database_url(self.workdir_path()))
