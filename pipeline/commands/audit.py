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
from typing import Any, Optional

import typer
from rich.table import Table

from pipeline.cli import WorkdirOpt, console, fail
from pipeline.commands.params import JsonOpt, open_store, store_errors, write_json


def register(app: typer.Typer) -> None:
    app.command(name="audit")(audit_command)


def _fmt(x: Any) -> str:
    return "" if x is None else f"{x:.3g}" if isinstance(x, float) else str(x)


def audit_command(
    intervention: str = typer.Argument(..., help="Intervention id (see `som params list`)."),
    assumption: Optional[str] = typer.Option(None, "--assumption", "-a",
                                             help="Only this assumption (e.g. success_rate, effect_path:ITEM)."),
    workdir: Optional[Path] = WorkdirOpt,
    json_out: Optional[Path] = JsonOpt,
) -> None:
    """How each assumption held across evaluation runs and data vintages. Example: som audit housing_first_demo"""
    with open_store(workdir) as store:
        try:
            rows = store.audit_trail(intervention)
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
    if json_out is not None:
        write_json(json_out, {"intervention": intervention, "approved_version": approved,
                              "runs": len({r["run_id"] for r in rows}), "assumptions": by_assumption})
        if str(json_out) == "-":
            return
    if not rows:
        console.print(f"No evaluation runs of {intervention} yet (approved version {approved}).", highlight=False)
        return
    colours = {"consistent": "green", "inconclusive": "yellow", "refuted-overestimated": "red",
               "refuted-underestimated": "red"}
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
            interval = "" if r["ci_low"] is None else f"{_fmt(r['ci_low'])} to {_fmt(r['ci_high'])}"
            label = r["label"] or ""
            proposed = "" if r["proposed_version"] is None else f"v{r['proposed_version']} {r['proposed_status']}"
            cells = [r["run_at"].strftime("%Y-%m-%d %H:%M"), *([r["evaluation_id"]] if len(evaluations) > 1 else []),
                     r["data_vintage"] or "", f"v{r['tested_version']}" if r["tested_version"] else "",
                     _fmt(r["assumed"]), _fmt(r["realised"]), interval,
                     f"[{colours.get(label, 'white')}]{label}[/]" if label else "(no verdicts stored)", proposed]
            table.add_row(*cells)
        console.print(table)
        last = items[-1]
        if last.get("sentence"):
            console.print(f"  Latest: {last['sentence']}", highlight=False, soft_wrap=True)
