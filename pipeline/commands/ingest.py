"""`som ingest`: validate a register delivery and write the canonical panel and treatments (atomically)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from pipeline.cli import EXIT_REFUSED, WorkdirOpt, console, err, fail
from pipeline.cli_output import JsonOpt, emit_json, json_command
from pipeline.disclosure import DEFAULT_MIN_CELL, check_min_cell_floor, suppress_scalar


def register(app: typer.Typer) -> None:
    app.command()(json_command(ingest))


def ingest(
    delivery: Path = typer.Argument(..., help="Delivery folder (with manifest.json)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for panel.parquet, treatments.parquet and ingest.json."),
    columns: Path | None = typer.Option(None, "--columns", "-c", help="Column-mapping config (YAML or JSON) for "
                                        "deliveries with other column or file names."),
    workdir: Path | None = WorkdirOpt,
    json_out: Path | None = JsonOpt,
    min_cell: int = typer.Option(DEFAULT_MIN_CELL, "--min-cell", help="Counts of fewer persons or records than this are "
                                 "not printed (Statistics Denmark's small-cell rule)."),
    min_cell_reason: str | None = typer.Option(None, "--min-cell-reason", help="Why --min-cell is below the agency's "
                                               "floor of 5 (required then; recorded in the --json document)."),
    gx_rows: int | None = typer.Option(None, "--gx-rows", help="Frames up to this many rows are validated by Great "
                                       "Expectations itself, larger ones by the polars evaluator of the same suites "
                                       "(default 50 000)."),
) -> None:
    """Validate a delivery (a GX suite per register) and write panel.parquet and treatments.parquet.
    A refused delivery writes nothing (exit code 3). Example: som ingest /data/delivery --out /data/panel"""
    delivery = delivery.expanduser()
    if not delivery.is_dir():
        fail(f"{delivery} is not a folder (expected a delivery folder with manifest.json)")
    try:
        override = check_min_cell_floor(min_cell, min_cell_reason)
    except ValueError as exc:
        fail(f"--min-cell: {exc}")
    if gx_rows is not None and gx_rows < 0:
        fail(f"--gx-rows must be non-negative (got {gx_rows})")
    out = out.expanduser()
    if out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a folder")
    from pipeline.registers import ConfigError, DeliveryError, load_column_map, load_key
    from pipeline.registers import ingest as run_ingest
    from pipeline.workdir import resolve_workdir

    try:
        cmap = load_column_map(columns)
    except ConfigError as exc:
        fail(str(exc))
    try:
        key = load_key(resolve_workdir(workdir))
    except (ValueError, OSError) as exc:
        fail(f"pseudonym key: {exc}")
    try:
        with err.status(Text(f"Ingesting {delivery}…")):
            result = run_ingest(delivery, out, key, columns=cmap, max_gx_rows=gx_rows)
    except DeliveryError as exc:
        for line in exc.lines[1:]:
            err.print(Text.assemble(("•", "red"), f" {line}"), highlight=False, soft_wrap=True)
        fail(f"delivery refused: {exc.lines[0]}", EXIT_REFUSED)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    s = {**result.summary, "rows": _disclosed_counts(result.summary["rows"], min_cell)}

    def count(key: str) -> str:
        n = s["rows"].get(key, 0)
        return f"fewer than {min_cell}" if n is None else f"{n:,}"

    console.print(f"Panel: {result.panel} — {count('person_years')} person-years of {count('persons')} persons, "
                  f"{len(s['outcomes'])} outcome columns; treatments: {result.treatments} "
                  f"({count('indsats')} records). Vintage {s['vintage']}, {s['seconds']:.1f} s.", soft_wrap=True)
    if s["ignored_files"]:
        console.print(f"Ignored files: {', '.join(s['ignored_files'][:5])}{' …' if len(s['ignored_files']) > 5 else ''}",
                      soft_wrap=True)
    emit_json(json_out, {"panel": str(result.panel), "treatments": str(result.treatments), **s,
                         **({"min_cell_override": override} if override is not None else {})})


def _disclosed_counts(rows: dict, min_cell: int) -> dict:
    """Row counts of the summary with counts below ``min_cell`` withheld (None); other entries unchanged."""
    return {k: suppress_scalar(v, v, min_cell) if isinstance(v, int) and not isinstance(v, bool) else v
            for k, v in rows.items()}
