"""Output rules for published tables (Statistics Denmark style): cells based on fewer than ``min_cell``
persons are suppressed and marked, never shown."""

from __future__ import annotations

import polars as pl

SUPPRESSED = "suppressed (<{n})"


def suppress_small_cells(df: pl.DataFrame, *, count_columns: list[str], value_columns: list[str], min_cell: int) -> pl.DataFrame:
    """Return a string table where rows with any count below ``min_cell`` show no counts and no values.

    A suppressed row keeps its labels; its counts and values read ``suppressed (<min_cell)``.
    """
    if min_cell < 1:
        raise ValueError("min_cell must be at least 1")
    small = pl.any_horizontal([pl.col(c).fill_null(0) < min_cell for c in count_columns]) if count_columns else pl.lit(False)
    mark = SUPPRESSED.format(n=min_cell)
    out = df.with_columns(small.alias("_small"))
    exprs = []
    for c in df.columns:
        if c in count_columns or c in value_columns:
            text = pl.col(c).cast(pl.Utf8) if c in count_columns else pl.col(c).round_sig_figs(4).cast(pl.Utf8)
            exprs.append(pl.when(pl.col("_small")).then(pl.lit(mark)).otherwise(text.fill_null("")).alias(c))
        else:
            exprs.append(pl.col(c).cast(pl.Utf8).fill_null("").alias(c))
    return out.select(exprs + [pl.col("_small").alias("suppressed")])
