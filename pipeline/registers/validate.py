"""Validation of register frames and the panel with Great Expectations suites (``expectations/registers/*.json``).

A suite is native GX JSON; string kwargs of the form ``${name}`` are bound per delivery before validation
(``${period_end}``, ``${period_end_next}`` — the day after the period, the exclusive end of spells —,
``${period_start}``; dates are passed to GX as ISO datetimes because GX compares them with pandas
timestamps). Date columns are validated as datetimes.

Who evaluates the suite: frames of at most ``gx_max_rows`` rows (default 50 000, environment variable
``SOM_GX_MAX_ROWS``; 0 = never) go through GX itself (:func:`pipeline.quality.gx_runner.validate_frame`). Larger frames
are evaluated by :func:`evaluate_polars`, a polars implementation of the same expectation types with GX's
semantics (missing values are ignored except by ``not_null``; every occurrence of a duplicated value is
unexpected; percentages are of non-missing values), because GX on pandas costs about 1.8 s per million rows
and six expectations (measured), i.e. minutes for a population-scale delivery. Both paths yield the same
:class:`~pipeline.quality.gx_runner.ValidationReport` (tests compare them), so the refusal message is the same:
``describe_failures`` — file, check, column, how many rows fail and the first row numbers, never a value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from pathlib import Path
from typing import Any, Mapping

import polars as pl

from pipeline.quality.gx_runner import ExpectationOutcome, SuiteSpec, ValidationReport, describe_outcome, load_suite, validate_frame
from pipeline.registers.config import SUITES

_PLACEHOLDER = re.compile(r"^\$\{(\w+)\}$")
_SAMPLE = 5
DEFAULT_GX_MAX_ROWS = 50_000


def gx_max_rows(value: int | None = None) -> int:
    if value is not None:
        return value
    env = os.environ.get("SOM_GX_MAX_ROWS", "").strip()
    return int(env) if env.isdigit() else DEFAULT_GX_MAX_ROWS


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


# --------------------------------------------------------------------------- polars evaluation of a suite

def _parse_bound(value: Any, dtype: pl.DataType) -> Any:
    if isinstance(value, str) and (dtype == pl.Date or isinstance(dtype, pl.Datetime)):
        d = dt.datetime.fromisoformat(value)
        return d.date() if dtype == pl.Date else d
    return value


def _outcome(spec, *, success: bool, element_count: int | None = None, unexpected: int | None = None,
             nonnull: int | None = None, rows: tuple[int, ...] = (), observed: Any = None) -> ExpectationOutcome:
    pct = None
    if unexpected is not None and nonnull:
        pct = 100.0 * unexpected / nonnull
    elif unexpected is not None:
        pct = 0.0
    return ExpectationOutcome(spec.check_name, spec.type, spec.kwargs, spec.blocking, spec.description, success,
                              element_count, unexpected, pct, rows, observed)


def _mostly_ok(spec, unexpected: int, nonnull: int) -> bool:
    mostly = spec.kwargs.get("mostly")
    if mostly is None or nonnull == 0:
        return unexpected == 0
    return (nonnull - unexpected) / nonnull >= float(mostly)


def _dup(exprs: list[pl.Expr]) -> pl.Expr:
    """Rows whose value (or combination) occurs more than once: a 64-bit hash finds candidates, which are then
    confirmed on the values themselves (so a hash collision can never refuse a good delivery)."""
    key = exprs[0] if len(exprs) == 1 else pl.struct(exprs)
    h = exprs[0].hash(seed=7)
    for i, e in enumerate(exprs[1:], start=1):  # combine column hashes (wrapping uint64 arithmetic)
        h = h * 1_000_003 + e.hash(seed=7 + i)
    cand = h.is_duplicated()
    return pl.when(cand).then(key.is_duplicated().over(cand)).otherwise(False)


def _masks(df: pl.DataFrame, spec) -> tuple[pl.Expr, pl.Expr] | None:
    """(unexpected, counted) boolean expressions of a column-map expectation, GX semantics; None if table-level."""
    t, kw = spec.type, spec.kwargs
    if t == "expect_column_values_to_not_be_null":
        return pl.col(kw["column"]).is_null(), None  # percentages of all rows
    if t == "expect_compound_columns_to_be_unique":
        cl = list(kw["column_list"])
        anyval = pl.any_horizontal(pl.col(cl).is_not_null())
        return _dup([pl.col(c) for c in cl]) & anyval, anyval
    if t == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = pl.col(kw["column_A"]), pl.col(kw["column_B"])
        ignore = kw.get("ignore_row_if", "both_values_are_missing")
        skip = (a.is_null() | b.is_null()) if ignore == "either_value_is_missing" else (a.is_null() & b.is_null())
        cmp = (a >= b) if kw.get("or_equal") else (a > b)
        return (~cmp.fill_null(False)) & ~skip, ~skip
    if "column" not in kw:
        return None
    c = pl.col(kw["column"])
    dtype = df.schema[kw["column"]]
    present = c.is_not_null()
    if t == "expect_column_values_to_be_between":
        lo, hi = _parse_bound(kw.get("min_value"), dtype), _parse_bound(kw.get("max_value"), dtype)
        bad = pl.lit(False)
        if lo is not None:
            bad = bad | ((c <= lo) if kw.get("strict_min") else (c < lo)).fill_null(False)
        if hi is not None:
            bad = bad | ((c >= hi) if kw.get("strict_max") else (c > hi)).fill_null(False)
        return bad & present, present
    if t == "expect_column_values_to_be_in_set":
        return ~c.is_in(list(kw["value_set"])).fill_null(True) & present, present
    if t == "expect_column_values_to_be_unique":
        return _dup([c]) & present, present
    if t == "expect_column_value_lengths_to_equal":
        return (c.cast(pl.Utf8).str.len_chars() != int(kw["value"])).fill_null(False) & present, present
    if t == "expect_column_values_to_match_regex":
        return ~c.cast(pl.Utf8).str.contains(kw["regex"]).fill_null(True) & present, present
    raise NotImplementedError(t)


def _table_level(df: pl.DataFrame, spec) -> ExpectationOutcome:
    t, kw = spec.type, spec.kwargs
    if t == "expect_table_row_count_to_be_between":
        lo, hi = kw.get("min_value"), kw.get("max_value")
        ok = (lo is None or df.height >= lo) and (hi is None or df.height <= hi)
        return _outcome(spec, success=ok, observed=df.height)
    if t == "expect_table_columns_to_match_set":
        want, have = set(kw["column_set"]), set(df.columns)
        ok = want <= have if not kw.get("exact_match", True) else want == have
        return _outcome(spec, success=ok, observed=list(df.columns))
    if t == "expect_column_to_exist":
        return _outcome(spec, success=kw["column"] in df.columns)
    raise NotImplementedError(t)


def evaluate_polars(df: pl.DataFrame, suite: SuiteSpec) -> ValidationReport:
    """The suite evaluated with polars in one parallel pass (GX semantics for the types our suites use).

    Raises NotImplementedError for an expectation type it does not know (the caller then uses GX).
    """
    outcomes: dict[int, ExpectationOutcome] = {}
    exprs, pending = [], []
    for i, spec in enumerate(suite.expectations):
        kw = spec.kwargs
        cols = [c for c in (kw.get("column"), kw.get("column_A"), kw.get("column_B")) if c] + list(kw.get("column_list") or [])
        missing = [c for c in cols if c not in df.columns]
        if missing:
            outcomes[i] = dataclasses.replace(_outcome(spec, success=False), error=f'The column "{missing[0]}" in BatchData does not exist.')
            continue
        masks = _masks(df, spec)
        if masks is None:
            outcomes[i] = _table_level(df, spec)
            continue
        bad, counted = masks
        exprs += [bad.sum().alias(f"b{i}"), (pl.len() if counted is None else counted.cast(pl.Int64).sum()).alias(f"c{i}")]
        pending.append((i, spec, bad))
    totals = df.select(exprs).row(0, named=True) if exprs else {}
    for i, spec, bad in pending:
        unexpected, nonnull = int(totals[f"b{i}"] or 0), int(totals[f"c{i}"] or 0)
        rows: tuple[int, ...] = ()
        if unexpected:
            rows = tuple(df.select(bad.alias("m")).with_row_index("r").filter(pl.col("m")).head(_SAMPLE)
                         .get_column("r").to_list())
        outcomes[i] = _outcome(spec, success=_mostly_ok(spec, unexpected, nonnull), element_count=df.height,
                               unexpected=unexpected, nonnull=nonnull, rows=rows)
    ordered = tuple(outcomes[i] for i in range(len(suite.expectations)))
    return ValidationReport(suite.name, suite.asset, all(o.success for o in ordered), ordered)


def _for_gx(df: pl.DataFrame) -> pl.DataFrame:
    dates = [c for c, t in df.schema.items() if t == pl.Date]
    return df.with_columns(pl.col(dates).cast(pl.Datetime("us"))) if dates else df


def validate(df: pl.DataFrame, suite: SuiteSpec, *, max_gx_rows: int | None = None) -> ValidationReport:
    """Run ``suite`` on ``df``: GX for small frames, the polars evaluator above ``max_gx_rows`` rows."""
    limit = gx_max_rows(max_gx_rows)
    if limit > 0 and df.height <= limit:
        return validate_frame(_for_gx(df), suite)
    try:
        return evaluate_polars(df, suite)
    except NotImplementedError:
        return validate_frame(_for_gx(df), suite)


# --------------------------------------------------------------------------- messages with file and row

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
