"""`som audit INTERVENTION`: how each assumption held across data vintages.

Example::

    som audit housing_first_demo
    som audit housing_first_demo --assumption effect_path:shelter_nights --json audit.json

For every assumption, one point per (data vintage, tested version), ordered by vintage
(:meth:`pipeline.store.ParameterStore.assumption_history`): the evaluation run behind it, the parameter version
evaluated, the look (sequential monitoring over repeated looks), the assumed and realised value with its interval,
the verdict, and the version the run proposed (with that version's status today). Reruns on unchanged data (same
data hash, tested version and spec) add no point, so the output is the same after any number of monthly reruns;
a verdict that changed since the previous vintage is flagged with why.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from pipeline.cli import WorkdirOpt, console, fail
from pipeline.cli_output import JsonOpt, emit_json, json_command
from pipeline.commands.params import open_store, store_errors
from pipeline.tables import fmt_interval, fmt_number, label_text

NO_VERDICTS = "(run without verdicts)"


def register(app: typer.Typer) -> None:
    app.command(name="audit")(json_command(audit_command))


def audit_command(
    intervention: str = typer.Argument(..., help="Intervention id (see `som params list`)."),
    assumption: str | None = typer.Option(None, "--assumption", "-a",
                                             help="Only this assumption (e.g. success_rate, effect_path:ITEM)."),
    workdir: Path | None = WorkdirOpt,
    json_out: Path | None = JsonOpt,
) -> None:
    """How each assumption held across data vintages. Example: som audit housing_first_demo"""
    with open_store(workdir) as store:
        try:
            points = store.assumption_history(intervention)
            versions = {v.version: v for v in store.versions(intervention)}
        except store_errors() as exc:
            fail(str(exc))
    known = sorted({r["assumption"] for r in points if r["assumption"]})
    if assumption is not None:
        if assumption not in known:
            fail(f"no verdicts on assumption {assumption!r} for {intervention!r}"
                 + (f"; known: {', '.join(known)}" if known else "; no run has stored verdicts yet"))
        points = [r for r in points if r["assumption"] == assumption]
    by_assumption: dict[str, list[dict]] = {}
    for r in points:
        by_assumption.setdefault(r["assumption"] or NO_VERDICTS, []).append(r)
    approved = next((v.version for v in reversed(list(versions.values())) if v.status == "approved"), None)
    alerts = _latest_alerts(workdir, intervention, points)
    ledgers = _udvalg_comparisons(points, versions)
    doc = {"intervention": intervention, "approved_version": approved, "points": len(points),
           "vintages": len({r["data_vintage"] for r in points}), "alerts": alerts, "assumptions": by_assumption,
           "udvalg_comparison": ledgers}
    for a in alerts:  # alerts first (the spec's alerts: thresholds, on the latest run of each evaluation)
        colour = "red" if a["severity"] == "error" else "yellow"
        console.print(Text.assemble((f"ALERT ({a['severity']})", f"bold {colour}"),
                                    f" {a['evaluation']} vintage {a['data_vintage']}: {a['message']}"
                                    + ("" if a["new"] else " (not new)")), highlight=False, soft_wrap=True)
    _print(intervention, approved, points, by_assumption)
    from pipeline.commands.project import udvalg_comparison_table

    for ledger in ledgers:
        console.print(udvalg_comparison_table(
            ledger["comparison"], f"{ledger['evaluation']} vintage {ledger['data_vintage']}: projected "
                                  f"(v{ledger['tested_version']}) vs realised (v{ledger['proposed_version']}) per udvalg, "
                                  "NPV kr"))
    emit_json(json_out, doc)


def _udvalg_comparisons(points: list[dict], versions: dict) -> list[dict]:
    """Per evaluation, its latest run with a proposal: projected (the version it tested) vs realised (the version
    it proposed) per udvalg (:func:`pipeline.evaluation.udvalg_comparison`)."""
    from pipeline.evaluation import udvalg_comparison

    latest: dict[str, dict] = {}
    for r in points:
        if r.get("proposed_version") is not None and r.get("tested_version") is not None and (
                r["evaluation_id"] not in latest or r["run_at"] >= latest[r["evaluation_id"]]["run_at"]):
            latest[r["evaluation_id"]] = r
    out = []
    for evaluation, r in sorted(latest.items()):
        tested, proposed = versions.get(r["tested_version"]), versions.get(r["proposed_version"])
        if tested is None or proposed is None:
            continue
        cmp = udvalg_comparison(tested.content, proposed.content)
        if cmp is not None:
            out.append({"evaluation": evaluation, "data_vintage": r["data_vintage"], "run_id": r["run_id"],
                        "tested_version": r["tested_version"], "proposed_version": r["proposed_version"],
                        "comparison": cmp})
    return out


def _latest_alerts(workdir: Path | None, intervention: str, points: list[dict]) -> list[dict]:
    """The alerts (:func:`pipeline.alerts.stored_run_alerts`) of the latest run with verdicts of each evaluation."""
    from pipeline.alerts import stored_run_alerts

    latest: dict[str, dict] = {}
    for r in points:
        if r.get("assumption") and (r["evaluation_id"] not in latest or r["run_at"] >= latest[r["evaluation_id"]]["run_at"]):
            latest[r["evaluation_id"]] = r
    out = []
    with open_store(workdir) as store:
        for evaluation, r in sorted(latest.items()):
            try:
                alerts = stored_run_alerts(store, r["run_id"])
            except store_errors() as exc:
                fail(str(exc))
            out += [{"evaluation": evaluation, "data_vintage": r["data_vintage"], "run_id": r["run_id"], **a.to_dict()}
                    for a in alerts]
    return out


def _print(intervention: str, approved: int | None, points: list[dict], by_assumption: dict[str, list[dict]]) -> None:
    if not points:
        console.print(f"No evaluation runs of {intervention} yet (approved version {approved}).", highlight=False)
        return
    vintages = len({r["data_vintage"] for r in points})
    console.print(Text.assemble((intervention, "bold"), f": {vintages} data vintage(s) evaluated; version {approved} is "
                                "approved. One row per vintage and tested version (reruns on unchanged data add none)."),
                  highlight=False)
    evaluations = sorted({r["evaluation_id"] for r in points})
    if len(evaluations) == 1:
        console.print(f"Evaluation: {evaluations[0]}", highlight=False)
    for name, items in by_assumption.items():
        table = Table(title=name, title_justify="left")
        looks = any(r.get("look") is not None for r in items)
        columns = [*(["evaluation"] if len(evaluations) > 1 else []), "vintage", "tested", "run (UTC)",
                   *(["look"] if looks else []), "assumed", "realised", "interval", "verdict", "proposed"]
        for col in columns:
            table.add_column(col, overflow="fold", no_wrap=col in ("run (UTC)", "verdict", "proposed"),
                             justify="right" if col in ("assumed", "realised", "look") else "left")
        for r in items:
            label = r["label"] or ""
            proposed = "" if r["proposed_version"] is None else f"v{r['proposed_version']} {r['proposed_status']}"
            look = "" if r.get("look") is None else f"{r['look']} (t={r['information_fraction']:.2f})"
            verdict = label_text(label) if label else "(no verdicts stored)"
            cells = [*([r["evaluation_id"]] if len(evaluations) > 1 else []), r["data_vintage"] or "",
                     f"v{r['tested_version']}" if r["tested_version"] else "", r["run_at"].strftime("%Y-%m-%d"),
                     *([look] if looks else []), fmt_number(r["assumed"]),
                     "suppressed" if r.get("suppressed") else fmt_number(r["realised"]),
                     fmt_interval(r["ci_low"], r["ci_high"]), verdict + (" *" if r.get("flag") else ""), proposed]
            table.add_row(*cells)
        console.print(table)
        for r in items:
            if r.get("flag"):
                console.print(f"  * Changed at vintage {r['data_vintage']} (v{r['tested_version']}): {r['flag']['from']} → "
                              f"{r['flag']['to']}: {r['flag']['why']}.", highlight=False, soft_wrap=True)
            for note in r.get("replaces") or ():
                console.print(f"  Vintage {r['data_vintage']} (v{r['tested_version']}) {note}.", highlight=False,
                              soft_wrap=True)
        last = items[-1]
        if last.get("sentence"):
            console.print(f"  Latest: {last['sentence']}", highlight=False, soft_wrap=True)
