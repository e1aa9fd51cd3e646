"""`som report`: the HTML audit report of an evaluation (Danish by default, ``--lang en`` for English), from the
parameter store, and optionally its per-year, per-payer and per-udvalg tables as an Excel workbook."""

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
    lang: str = typer.Option("da", "--lang", "-l", help="Report language: da (Danish, default) or en (English)."),
    xlsx: Path | None = typer.Option(None, "--xlsx", metavar="PATH",
                                     help="Also write an Excel workbook of the report's per-year, per-payer and "
                                          "per-udvalg tables (totals equal the --json document)."),
    workdir: Path | None = WorkdirOpt,
    json_out: Path | None = JsonOpt,
) -> None:
    """Write the self-contained HTML audit report. Example: som report --intervention housing_first_demo --lang en"""
    from pipeline.report import build_report, gather
    from pipeline.report.i18n import LANGUAGES
    from pipeline.store import ParameterStore, StoreError, database_url
    from pipeline.workdir import resolve_workdir

    if lang not in LANGUAGES:
        fail(f"--lang {lang}: choose one of {', '.join(LANGUAGES)}")
    if xlsx is not None and xlsx.suffix.lower() != ".xlsx":
        fail(f"--xlsx {xlsx}: the workbook file name must end in .xlsx")
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
    built = build_report(data, workdir=home, lang=lang)
    from pipeline.atomic import write_text_atomic

    try:
        write_text_atomic(path, built.html)
    except OSError as exc:
        fail(f"cannot write {path} ({exc.strerror or exc})")
    console.print(f"Report: {path}", soft_wrap=True)
    if xlsx is not None:
        from pipeline.report.xlsx import write_report_xlsx

        try:
            write_report_xlsx(xlsx, built.document)
        except OSError as exc:
            fail(f"--xlsx {xlsx}: cannot be written ({exc.strerror or exc})")
        console.print(f"Workbook written: {xlsx}", soft_wrap=True, highlight=False)
    from pipeline.disclosure import suppress_verdict

    verdicts = [suppress_verdict(v, data.min_cell) for v in data.verdicts]
    emit_json(json_out, {"report": str(path), "xlsx": str(xlsx) if xlsx is not None else None,
                         **built.document,
                         "verdicts": [{k: v.get(k) for k in ("assumption", "label", "assumed", "realised", "ci_low",
                                                             "ci_high", "sentence")} for v in verdicts]})
