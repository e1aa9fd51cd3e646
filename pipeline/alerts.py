"""Alerts of a stored evaluation run (the spec's ``alerts:``; the rules are :mod:`som_models.alerts`).

One function, :func:`run_alerts`, serves the Dagster check ``case_alerts`` (:mod:`pipeline.defs.checks`), the audit
report and ``som audit``: the run's verdicts, the break-even probability of the version it proposed (else the version
it tested) and the verdicts of the previous evaluation from the assumption history (a verdict alert fires on a change
of label, :mod:`som_models.alerts`).

**Forwarding alerts** (no external service is needed to raise them): the check's result is a Dagster asset-check
evaluation with severity WARN or ERROR and the alerts as JSON metadata (``alerts``). A deployment forwards them
with a run-status sensor or an asset-check sensor that reads the latest check evaluation and posts its description
(e.g. to e-mail or a chat hook) — see ``docs/planning.md`` (*Forwarding alerts*) for a sketch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from som_models.alerts import Alert, break_even, evaluate_alerts, parse_alerts


def previous_labels(history: Iterable[Mapping[str, Any]], run_id: str | None = None, *,
                    vintage: str | None = None, tested_version: int | None = None) -> dict[str, str]:
    """Per assumption, the label at the evaluation before this run's: the point just before the run's point in the
    assumption's history (ordered by vintage, then tested version; :func:`pipeline.store.history.assumption_history`).

    The run's point is found by ``run_id``, or — for a rerun on unchanged data, whose point keeps the first run's
    id — by its ``vintage`` and ``tested_version``. An assumption with no earlier point is absent (not evaluated
    before)."""
    by_assumption: dict[str, list[Mapping[str, Any]]] = {}
    for p in history:
        if p.get("assumption") is not None:
            by_assumption.setdefault(p["assumption"], []).append(p)
    out: dict[str, str] = {}
    for a, points in by_assumption.items():
        mine = next((i for i, p in enumerate(points) if run_id is not None and p.get("run_id") == run_id), None)
        if mine is None and vintage is not None:
            mine = next((i for i, p in enumerate(points) if p.get("data_vintage") == vintage
                         and (tested_version is None or p.get("tested_version") == tested_version)), None)
        if mine and points[mine - 1].get("label"):
            out[a] = points[mine - 1]["label"]
    return out


def run_alerts(spec: Mapping[str, Any], verdicts: Iterable[Mapping[str, Any]], content: Mapping[str, Any] | None,
               history: Iterable[Mapping[str, Any]] = (), run_id: str | None = None, *,
               vintage: str | None = None, tested_version: int | None = None) -> tuple[Alert, ...]:
    """The alerts that fire for a run with spec document ``spec``, verdict records ``verdicts`` and the proposed
    (or tested) parameter document ``content``."""
    from som_models.parameters import parse_parameter_set

    rules = parse_alerts((spec or {}).get("alerts"))
    if rules is None or rules.empty:
        return ()
    prob = break_even(parse_parameter_set(content)) if content is not None and rules.probability_below else None
    previous = previous_labels(history, run_id, vintage=vintage, tested_version=tested_version)
    return evaluate_alerts(rules, verdicts=list(verdicts), prob_break_even=prob, previous=previous)


def stored_run_alerts(store, run_id: str) -> tuple[Alert, ...]:
    """:func:`run_alerts` of a stored run (its spec, verdicts, proposal and the intervention's history)."""
    run = store.get_run(run_id)
    versions = store.versions(run.intervention)
    proposed = [v for v in versions if v.evaluation_run_id == run.id]
    content = proposed[-1].content if proposed else store.latest_approved(run.intervention).content
    history = store.assumption_history(run.intervention, evaluation_id=run.evaluation_id)
    return run_alerts(dict(run.spec or {}), store.verdicts_for_run(run.id), content, history, run.id,
                      vintage=run.data_vintage, tested_version=run.tested_version)
