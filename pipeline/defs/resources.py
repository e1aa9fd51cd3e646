"""Dagster resources: where the workdir, the store, the evaluation specs and the deliveries are.

Every location is resolved when the definitions are built (:func:`settings_from_env`), not inside a
resource method: a setting taken from the environment is passed as ``dg.EnvVar`` (the UI shows which
variable it comes from, and a secret such as a database password is never displayed), every other setting as
the concrete default path, so the UI shows where things are.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from pipeline.workdir import resolve_workdir
from som_reference import asset

#: field of :class:`SomSettings` → environment variable it is read from when set.
ENV = {
    "workdir": "SOM_HOME",
    "database_url": "SOM_DATABASE_URL",
    "evaluations_dir": "SOM_EVALUATIONS_DIR",
    "landing": "SOM_LANDING",
    "delivery": "SOM_DELIVERY",
    "report_language": "SOM_REPORT_LANGUAGE",
}
STORAGE_ENV = "SOM_STORAGE_URL"


def sqlite_url(workdir: Path) -> str:
    """The default store: SQLite ``{workdir}/som.db``."""
    return f"sqlite:///{(Path(workdir).expanduser().resolve() / 'som.db').as_posix()}"


def _from_env(name: str, default: str) -> str:
    """``dg.EnvVar(name)`` when the variable is set and non-empty, else ``default``."""
    return dg.EnvVar(name) if os.environ.get(name, "").strip() else default


class SomSettings(dg.ConfigurableResource):
    """Settings of the evaluation runs (built by :func:`settings_from_env`; methods never read the environment).

    * ``workdir`` — ``SOM_HOME`` or ``./.som``;
    * ``database_url`` — ``SOM_DATABASE_URL`` or SQLite ``{workdir}/som.db``;
    * ``evaluations_dir`` — ``SOM_EVALUATIONS_DIR`` or ``assets/evaluations`` (one spec file per evaluation);
    * ``landing`` — ``SOM_LANDING`` or ``{workdir}/landing`` (one sub-folder per delivery);
    * ``delivery`` — an explicit delivery folder that overrides the landing lookup (``SOM_DELIVERY``; empty: none);
    * ``report_language`` — the audit report's language, ``da`` (default) or ``en`` (``SOM_REPORT_LANGUAGE``; the
      same catalogue as ``som report --lang``).
    """

    workdir: str
    database_url: str = ""
    evaluations_dir: str = ""
    landing: str = ""
    delivery: str = ""
    report_language: str = "da"

    def workdir_path(self) -> Path:
        return resolve_workdir(self.workdir)

    def landing_path(self) -> Path:
        return Path(self.landing) if self.landing else self.workdir_path() / "landing"

    def evaluations_path(self) -> Path:
        return Path(self.evaluations_dir) if self.evaluations_dir else asset("evaluations")

    def spec_path(self, evaluation: str) -> Path:
        from pipeline.defs.partitions import evaluation_specs

        specs = evaluation_specs(self.evaluations_path())
        if evaluation not in specs:
            raise ValueError(f"no evaluation spec with evaluation id {evaluation!r} in {self.evaluations_path()}")
        return specs[evaluation]

    def delivery_path(self, vintage: str) -> Path:
        from pipeline.landing import find_delivery

        return Path(self.delivery) if self.delivery else find_delivery(self.landing_path(), vintage)

    def store(self):
        from pipeline.store import ParameterStore

        return ParameterStore(self.database_url or sqlite_url(self.workdir_path()))


def settings_from_env(workdir: str = "", **settings: str) -> SomSettings:
    """:class:`SomSettings` with explicit ``settings`` first, then ``dg.EnvVar`` for set variables, then defaults."""
    home = workdir or _from_env(ENV["workdir"], str(resolve_workdir()))
    base = resolve_workdir(os.environ[ENV["workdir"]] if isinstance(home, dg.EnvVar) else home)
    defaults = {
        "database_url": sqlite_url(base),
        "evaluations_dir": str(asset("evaluations")),
        "landing": str(base / "landing"),
        "delivery": "",
        "report_language": "da",
    }
    values = {k: settings.get(k) or _from_env(ENV[k], v) for k, v in defaults.items()}
    unknown = set(settings) - set(defaults)
    if unknown:
        raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    return SomSettings(workdir=home if isinstance(home, dg.EnvVar) else str(base), **values)


def storage_url(workdir: Path) -> str | dg.EnvVar:
    """Where asset values are stored: ``dg.EnvVar("SOM_STORAGE_URL")`` when set (a folder or an fsspec URL such
    as ``s3://bucket/som``), else ``{workdir}/storage``."""
    return _from_env(STORAGE_ENV, str(Path(workdir) / "storage"))
