"""The agency's own evidence in the knowledge base: every approved evaluation as effect studies (issue 12 item 6).

Where the studies live: **in the parameter store, nowhere else.** An approved parameter version produced by an
evaluation run already holds everything a study needs — the run's estimates (effect, SE, n treated and
comparison), its spec (design), the data vintage and hash, the version and who approved it — so the studies are
*read* from the store (:func:`agency_studies`) and added to the packaged knowledge base (reference data, never
written) by :func:`knowledge_base`. Nothing is copied at approval time, so an approval and its study cannot
disagree or be half-written, a PostgreSQL store shares them between analysts, and approving twice cannot
duplicate a study.

Per evaluation (a spec's ``evaluation`` id) and outcome there is **one study: the most recently approved
vintage**. Register deliveries are cumulative — a later vintage holds the persons of the earlier one — so a later
approval *supersedes* the earlier study rather than adding a second one that would count the same persons twice
in a pool; the earlier approved vintages are listed in the study's ``provenance["earlier_vintages"]``.

Studies of one evaluation (the success rate and each consequence item):

* ``<evaluation>.<success measure>`` — the realised net success rate: the event-time ATT on the success indicator
  in consequence year 1 (``event_time = course_years``), a ``difference`` in shares (``kb pool`` turns a pool of
  such studies into a success-rate prior);
* ``<evaluation>.<item>`` — the realised effect on each consequence item per treated person and year, averaged over
  the consequence years observed (the estimator's ``overall`` row), a ``difference`` in the item's units.

Design ``rct`` → ``rct``, evidence level 1; any other design (staggered adoption, matched comparison) →
``quasi-experimental``, evidence level 2. An estimate resting on fewer than the run's ``min_cell`` treated persons
is not made a study (:mod:`pipeline.disclosure`). ``sample`` is ``register:<intervention>``, so two evaluations of
the same intervention are pooled once (the larger).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline.disclosure import DEFAULT_MIN_CELL, is_small
from som_models.knowledge import EffectStudy, KnowledgeBase, study_from_evaluation

#: the parameter-version statuses that were approved (an approved version becomes superseded by the next approval)
APPROVED = ("approved", "superseded")


def _design(spec: dict[str, Any]) -> tuple[str, int, str]:
    """(knowledge-base design, evidence level, the spec's design name) of an evaluation spec."""
    raw = spec.get("design", "staggered")
    name = str(raw.get("design", "staggered") if isinstance(raw, dict) else raw)
    return ("rct", 1, name) if name == "rct" else ("quasi-experimental", 2, name)


def _year(vintage: str | None, fallback: int) -> int:
    digits = (vintage or "")[:4]
    return int(digits) if digits.isdigit() else fallback


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def approved_evaluations(store, intervention: str) -> list[tuple[Any, Any]]:
    """``(version, run)`` of every approved (now approved or superseded) version of ``intervention`` that an
    evaluation run proposed, in the order they were approved."""
    out = []
    for v in store.versions(intervention):
        if v.status in APPROVED and v.evaluation_run_id and v.decided_at is not None:
            out.append((v, store.get_run(v.evaluation_run_id)))
    return sorted(out, key=lambda pair: (pair[0].decided_at, pair[0].version))


def _studies_of(store, version, run, earlier: list[dict[str, Any]]) -> list[EffectStudy]:
    from som_models.assumptions import AssumptionMap
    from som_models.parameters import ParameterError, parse_parameter_set

    try:
        params = parse_parameter_set(version.content)
    except ParameterError:
        return []
    spec = dict(run.spec or {})
    min_cell = int(spec.get("min_cell", DEFAULT_MIN_CELL))
    design, level, design_name = _design(spec)
    rows = store.estimates_for_run(run.id)
    year = _year(run.data_vintage, version.decided_at.year)
    provenance = {
        "evaluation": run.evaluation_id, "intervention": run.intervention, "run_id": run.id,
        "data_vintage": run.data_vintage, "data_hash": run.data_hash, "code_version": run.code_version,
        "parameter_version": version.version, "tested_version": run.tested_version,
        "approved_by": version.decided_by,
        "approved_at": version.decided_at.isoformat() if version.decided_at else None,
        "decision_reason": version.decision_reason, "design": design_name, "earlier_vintages": earlier,
    }
    source = (f"parameter store: evaluation {run.evaluation_id}, run {run.id}, vintage {run.data_vintage}, "
              f"parameter version {version.version} (approved)")
    common = dict(target_group=params.target_group, year=year, design=design, evidence_level=level, source=source,
                  intervention=run.intervention, sample=f"register:{run.intervention}")
    out = []
    amap = AssumptionMap.from_params(params)
    if params.success_measure is not None:
        key = amap.success_estimand
        row = next((r for r in rows if r["outcome"] == key.outcome and r["estimand"] == key.estimand
                    and r["event_time"] == key.event_time), None)
        if row is not None and _finite(row["estimate"]) and _finite(row["se"]) and row["se"] > 0 \
                and not is_small(row["n_treated"], min_cell):
            sm = params.success_measure
            out.append(study_from_evaluation(
                id=f"{run.evaluation_id}.{sm.name}", outcome=sm.name, estimate=row["estimate"], se=row["se"],
                n_treatment=row["n_treated"], n_control=row["n_control"], unit="share", desirable="higher",
                outcome_type="binary", follow_up_months=12.0 * (key.event_time + 1),
                outcome_definition=(f"{sm.name}: {sm.outcome} {'is zero' if sm.rule == 'zero' else 'is positive'} in "
                                    f"the calendar year; realised net success rate (event-time ATT at e = "
                                    f"{key.event_time}, consequence year 1)"),
                provenance={**provenance, "estimand": f"event-time ATT at e = {key.event_time}"}, **common))
    k = params.course_years
    for cons in params.consequences:
        row = next((r for r in rows if r["outcome"] == cons.item and r["estimand"] == "overall"), None)
        if row is None or not (_finite(row["estimate"]) and _finite(row["se"]) and row["se"] > 0) \
                or is_small(row["n_treated"], min_cell):
            continue
        events = sorted({int(r["event_time"]) for r in rows if r["outcome"] == cons.item and r["estimand"] == "event"
                         and r["event_time"] is not None and r["event_time"] >= k})
        span = f" (consequence years {events[0] - k + 1}–{events[-1] - k + 1})" if events else ""
        out.append(study_from_evaluation(
            id=f"{run.evaluation_id}.{cons.item}", outcome=cons.item, estimate=row["estimate"], se=row["se"],
            n_treatment=row["n_treated"], n_control=row["n_control"], unit=f"{cons.item} per treated person and year",
            desirable="lower" if cons.units and cons.units[0] < 0 else "higher", outcome_type="continuous",
            follow_up_months=12.0 * (events[-1] + 1) if events else None,
            outcome_definition=f"realised effect on {cons.item} per treated person and year, mean over the consequence "
                               f"years observed{span}",
            provenance={**provenance, "estimand": "overall (mean of the event-time ATTs from the first consequence year)"},
            **common))
    return out


def agency_studies(store, interventions: Iterable[str] | None = None) -> tuple[EffectStudy, ...]:
    """The studies of every approved evaluation in ``store`` (module docstring), by evaluation and outcome."""
    names = list(interventions) if interventions is not None else [r["intervention"] for r in store.interventions()]
    out: list[EffectStudy] = []
    for name in names:
        by_evaluation: dict[str, list[tuple[Any, Any]]] = {}
        for version, run in approved_evaluations(store, name):
            by_evaluation.setdefault(run.evaluation_id, []).append((version, run))
        for evaluation in sorted(by_evaluation):
            pairs = by_evaluation[evaluation]
            latest_version, latest_run = pairs[-1]
            earlier = [{"data_vintage": r.data_vintage, "data_hash": r.data_hash, "run_id": r.id,
                        "parameter_version": v.version,
                        "approved_at": v.decided_at.isoformat() if v.decided_at else None}
                       for v, r in pairs[:-1]]
            out.extend(_studies_of(store, latest_version, latest_run, earlier))
    return tuple(out)


def store_exists(url: str) -> bool:
    """False only for an SQLite URL whose file does not exist (reading commands never create a store)."""
    return not url.startswith("sqlite:///") or Path(url[len("sqlite:///"):]).is_file()


def knowledge_base(workdir: Path | None = None, *, assets_dir: Path | None = None) -> tuple[KnowledgeBase, str | None]:
    """The packaged knowledge base plus the agency's studies from the workdir's store (or ``$SOM_DATABASE_URL``),
    and the store's URL (None when there is no store: then only the packaged studies)."""
    from pipeline.store import ParameterStore, database_url
    from pipeline.workdir import resolve_workdir

    kb = KnowledgeBase.load(assets_dir)
    url = database_url(resolve_workdir(workdir))
    if not store_exists(url):
        return kb, None
    with ParameterStore(url) as store:
        return kb.with_studies(agency_studies(store)), url
