"""Which engine evaluates an expectation suite: the one switch used by ingestion and the Dagster checks.

:func:`validate` is the single entry point. Frames of at most ``gx_max_rows`` rows (default 50 000,
environment variable ``SOM_GX_MAX_ROWS``, read once per call of :func:`gx_max_rows`; 0 = never) are
evaluated by Great Expectations itself (:func:`pipeline.quality.gx_runner.validate_frame`), the reference.
Larger frames are evaluated by the polars engine (:mod:`pipeline.quality.polars_engine`) for every
expectation it implements and by GX for the others only (a sub-suite), because GX on pandas costs about
1.8 s per million rows and six expectations (measured) plus a 5–7 s import per process. Both engines give
the same :class:`~pipeline.quality.gx_runner.ValidationReport` (tests compare them); each outcome records
its ``engine``.

Ingestion validates many frames deep inside the panel build. :func:`collect_reports` lets a caller
collect every report :func:`validate` produces while it is active (per thread/context, via a context
variable), so the ingestion's per-expectation outcomes can be shown as Dagster asset checks without
validating twice.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import polars as pl

from pipeline.quality.gx_runner import SuiteSpec, ValidationReport, validate_frame
from pipeline.quality.polars_engine import evaluate_polars, supported

DEFAULT_GX_MAX_ROWS = 50_000

_COLLECTOR: ContextVar[list[ValidationReport] | None] = ContextVar("som_validation_reports", default=None)


def gx_max_rows(value: int | None = None) -> int:
    """``value`` if given, else ``SOM_GX_MAX_ROWS`` (a non-negative integer), else 50 000."""
    if value is not None:
        return value
    env = os.environ.get("SOM_GX_MAX_ROWS", "").strip()
    return int(env) if env.isdigit() else DEFAULT_GX_MAX_ROWS


def for_gx(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with Date columns as datetimes (GX compares dates with pandas timestamps)."""
    dates = [c for c, t in df.schema.items() if t == pl.Date]
    return df.with_columns(pl.col(dates).cast(pl.Datetime("us"))) if dates else df


def engine_for(height: int, max_gx_rows: int | None = None) -> str:
    """"gx" when a frame of ``height`` rows is evaluated by GX as a whole, else "polars" (GX only for the
    expectation types the polars engine does not implement)."""
    limit = gx_max_rows(max_gx_rows)
    return "gx" if 0 < limit and height <= limit else "polars"


def _evaluate(df: pl.DataFrame, suite: SuiteSpec, max_gx_rows: int | None) -> ValidationReport:
    if engine_for(df.height, max_gx_rows) == "gx":
        return validate_frame(for_gx(df), suite)
    own = [e for e in suite.expectations if supported(e)]
    if len(own) == len(suite.expectations):
        return evaluate_polars(df, suite)
    rest = [e for e in suite.expectations if not supported(e)]
    by_name = {}
    for part, run in ((own, evaluate_polars), (rest, lambda d, s: validate_frame(for_gx(d), s))):
        if part:
            by_name.update({o.check_name: o for o in run(df, dataclasses.replace(suite, expectations=tuple(part))).outcomes})
    outcomes = tuple(by_name[e.check_name] for e in suite.expectations)
    return ValidationReport(suite.name, suite.asset, all(o.success for o in outcomes), outcomes)


def validate(df: pl.DataFrame, suite: SuiteSpec, *, max_gx_rows: int | None = None) -> ValidationReport:
    """Evaluate ``suite`` on ``df`` with the engine chosen by :func:`engine_for` (report in suite order)."""
    if isinstance(df, pl.LazyFrame):
        df = df.collect()
    report = _evaluate(df, suite, max_gx_rows)
    collected = _COLLECTOR.get()
    if collected is not None:
        collected.append(report)
    return report


def record(report: ValidationReport) -> None:
    """Add a report made without :func:`validate` (e.g. expectations found not applicable) to the collection."""
    collected = _COLLECTOR.get()
    if collected is not None:
        collected.append(report)


@contextmanager
def collect_reports() -> Iterator[list[ValidationReport]]:
    """Collect every report :func:`validate` returns in this context, in order (also when an error escapes)."""
    reports: list[ValidationReport] = []
    token = _COLLECTOR.set(reports)
    try:
        yield reports
    finally:
        _COLLECTOR.reset(token)
