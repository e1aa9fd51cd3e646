"""A delivery's cost file (``costs.parquet``, ``costs.csv``, …): the intervention's cost per participant.

One row per participant; columns ``BELOEB`` — the cost in kroner, **positive = cost** (the sign convention of
the volume verdicts, :mod:`som_models.volume_verdicts`) — and optionally ``PRISAAR``, the price year of the
amount. Any other column (a person number included) is not read. Column names are matched case-insensitively;
Parquet, CSV (the Danish dialect too) and SAS as for registers (:func:`pipeline.registers.files.read_table`).

Rules, each refusal naming the file, the column, the rule and the first 0-based data-row numbers, never a value:

* ``cost-column`` — ``BELOEB`` is present;
* ``number-format`` / ``finite`` — every amount parses exactly and is finite (:func:`~pipeline.registers.files.as_float`);
* ``cost-missing`` — no amount is empty;
* ``cost-sign`` — no amount is negative (a cost file holds costs; a saving is not a cost);
* ``cost-range`` — no amount exceeds :data:`COST_MAX` kroner per participant (stated plausible range: a value
  above it is almost surely a unit error, øre for kroner);
* ``price-year`` — ``PRISAAR``, when given, is a whole year within :data:`PRICE_YEARS`.

The checks run when a delivery is ingested (:func:`check_delivery_costs`, so ``som ingest`` and the Dagster
``registers`` asset refuse a delivery with a bad cost file and write nothing) and when an evaluation reads a
cost file (:func:`pipeline.evaluation.read_costs`, also for a cost file the spec names in ``data.costs``).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.registers.files import DeliveryError, Manifest, as_float, as_int, read_table

#: the stem of a delivery's cost file (``costs.parquet``, ``costs.csv``, …)
COST_FILE_STEM = "costs"
#: the columns: the participant's intervention cost in kroner (positive = cost) and the optional price year
COST_AMOUNT, COST_PRICE_YEAR = "BELOEB", "PRISAAR"
#: the largest plausible cost per participant, kroner (about 20 years of a secure residential placement)
COST_MAX = 50_000_000.0
#: plausible price years (inclusive)
PRICE_YEARS = (1950, 2100)
_SAMPLE = 5


def _refuse(file: str, column: str, rule: str, mask: pl.Series, what: str) -> DeliveryError:
    rows = mask.arg_true().head(_SAMPLE).to_list()
    return DeliveryError(f"{file}: column {column}: rule {rule}: {int(mask.sum())} value(s) {what} (rows {rows})")


def read_cost_file(path: Path) -> pl.DataFrame:
    """The cost file as ``amount`` (kroner per participant, positive = cost) and ``price_year`` (null = the parameter
    set's price year); raises :class:`DeliveryError` by the rules of the module docstring."""
    path = Path(path)
    table = read_table(path, [COST_AMOUNT, COST_PRICE_YEAR])
    df, file = table.frame, path.name
    if COST_AMOUNT not in df.columns:
        raise DeliveryError(f"{file}: column {COST_AMOUNT}: rule cost-column: the column (cost per participant, kroner) "
                            f"is missing (has {', '.join(df.columns[:12]) or 'no columns'})")
    amount = as_float(df.get_column(COST_AMOUNT), file, COST_AMOUNT, table.decimal_comma)
    for rule, mask, what in (
            ("cost-missing", amount.is_null(), "are empty"),
            ("cost-sign", amount.fill_null(0.0) < 0, "are negative (a cost file holds costs, positive kroner)"),
            ("cost-range", amount.fill_null(0.0) > COST_MAX,
             f"exceed {COST_MAX:,.0f} kroner per participant (a unit error, øre for kroner?)")):
        if mask.any():
            raise _refuse(file, COST_AMOUNT, rule, mask, what)
    if COST_PRICE_YEAR in df.columns:
        year = as_int(df.get_column(COST_PRICE_YEAR), file, COST_PRICE_YEAR, table.decimal_comma)
        lo, hi = PRICE_YEARS
        bad = year.is_not_null() & ~year.is_between(lo, hi)
        if bad.any():
            raise _refuse(file, COST_PRICE_YEAR, "price-year", bad, f"are not years {lo}–{hi}")
    else:
        year = pl.Series([None] * df.height, dtype=pl.Int64)
    return pl.DataFrame({"amount": amount, "price_year": year})


def delivery_cost_files(manifest: Manifest) -> list[str]:
    """The files of ``manifest`` whose stem is ``costs`` (any case, any supported extension)."""
    return [f for f in manifest.files if Path(f).stem.lower() == COST_FILE_STEM]


def check_delivery_costs(manifest: Manifest) -> None:
    """Refuse a delivery whose cost file breaks a rule (or that has more than one cost file)."""
    found = delivery_cost_files(manifest)
    if len(found) > 1:
        raise DeliveryError(f"{', '.join(found)}: rule cost-file: more than one cost file; deliver one")
    for f in found:
        read_cost_file(manifest.folder / f)
