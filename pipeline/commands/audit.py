"""`som audit INTERVENTION`: how each assumption held across evaluation runs and data vintages.

Example::

    som audit housing_first_demo
    som audit housing_first_demo --assumption effect_path:shelter_nights --json audit.json

For every assumption, one line per evaluation run (oldest first): when, which evaluation and data vintage,
the parameter version evaluated, the assumed and realised value with its interval, the verdict, and the
version the run proposed (with that version's status today).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from pipeline.cli import WorkdirOpt, console, fail
from pipeline.cli_output import JsonOpt, emit_json, json_command
from pipeline.commands.params import open_store, store_errors
from pipeline.disclosure import DEFAULT_MIN_CELL, suppress_verdict
from pipeline.tables import fmt_interval, fmt_number, label_markup


def register(app: typer.Typer) -> None:
    app.command(name="audit")(json_command(audit_command))


def _disclosed(store, rows: list[dict]) -> list[dict]:
    """Audit rows with each verdict's persons count and the small-cell rule of its run's spec applied."""
    out, cache = [], {}
    for r in rows:
        if r["assumption"] is None:
            out.append(r)
            continue
        if r["run_id"] not in cache:
            run = store.get_run(r["run_id"])
            cache[r["run_id"]] = (int((run.spec or {}).get("min_cell", DEFAULT_MIN_CELL)),
                                  {v["assumption"]: v for v in store.verdicts_for_run(run.id)})
        min_cell, stored = cache[r["run_id"]]
        evidence = (stored.get(r["assumption"]) or {}).get("evidence") or {}
        shown = suppress_verdict({**r, "evidence": {"n_treated": evidence.get("n_treated")}}, min_cell)
        shown["n_treated"] = shown.pop("evidence").get("n_treated")
        shown["suppressed"] = shown["n_treated"] is None
        out.append(shown)
    return out


def audit_command(
    intervention: str = typer.Argument(..., help="Intervention id (see `som params list`)."),
    assumption: str | None = typer.Option(None, "--assumption", "-a",
                                             help="Only this assumption (e.g. success_rate, effect_path:ITEM)."),
    workdir: Path | None = WorkdirOpt,
    json_out: Path | None = JsonOpt,
) -> None:
    """How each assumption held across evaluation runs and data vintages. Example: som audit housing_first_demo"""
    with open_store(workdir) as store:
        try:
            rows = _disclosed(store, store.audit_trail(intervention))
            versions = {v.version: v for v in store.versions(intervention)}
        except store_errors() as exc:
            fail(str(exc))
    known = sorted({r["assumption"] for r in rows if r["assumption"]})
    if assumption is not None:
        if assumption not in known:
            fail(f"no verdicts on assumption {assumption!r} for {intervention!r}"
                 + (f"; known: {', '.join(known)}" if known else "; no run has stored verdicts yet"))
        rows = [r for r in rows if r["assumption"] == assumption]
    by_assumption: dict[str, list[dict]] = {}
    for r in rows:
        by_assumption.setdefault(r["assumption"] or "(run without verdicts)", []).append(r)
    approved = next((v.version for v in reversed(list(versions.values())) if v.status == "approved"), None)
    doc = {"intervention": intervention, "approved_version": approved, "runs": len({r["run_id"] for r in rows}),
           "assumptions": by_assumption}
    _print(intervention, approved, rows, by_assumption)
    emit_json(json_out, doc)


def _print(intervention: str, approved: int | None, rows: list[dict], by_assumption: dict[str, list[dict]]) -> None:
    if not rows:
        console.print(f"No evaluation runs of {intervention} yet (approved version {approved}).", highlight=False)
        return
    console.print(f"[bold]{intervention}[/]: {len({r['run_id'] for r in rows})} evaluation run(s); "
                  f"version {approved} is approved.", highlight=False)
    evaluations = sorted({r["evaluation_id"] for r in rows})
    if len(evaluations) == 1:
        console.print(f"Evaluation: {evaluations[0]}", highlight=False)
    for name, items in by_assumption.items():
        table = Table(title=name, title_justify="left")
        columns = ["run (UTC)", *(["evaluation"] if len(evaluations) > 1 else []), "vintage", "tested", "assumed",
                   "realised", "interval", "verdict", "proposed"]
        for col in columns:
            table.add_column(col, overflow="fold", no_wrap=col in ("run (UTC)", "verdict"),
                             justify="right" if col in ("assumed", "realised") else "left")
        for r in items:
            interval = fmt_interval(r["ci_low"], r["ci_high"])
            label = r["label"] or ""
            proposed = "" if r["proposed_version"] is None else f"v{r['proposed_version']} {r['proposed_status']}"
            cells = [r["run_at"].strftime("%Y-%m-%d %H:%M"), *([r["evaluation_id"]] if len(evaluations) > 1 else []),
                     r["data_vintage"] or "", f"v{r['tested_version']}" if r["tested_version"] else "",
                     fmt_number(r["assumed"]), "suppressed" if r.get("suppressed") else fmt_number(r["realised"]),
                     interval, label_markup(label) if label else "(no verdicts stored)", proposed]
            table.add_row(*cells)
        console.print(table)
        last = items[-1]
        if last.get("sentence"):
            console.print(f"  Latest: {last['sentence']}", highlight=False, soft_wrap=True)
