"""`som report`: the HTML audit report of an evaluation, from the parameter store."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli import WorkdirOpt, console, fail
from pipeline.cli_output import JsonOpt, emit_json, json_command


def register(app: typer.Typer) -> None:
    app.command()(json_command(report))


def report(
    intervention: str | None = typer.Option(None, "--intervention", "-i",
                                            help="Intervention id (default: the only one with runs)."),
    evaluation: str | None = typer.Option(None, "--evaluation", "-e", help="Evaluation id (default: the latest run's)."),
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="Output HTML file (default: {workdir}/reports/{evaluation}-{vintage}.html)."),
    workdir: Path | None = WorkdirOpt,
    json_out: Path | None = JsonOpt,
) -> None:
    """Write the self-contained HTML audit report. Example: som report --intervention housing_first_demo"""
    from pipeline.report import gather, render_report
    from pipeline.store import ParameterStore, StoreError, database_url
    from pipeline.workdir import resolve_workdir

    home = resolve_workdir(workdir)
    url = database_url(home)
    if url.startswith("sqlite") and not (home / "som.db").exists():
        fail(f"no parameter store in {home} (run `som demo` or `som evaluate` first, or set --workdir)")
    with ParameterStore(url) as store:
        if intervention is None:
            candidates = sorted({r.intervention for r in store.runs()})
            if len(candidates) != 1:
                fail(f"say which intervention with --intervention (runs exist for: {', '.join(candidates) or 'none'})")
            intervention = candidates[0]
        try:
            data = gather(store, intervention=intervention, evaluation=evaluation, workdir=home)
        except (ValueError, StoreError) as exc:
            fail(str(exc))
    path = out or home / "reports" / f"{data.evaluation}-{data.run.data_vintage}.html"
    try:
        render_report(data, path, workdir=home)
    except OSError as exc:
        fail(f"cannot write {path} ({exc.strerror or exc})")
    console.print(f"Report: {path}", soft_wrap=True)
    from pipeline.disclosure import suppress_verdict

    verdicts = [suppress_verdict(v, data.min_cell) for v in data.verdicts]
    emit_json(json_out, {"report": str(path), "intervention": data.intervention, "evaluation": data.evaluation,
                         "run_id": data.run.id, "data_vintage": data.run.data_vintage, "min_cell": data.min_cell,
                         "verdicts": [{k: v.get(k) for k in ("assumption", "label", "assumed", "realised", "ci_low",
                                                             "ci_high", "sentence")} for v in verdicts]})
