"""What the audit report shows, gathered from the parameter store (and the run's check results).

The same gathering serves the ``audit_report`` asset (right after a run) and ``som report`` (any time later):
the store holds every run's estimates and verdicts and every parameter version, so the report can show how
each assumption held over data vintages (one point per vintage and tested version:
:meth:`pipeline.store.ParameterStore.assumption_history`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from pipeline import jsonio
from pipeline.atomic import write_text_atomic
from som_models.estimators import ESTIMATES_SCHEMA


@dataclass(frozen=True, eq=False)
class ReportData:
    intervention: str
    evaluation: str
    title: str
    min_cell: int
    run: Any
    verdicts: tuple[dict, ...]
    estimates: pl.DataFrame
    history: tuple[dict, ...]
    versions: tuple[Any, ...]
    before: Any
    after: Any | None
    checks: tuple[dict, ...]
    spec: dict = field(default_factory=dict)
    #: evaluation run id → the last register year its estimates cover (for the planned-vs-realised precision)
    register_years: dict = field(default_factory=dict)


def checks_path(workdir: Path, run_id: str) -> Path:
    return Path(workdir) / "reports" / "checks" / f"{run_id}.json"


def save_checks(workdir: Path, run_id: str, checks: list[dict]) -> None:
    write_text_atomic(checks_path(workdir, run_id), jsonio.dumps(checks, indent=1))


def load_checks(workdir: Path, run_id: str) -> list[dict]:
    path = checks_path(workdir, run_id)
    return jsonio.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def _proposal_of(run, versions):
    """The version a run proposed (or, when identical content was proposed before, the same data's version)."""
    own = [v for v in versions if v.evaluation_run_id == run.id]
    if own:
        return own[-1]
    same_data = [v for v in versions if v.data_hash == run.data_hash and v.parent_version is not None]
    return same_data[-1] if same_data else None


def gather(store, *, intervention: str | None = None, evaluation: str | None = None, run_id: str | None = None,
           workdir: Path | None = None, checks: list[dict] | None = None) -> ReportData:
    """Collect the report's content; the latest run of the intervention/evaluation unless ``run_id`` is given."""
    runs = store.runs(intervention)
    if evaluation:
        runs = [r for r in runs if r.evaluation_id == evaluation]
    if run_id:
        runs_by_id = [r for r in runs if r.id == run_id] or [store.get_run(run_id)]
        run = runs_by_id[0]
    else:
        with_verdicts = [r for r in runs if store.verdicts_for_run(r.id)]
        if not with_verdicts:
            what = f"intervention {intervention!r}" if intervention else "any intervention"
            if evaluation:
                what += f" and evaluation {evaluation!r}"
            raise ValueError(f"no evaluation run with verdicts for {what}")
        run = max(with_verdicts, key=lambda r: r.created_at)
    intervention = run.intervention
    versions = tuple(store.versions(intervention))
    after = _proposal_of(run, versions)
    if after is not None and after.parent_version is not None:
        before = next(v for v in versions if v.version == after.parent_version)
    else:
        before = store.latest_approved(intervention)
    # One point per (vintage, tested version), ordered by vintage; reruns on unchanged data add none; changed
    # verdicts flagged with why (pipeline.store.history). Small cells are withheld there already.
    history = [{**p, "vintage": p["data_vintage"], "created_at": p["run_at"]}
               for p in store.assumption_history(intervention, evaluation_id=run.evaluation_id)
               if p["assumption"] is not None]
    rows = store.estimates_for_run(run.id)
    estimates = pl.DataFrame([{k: r.get(k) for k in ESTIMATES_SCHEMA} for r in rows], schema=ESTIMATES_SCHEMA)
    spec = dict(run.spec or {})
    if checks is None:
        checks = load_checks(workdir, run.id) if workdir else []
    register_years = {}
    for rid in dict.fromkeys([run.id, *(p["run_id"] for p in history)]):
        times = [r.get("time") for r in (rows if rid == run.id else store.estimates_for_run(rid))]
        times = [t for t in times if t is not None]
        if times:
            register_years[rid] = int(max(times))
    return ReportData(
        intervention=intervention, evaluation=run.evaluation_id, title=str(spec.get("title") or run.evaluation_id),
        min_cell=int(spec.get("min_cell", 5)), run=run, verdicts=tuple(store.verdicts_for_run(run.id)),
        estimates=estimates, history=tuple(history), versions=versions, before=before, after=after,
        checks=tuple(checks), spec=spec, register_years=register_years,
    )
