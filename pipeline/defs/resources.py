"""Dagster resources: where the workdir, the store, the evaluation specs and the deliveries are."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from pipeline.workdir import resolve_workdir


class SomSettings(dg.ConfigurableResource):
    """Settings of the evaluation runs; empty strings fall back to the environment and defaults.

    * ``workdir`` — ``SOM_HOME`` or ``./.som``;
    * ``database_url`` — ``SOM_DATABASE_URL`` or SQLite ``{workdir}/som.db``;
    * ``evaluations_dir`` — ``SOM_EVALUATIONS_DIR`` or ``assets/evaluations`` (one spec file per evaluation);
    * ``landing`` — ``SOM_LANDING`` or ``{workdir}/landing`` (one sub-folder per delivery);
    * ``delivery`` — an explicit delivery folder that overrides the landing lookup (``SOM_DELIVERY``).
    """

    workdir: str = ""
    database_url: str = ""
    evaluations_dir: str = ""
    landing: str = ""
    delivery: str = ""

    def workdir_path(self) -> Path:
        return resolve_workdir(self.workdir or None)

    def landing_path(self) -> Path:
        return Path(self.landing or os.environ.get("SOM_LANDING", "") or self.workdir_path() / "landing")

    def evaluations_path(self) -> Path:
        from pipeline.defs.partitions import evaluations_dir

        return Path(self.evaluations_dir) if self.evaluations_dir else evaluations_dir()

    def spec_path(self, evaluation: str) -> Path:
        from pipeline.defs.partitions import evaluation_specs

        specs = evaluation_specs(self.evaluations_path())
        if evaluation not in specs:
            raise ValueError(f"no evaluation spec with evaluation id {evaluation!r} in {self.evaluations_path()}")
        return specs[evaluation]

    def delivery_path(self, vintage: str) -> Path:
        from pipeline.landing import find_delivery

        explicit = self.delivery or os.environ.get("SOM_DELIVERY", "")
        return Path(explicit) if explicit else find_delivery(self.landing_path(), vintage)

    def store(self):
        from pipeline.store import ParameterStore, database_url

        return ParameterStore(self.database_url or database_url(self.workdir_path()))
