"""`som refdata`: refresh reference data from files an analyst downloads (offline).

Examples::

    som refdata import-price-index PRIS116.csv                      # → assets/price_index/nettoprisindeks.yaml
    som refdata import-price-index PRIS116.csv --where ENHED=Indeks --dry-run
    som refdata import-price-index PRIS116.csv --out my_index.yaml  # a document then says price_index: my_index.yaml

The file is a Statistics Denmark StatBank CSV export (semicolon separated, columns TID and INDHOLD; layout and
checks in :mod:`som_models.projection.statbank`). The new YAML replaces the old atomically: a reader sees the old
file or the new one, never half of it; nothing is written when a check fails.
"""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli import console, fail
from pipeline.cli_output import JsonOpt, emit_json, json_command

refdata_app = typer.Typer(help="Refresh reference data (price index) from a downloaded file, offline. "
                               "Example: som refdata import-price-index PRIS116.csv", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(refdata_app, name="refdata")


@refdata_app.command("import-price-index")
@json_command
def import_price_index(
    file: Path = typer.Argument(..., help="StatBank CSV export (';'-separated, columns TID and INDHOLD)."),
    name: str = typer.Option("nettoprisindeks", "--name", help="Index name: writes assets/price_index/<name>.yaml."),
    table: str = typer.Option("PRIS116", "--table", help="StatBank table the file was exported from."),
    base_year: str = typer.Option("2015", "--base-year", help="Base year whose mean must be 100 (or 'none')."),
    where: list[str] = typer.Option([], "--where", help="COLUMN=VALUE to pick one value of a classification column "
                                                       "(repeatable), e.g. --where ENHED=Indeks."),
    out: Path | None = typer.Option(None, "--out", help="Write here instead of assets/price_index/<name>.yaml."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check and report only; write nothing."),
    json_out: Path | None = JsonOpt,
) -> None:
    """Import a price index from a StatBank CSV export. Example: som refdata import-price-index PRIS116.csv"""
    import datetime as dt
    import re

    from pipeline.atomic import write_text_atomic
    from som_models.parameters import ParameterError
    from som_models.projection.prices import ASSETS_DIR, index_from_monthly, load_price_index
    from som_models.projection.statbank import index_yaml, read_statbank_csv, revisions

    if not re.fullmatch(r"[a-z0-9_]+", name):
        fail(f"--name must be lower-case letters, digits and _ (got {name!r})")
    if base_year.lower() != "none" and not base_year.isdigit():
        fail(f"--base-year must be a year or 'none' (got {base_year!r})")
    pins = {}
    for w in where:
        col, sep, value = w.partition("=")
        if not sep or not col.strip():
            fail(f"--where must be COLUMN=VALUE (got {w!r})")
        pins[col.strip()] = value.strip()
    base = None if base_year.lower() == "none" else int(base_year)
    try:
        imported = read_statbank_csv(file, where=pins, base_year=base)
    except ParameterError as exc:
        fail(str(exc))
    target = out or ASSETS_DIR / "price_index" / f"{name}.yaml"
    text = index_yaml(imported, name=name, table=table.upper(), base=f"{base}=100" if base else "as in the file",
                      imported_on=dt.date.today().isoformat())
    compared, largest = 0, 0.0
    if target.is_file():
        try:
            compared, largest = revisions(load_price_index(str(target)), imported)
        except ParameterError as exc:
            console.print(f"note: the existing {target} could not be read for comparison ({exc})", soft_wrap=True)
    written = None
    if not dry_run:
        try:
            write_text_atomic(target, text)
        except OSError as exc:
            fail(f"{target}: cannot write ({exc.strerror or exc})")
        load_price_index(str(target))  # the written file reads back
        written = str(target)
    first, last = imported.first, imported.last
    index = index_from_monthly(name, imported.monthly, "", "")
    growth = None if index.growth is None else index.growth - 1
    console.print(f"{imported.file}: {imported.rows} rows, months {first[0]}-{first[1]:02d} … {last[0]}-{last[1]:02d}"
                  + (f"; twelve-month growth to the last month {100 * growth:+.2f} %" if growth is not None else ""),
                  soft_wrap=True, highlight=False)
    if compared:
        console.print(f"{compared} months also in the previous file; largest revision {largest:.2f} index points",
                      soft_wrap=True, highlight=False)
    console.print(f"Wrote {written}" if written else "Dry run: nothing written", soft_wrap=True, highlight=False)
    emit_json(json_out, {"file": imported.file, "sha256": imported.sha256, "rows": imported.rows,
                         "first_month": f"{first[0]}-{first[1]:02d}", "last_month": f"{last[0]}-{last[1]:02d}",
                         "months_compared": compared, "largest_revision": largest, "written": written,
                         "twelve_month_growth": growth})
