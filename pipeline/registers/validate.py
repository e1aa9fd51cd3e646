"""Register suites (``expectations/registers/*.json``) bound per delivery, and refusal lines naming file and row.

A suite is native GX JSON; string kwargs of the form ``${name}`` are bound per delivery before validation
(``${period_end}``, ``${period_end_next}`` — the day after the period, the exclusive end of spells —,
``${period_start}``; dates are passed as ISO datetimes because GX compares them with pandas timestamps).
Date columns are validated as datetimes.

Who evaluates a suite is decided by one switch, :func:`pipeline.quality.engine.validate` (re-exported here
with the polars evaluator for the callers in :mod:`pipeline.registers`): GX for frames of at most
``gx_max_rows`` rows, the polars engine above (GX only for expectation types it does not implement). Both
yield the same :class:`~pipeline.quality.gx_runner.ValidationReport`, so the refusal message is the same:
:func:`describe` — file, check, column, how many rows fail and the first row numbers, never a value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.quality.engine import DEFAULT_GX_MAX_ROWS, collect_reports, engine_for, for_gx, gx_max_rows, validate
from pipeline.quality.gx_runner import SuiteSpec, ValidationReport, describe_outcome, load_suite
from pipeline.quality.polars_engine import evaluate_polars
from pipeline.registers.config import SUITES
from pipeline.registers.files import DeliveryError

__all__ = ["DEFAULT_GX_MAX_ROWS", "bind", "check_dream_week_columns", "check_person_constant", "collect_reports",
           "describe", "engine_for", "evaluate_polars", "for_gx", "gx_max_rows", "register_suite", "validate"]
_for_gx = for_gx  # the name earlier callers and tests use

_SAMPLE = 5
_PLACEHOLDER = re.compile(r"^\$\{(\w+)\}$")


def _bind_value(value: Any, params: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        m = _PLACEHOLDER.match(value)
        if m:
            if m.group(1) not in params:
                raise KeyError(f"suite parameter ${{{m.group(1)}}} has no value")
            v = params[m.group(1)]
            return f"{v.isoformat()}T00:00:00" if isinstance(v, dt.date) else v
        return value
    if isinstance(value, list):
        return [_bind_value(v, params) for v in value]
    if isinstance(value, dict):
        return {k: _bind_value(v, params) for k, v in value.items()}
    return value


def bind(suite: SuiteSpec, params: Mapping[str, Any]) -> SuiteSpec:
    """The suite with every ``${name}`` kwarg replaced by ``params[name]`` (dates as ISO datetimes)."""
    exps = tuple(dataclasses.replace(e, kwargs=_bind_value(dict(e.kwargs), params)) for e in suite.expectations)
    return dataclasses.replace(suite, expectations=exps)


def register_suite(name: str, params: Mapping[str, Any], folder: Path = SUITES) -> SuiteSpec:
    return bind(load_suite(folder / f"{name}.json"), params)


# --------------------------------------------------------------------------- messages with file and row

#: columns the ingestion derives from a delivered code column before validation → that column (a failed check on
#: the derived column is a code of the delivered column that is in no group of its code list)
DERIVED_COLUMNS = {"PATTYPE_KIND": "C_PATTYPE", "SANCTION_GROUP": "AFG_AFGTYP3", "PGF_GROUP": "PGF"}


def describe(report: ValidationReport, files: list[tuple[str, int]], *, blocking_only: bool = True) -> list[str]:
    """One line per failed expectation; sample rows are translated to ``file row r`` (0-based data rows).

    ``files`` lists (file name, number of rows) in the order the frames were concatenated.
    """
    offsets, acc = [], 0
    for name, n in files:
        offsets.append((acc, acc + n, name))
        acc += n
    lines = []
    for o in report.failures():
        if blocking_only and not o.blocking:
            continue
        names = sorted({name for lo, hi, name in offsets if any(lo <= r < hi for r in o.sample_rows)}) or [f for f, _ in files]
        source = ", ".join(names[:3]) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")
        line = describe_outcome(dataclasses.replace(o, sample_rows=()), source)
        derived = next((c for c in o.columns if c in DERIVED_COLUMNS), None)
        if derived is not None:  # name the delivered column and its code list, not only the derived one
            why = f" ({o.description})" if o.description else ""
            line += f" — {DERIVED_COLUMNS[derived]} codes outside the code list{why}"
        if o.sample_rows:
            where = []
            for r in o.sample_rows:
                for lo, hi, name in offsets:
                    if lo <= r < hi:
                        where.append(f"{name} row {r - lo}" if len(files) > 1 else f"row {r - lo}")
                        break
            line += f"; first rows: {', '.join(where)}"
        lines.append(line)
    return lines


# --------------------------------------------------------------------------- DREAM week columns

_WEEK_SHAPE = re.compile(r"^y_(\d{2})(\d{2})$", re.IGNORECASE)


def check_dream_week_columns(names: list[str], file: str, pivot: int = 50) -> None:
    """Every DREAM column shaped like a week column, ``y_YYWW``, names an ISO week (rule ``dream-week-columns``).

    ``YY`` is the ISO year (``YY`` < ``pivot`` → 20YY, else 19YY, as :func:`~som_models.simulate.calendar.
    parse_week_column` reads it) and ``WW`` 01–52, or 53 only in an ISO year that has 53 weeks (the year's
    28 December lies in its last week). A week 00, 54–99, or 53 of a 52-week year means the extract numbers its
    weeks another way — its codes would land in the wrong weeks — so the delivery is refused, naming the columns
    (names, never values). Week columns of years outside the period are checked too but never read.
    """
    from som_models.simulate.calendar import iso_weeks_in_year

    bad = []
    for n in names:
        m = _WEEK_SHAPE.match(str(n).strip())
        if not m:
            continue
        yy, ww = int(m.group(1)), int(m.group(2))
        year = 2000 + yy if yy < pivot else 1900 + yy
        if not 1 <= ww <= iso_weeks_in_year(year):
            bad.append((str(n).strip().upper(), year))
    if bad:
        shown = ", ".join(f"{c} ({y} has {iso_weeks_in_year(y)} ISO weeks)" for c, y in bad[:5])
        more = f" (+{len(bad) - 5} more)" if len(bad) > 5 else ""
        raise DeliveryError(f"{file}: column {bad[0][0]}: rule dream-week-columns: {len(bad)} column(s) named like a "
                            f"week are no ISO week: {shown}{more}; DREAM week columns are y_YYWW with WW 01–52, or 53 "
                            "in an ISO year that has 53 weeks")


# --------------------------------------------------------------------------- BEF: what a person number fixes

def check_person_constant(frame: pl.DataFrame, columns: tuple[str, ...], files: list[tuple[str, int | None]],
                          *, rule: str = "person-constant") -> None:
    """Columns that cannot change between a person's yearly status files are the same in every year (rule
    ``person-constant``; BEF's ``KOEN`` and ``FOED_DAG``).

    A CPR number encodes the birth date and the sex (a legal change of sex gives a new number), so one PNR with
    two birth dates or two sexes in different years' files is an extraction or linkage error; taking any one
    of them would be a guess (and ``birth_year``/``age`` would jump between a person's rows). ``frame`` holds
    ``PNR``, ``YEAR`` and ``columns`` in the order of ``files`` (file, year), each file's rows contiguous.
    Refusal: file, column, rule, the number of persons and the first rows (0-based, within their file) whose
    value differs from the person's value in the earliest year — never a value.

    Cost: one group-by on integer keys with a min and a max per column; rows are located only on failure.
    """
    key = pl.col("PNR").cast(pl.Int64, strict=False)
    spans = frame.group_by(key.alias("_k")).agg(
        *[(pl.col(c).min() != pl.col(c).max()).alias(c) for c in columns])
    bad = [c for c in columns if spans.get_column(c).any()]
    if not bad:
        return
    lines = []
    row_in_file = pl.int_range(pl.len()).over("YEAR")
    for c in bad:
        first = pl.col(c).sort_by("YEAR").first().over("_k")
        odd = (frame.with_columns(key.alias("_k"))
               .with_columns(row_in_file.alias("_row"), (pl.col(c) != first).fill_null(False).alias("_odd"))
               .filter(pl.col("_odd")).sort("YEAR", "_row"))
        persons = spans.get_column(c).sum()
        by_year = {y: f for f, y in files}
        where = [f"{by_year.get(y, '?')} row {r}" for y, r in odd.select("YEAR", "_row").head(_SAMPLE).iter_rows()]
        file = by_year.get(odd.get_column("YEAR")[0], files[0][0]) if odd.height else files[0][0]
        lines.append(f"{file}: column {c}: rule {rule}: {persons} person(s) have another {c} than in their earliest "
                     f"year's file (a person number fixes it; first rows: {', '.join(where)})")
    raise DeliveryError(lines[0], lines)
