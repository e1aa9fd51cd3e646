"""Small-cell suppression for every published number (Statistics Denmark's output rules).

The rule: no published figure may describe fewer than ``min_cell`` persons (default 5; an evaluation spec's
``min_cell``). A count that is unknown counts as small. A suppressed figure is withheld — ``None`` in data
(JSON ``null``) and ``suppressed (<min_cell)`` in tables — and its row keeps its labels and a ``suppressed``
flag, so a reader sees that something was withheld and why.

Every output applies it through this module: CLI tables and ``--json`` documents (estimates, verdicts,
audit trails, parameter documents' evidence), the HTML report and Dagster metadata.

* :func:`suppress_frame` / :func:`suppress_records` — a table with count columns: rows with a small count
  lose their counts and values (typed frame / list of dicts);
* :func:`suppress_small_cells` — the same as a display table of strings;
* :func:`suppress_verdict` — a verdict record: path points and, for a small comparison, the realised value,
  interval, test statistics and the sentence quoting them;
* :func:`suppress_scalar` — one figure with the count it rests on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # polars is imported where a frame is suppressed (keeps `som --help` light)
    import polars as pl

DEFAULT_MIN_CELL = 5
#: the agency's floor: a threshold below it needs an explicit, recorded override (the spec's
#: ``min_cell_override``, the CLI's ``--min-cell-reason``); equal to ``som_models.evaluation_spec.MIN_CELL_FLOOR``
MIN_CELL_FLOOR = 5
SUPPRESSED = "suppressed (<{n})"

#: Verdict fields that quote the realised comparison (withheld when it rests on fewer than min_cell persons).
VERDICT_VALUE_KEYS = ("realised", "ci_low", "ci_high", "statistic", "p_value", "p_adjusted")
#: Fields of an effect-path point that describe its persons.
PATH_VALUE_KEYS = ("realised", "estimate", "se", "ci_low", "ci_high", "z", "p_value", "n_treated", "n_control")


def check_min_cell(min_cell: int) -> int:
    """``min_cell`` as an int; a ``ValueError`` unless it is at least 1."""
    if isinstance(min_cell, bool) or int(min_cell) != min_cell or min_cell < 1:
        raise ValueError(f"min_cell must be a whole number of at least 1 (got {min_cell!r})")
    return int(min_cell)


def check_min_cell_floor(min_cell: int, reason: str | None, *, option: str = "--min-cell",
                         reason_option: str = "--min-cell-reason") -> dict[str, Any] | None:
    """A user-chosen threshold checked against :data:`MIN_CELL_FLOOR`; the override record or None.

    Below the floor a non-empty ``reason`` is required; it comes back as ``{"value", "reason"}`` for the command
    to record in its output (``--json`` metadata). A reason without a threshold below the floor is refused too.
    """
    value = check_min_cell(min_cell)
    reason = (reason or "").strip() or None
    if value >= MIN_CELL_FLOOR:
        if reason is not None:
            raise ValueError(f"{reason_option} is only for a {option} below the floor of {MIN_CELL_FLOOR} (got {value})")
        return None
    if reason is None:
        raise ValueError(f"{value} is below the agency's small-cell floor of {MIN_CELL_FLOOR}; a lower threshold "
                         f"needs an explicit override: add {reason_option} \"why\" (it is recorded with the output)")
    return {"value": value, "reason": reason}


def is_small(n: Any, min_cell: int) -> bool:
    """True when a figure resting on ``n`` persons may not be published: ``n`` unknown or below ``min_cell``."""
    return n is None or n != n or n < min_cell


def suppress_scalar(value: Any, n: Any, min_cell: int) -> Any:
    """``value`` if the ``n`` persons it describes may be published, else ``None``."""
    check_min_cell(min_cell)
    return None if is_small(n, min_cell) else value


def suppress_frame(df: pl.DataFrame, *, count_columns: Iterable[str], value_columns: Iterable[str],
                   min_cell: int) -> pl.DataFrame:
    """``df`` with counts and values nulled in rows where any count is null or below ``min_cell``.

    Column types are kept; a boolean column ``suppressed`` marks the withheld rows. Without count columns
    nothing is suppressed.
    """
    import polars as pl

    check_min_cell(min_cell)
    counts = [c for c in count_columns if c in df.columns]
    values = [c for c in value_columns if c in df.columns]
    small = pl.any_horizontal([pl.col(c).is_null() | (pl.col(c) < min_cell) for c in counts]) if counts else pl.lit(False)
    out = df.with_columns(small.alias("suppressed"))
    return out.with_columns([pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).alias(c) for c in counts + values])


def suppress_records(rows: Iterable[Mapping[str, Any]], *, count_keys: Iterable[str], value_keys: Iterable[str],
                     min_cell: int) -> list[dict[str, Any]]:
    """Dict rows with counts and values set to ``None`` where a count is unknown or below ``min_cell``.

    Each row gains ``suppressed`` (bool). Keys a row does not have are left absent.
    """
    check_min_cell(min_cell)
    count_keys, value_keys = tuple(count_keys), tuple(value_keys)
    out = []
    for row in rows:
        row = dict(row)
        small = any(is_small(row.get(k), min_cell) for k in count_keys if k in row)
        if small:
            for k in (*count_keys, *value_keys):
                if k in row:
                    row[k] = None
        row["suppressed"] = small
        out.append(row)
    return out


def suppress_small_cells(df: pl.DataFrame, *, count_columns: list[str], value_columns: list[str],
                         min_cell: int) -> pl.DataFrame:
    """A display table of strings: rows with a small count show ``suppressed (<min_cell)`` in counts and values.

    Labels are kept; values are shown to 4 significant figures; the boolean ``suppressed`` column marks
    withheld rows (see :func:`suppress_frame` for the typed form).
    """
    import polars as pl

    typed = suppress_frame(df, count_columns=count_columns, value_columns=value_columns, min_cell=min_cell)
    mark = SUPPRESSED.format(n=min_cell)
    exprs = []
    for c in df.columns:
        if c in count_columns or c in value_columns:
            text = (pl.col(c).cast(pl.Utf8) if c in count_columns or not typed.schema[c].is_float()
                    else pl.col(c).round_sig_figs(4).cast(pl.Utf8))
            exprs.append(pl.when(pl.col("suppressed")).then(pl.lit(mark)).otherwise(text.fill_null("")).alias(c))
        else:
            exprs.append(pl.col(c).cast(pl.Utf8).fill_null("").alias(c))
    return typed.select(exprs + [pl.col("suppressed")])


def suppress_verdict(verdict: Mapping[str, Any], min_cell: int) -> dict[str, Any]:
    """A verdict record fit for output.

    Effect-path points resting on fewer than ``min_cell`` treated persons keep their event time and get
    ``suppressed: true`` with their numbers withheld. When the whole comparison rests on fewer (or an unknown
    number of) treated persons, the realised value, interval and test statistics are withheld too, the
    equivalence test's details are dropped and the sentence (which quotes them) is replaced; the label stays.
    """
    check_min_cell(min_cell)
    out = dict(verdict)
    evidence = dict(out.get("evidence") or {})
    path = []
    for p in evidence.get("path", []) or []:
        p = dict(p)
        if is_small(p.get("n_treated"), min_cell):
            for key in PATH_VALUE_KEYS:
                if key in p:
                    p[key] = None
            p["suppressed"] = True
        path.append(p)
    if path:
        evidence["path"] = path
    if is_small(evidence.get("n_treated"), min_cell):
        for key in VERDICT_VALUE_KEYS:
            if key in out:
                out[key] = None
        evidence["n_treated"] = None
        evidence["suppressed"] = f"fewer than {min_cell} treated persons"
        evidence.pop("tost", None)
        if "sentence" in out:
            label = out.get("label") or "verdict"
            out["sentence"] = (f"{label[:1].upper()}{label[1:]}; the realised value is not shown: it rests on fewer "
                               f"than {min_cell} treated persons.")
    out["evidence"] = evidence
    return out
