"""Load Great Expectations suites and run them on polars/pandas frames.

Suites are native GX Core 1.x ExpectationSuite JSON files (``expectations/*.json``). The
suite-level ``meta.dagster_asset`` names the asset a suite describes; each expectation's
``meta`` carries ``blocking`` (a failure must stop downstream assets) and ``description``.

Every expectation gets a deterministic, Dagster-safe ``check_name`` (``not_null__person_id``,
``between__shelter_nights``, ``ge__ci_high__estimate`` …) used as the Dagster check name.

Privacy: reports hold counts and 0-based row numbers only. Unexpected cell values (which
could be person ids) are never copied out of the GX result.

``great_expectations`` is imported lazily (it takes several seconds) on first validation,
with analytics and progress bars turned off; one ephemeral GX context is cached per process.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from som_reference import expectations_dir

SUITE_DIR = expectations_dir()

_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")
_SAMPLE_ROWS = 5
_COLUMN_KEYS = ("column", "column_A", "column_B", "column_list", "column_set")

# Short prefixes for check names; other types fall back to the type minus ``expect_``.
_SHORT_NAMES = {
    "expect_column_values_to_not_be_null": "not_null",
    "expect_column_values_to_be_null": "null",
    "expect_column_values_to_be_between": "between",
    "expect_column_values_to_be_in_set": "in_set",
    "expect_column_values_to_not_be_in_set": "not_in_set",
    "expect_column_values_to_be_unique": "unique",
    "expect_column_values_to_match_regex": "regex",
    "expect_column_values_to_not_match_regex": "not_regex",
    "expect_column_values_to_be_of_type": "type",
    "expect_column_values_to_be_in_type_list": "type_in",
    "expect_column_value_lengths_to_equal": "length",
    "expect_column_to_exist": "exists",
    "expect_compound_columns_to_be_unique": "unique",
    "expect_select_column_values_to_be_unique_within_record": "distinct_within_record",
    "expect_column_pair_values_to_be_equal": "eq",
    "expect_multicolumn_sum_to_equal": "sum",
    "expect_table_columns_to_match_set": "columns",
    "expect_table_columns_to_match_ordered_list": "columns_ordered",
    "expect_table_column_count_to_equal": "column_count",
    "expect_table_row_count_to_be_between": "row_count",
    "expect_table_row_count_to_equal": "row_count_eq",
}


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation of a suite, as written in the suite file."""

    check_name: str
    type: str
    kwargs: dict = field(hash=False)
    blocking: bool
    description: str


@dataclass(frozen=True)
class SuiteSpec:
    """A loaded suite: its name, the Dagster asset it describes and its expectations."""

    name: str
    asset: str
    expectations: tuple[ExpectationSpec, ...]
    path: Path | None = field(default=None, compare=False)
    description: str = field(default="", compare=False)


@dataclass(frozen=True)
class ExpectationOutcome:
    """Result of one expectation. Holds counts and row numbers, never cell values."""

    check_name: str
    type: str
    kwargs: dict = field(hash=False)
    blocking: bool
    description: str
    success: bool
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    sample_rows: tuple[int, ...]
    observed_value: Any = field(hash=False)
    error: str | None = None
    engine: str = "gx"  # who evaluated it: "gx" (Great Expectations) or "polars" (pipeline.quality.polars_engine)

    @property
    def columns(self) -> tuple[str, ...]:
        """Column(s) the expectation is about (empty for table-level expectations)."""
        return _columns(self.kwargs)


@dataclass(frozen=True)
class ValidationReport:
    """Outcome of running one suite on one frame; outcomes are in the suite's order."""

    suite: str
    asset: str
    success: bool
    outcomes: tuple[ExpectationOutcome, ...]

    def failures(self) -> list[ExpectationOutcome]:
        """Failed expectations (blocking or not)."""
        return [o for o in self.outcomes if not o.success]

    def blocking_failures(self) -> list[ExpectationOutcome]:
        """Failed expectations that must stop downstream work."""
        return [o for o in self.outcomes if not o.success and o.blocking]

    @property
    def engines(self) -> tuple[str, ...]:
        """The engines that evaluated this report's expectations, sorted ("gx", "polars")."""
        return tuple(sorted({o.engine for o in self.outcomes}))

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-safe dict per outcome (suite and asset included)."""
        return [
            {
                "suite": self.suite,
                "asset": self.asset,
                "check_name": o.check_name,
                "type": o.type,
                "kwargs": _json_safe(o.kwargs),
                "blocking": o.blocking,
                "description": o.description,
                "success": o.success,
                "element_count": o.element_count,
                "unexpected_count": o.unexpected_count,
                "unexpected_percent": o.unexpected_percent,
                "sample_rows": list(o.sample_rows),
                "observed_value": _json_safe(o.observed_value),
                "error": o.error,
                "engine": o.engine,
            }
            for o in self.outcomes
        ]


# --------------------------------------------------------------------------- loading


def _columns(kwargs: dict) -> tuple[str, ...]:
    cols: list[str] = []
    for key in ("column", "column_A", "column_B"):
        if isinstance(kwargs.get(key), str):
            cols.append(kwargs[key])
    if isinstance(kwargs.get("column_list"), list):
        cols.extend(str(c) for c in kwargs["column_list"])
    return tuple(cols)


def _base_check_name(etype: str, kwargs: dict) -> str:
    if etype == "expect_column_pair_values_a_to_be_greater_than_b":
        prefix = "ge" if kwargs.get("or_equal") else "gt"
    else:
        prefix = _SHORT_NAMES.get(etype) or re.sub(r"^expect_(column_values_to_)?", "", etype)
    name = "__".join([prefix, *_columns(kwargs)])
    name = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return name or "check"


def _parse_expectation(raw: Any, i: int, where: str) -> tuple[str, dict, bool, str, str | None]:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expectation #{i} is not an object")
    etype, kwargs, meta = raw.get("type"), raw.get("kwargs", {}), raw.get("meta") or {}
    if not isinstance(etype, str) or not etype.startswith("expect_"):
        raise ValueError(f"{where}: expectation #{i} has no valid 'type' (got {etype!r})")
    if not isinstance(kwargs, dict) or not isinstance(meta, dict):
        raise ValueError(f"{where}: expectation #{i} ({etype}): 'kwargs' and 'meta' must be objects")
    blocking = meta.get("blocking")
    if not isinstance(blocking, bool):
        raise ValueError(f"{where}: expectation #{i} ({etype}): meta.blocking must be true or false")
    description = meta.get("description")
    if description is not None and not isinstance(description, str):
        raise ValueError(f"{where}: expectation #{i} ({etype}): meta.description must be a string")
    explicit = meta.get("check_name")
    if explicit is not None and (not isinstance(explicit, str) or not _NAME_RE.match(explicit)):
        raise ValueError(
            f"{where}: expectation #{i} ({etype}): meta.check_name {explicit!r} must use only "
            "letters, digits and underscores"
        )
    cols = ", ".join(_columns(kwargs)) or "table"
    return etype, kwargs, blocking, description or f"{etype} ({cols})", explicit


def _resolve(name_or_path: str | os.PathLike, suite_dir: Path) -> Path:
    text = os.fspath(name_or_path)
    if isinstance(name_or_path, os.PathLike) or text.endswith(".json") or os.sep in text:
        return Path(text)
    return Path(suite_dir) / f"{text}.json"


def load_suite(name_or_path: str | os.PathLike, suite_dir: str | os.PathLike = SUITE_DIR) -> SuiteSpec:
    """Load a suite by name (``panel`` → ``<suite_dir>/panel.json``) or by path.

    Raises FileNotFoundError for a missing file and ValueError (naming the file) for invalid
    JSON, missing keys or duplicate explicit check names.
    """
    path = _resolve(name_or_path, Path(suite_dir))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"expectation suite file not found: {path}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: invalid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: a suite must be a JSON object")
    name, raw_exps, meta = doc.get("name"), doc.get("expectations"), doc.get("meta")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{path}: missing suite 'name'")
    if not isinstance(raw_exps, list):
        raise ValueError(f"{path}: missing 'expectations' list")
    if not isinstance(meta, dict) or not isinstance(meta.get("dagster_asset"), str) or not meta["dagster_asset"]:
        raise ValueError(f"{path}: missing meta.dagster_asset (the Dagster asset the suite describes)")

    parsed = [_parse_expectation(raw, i, str(path)) for i, raw in enumerate(raw_exps)]
    explicit = [p[4] for p in parsed if p[4]]
    if len(explicit) != len(set(explicit)):
        raise ValueError(f"{path}: duplicate meta.check_name values")
    taken = set(explicit)
    specs = []
    for etype, kwargs, blocking, description, given in parsed:
        if given:
            check_name = given
        else:
            base = check_name = _base_check_name(etype, kwargs)
            n = 2
            while check_name in taken:
                check_name, n = f"{base}_{n}", n + 1
        taken.add(check_name)
        specs.append(ExpectationSpec(check_name, etype, kwargs, blocking, description))
    return SuiteSpec(
        name=name,
        asset=meta["dagster_asset"],
        expectations=tuple(specs),
        path=path,
        description=str(meta.get("description") or ""),
    )


def list_suites(suite_dir: str | os.PathLike = SUITE_DIR) -> list[SuiteSpec]:
    """All suites in ``suite_dir`` (``*.json``, sorted by file name)."""
    return [load_suite(p) for p in sorted(Path(suite_dir).glob("*.json"))]


# --------------------------------------------------------------------------- running

_LOCK = threading.Lock()
_GX: dict[str, Any] = {}


def _batch_definition() -> Any:
    """The cached whole-dataframe batch definition of this process's ephemeral GX context."""
    if "batch_definition" not in _GX:
        os.environ["GX_ANALYTICS_ENABLED"] = "False"
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        asset = context.data_sources.add_pandas("pandas").add_dataframe_asset("frame")
        _GX["gx"] = gx
        _GX["batch_definition"] = asset.add_batch_definition_whole_dataframe("whole")
    return _GX["batch_definition"]


def _to_pandas(df: Any) -> Any:
    import pandas as pd

    if isinstance(df, pd.DataFrame):
        return df.reset_index(drop=True)
    import polars as pl

    if isinstance(df, pl.LazyFrame):
        df = df.collect()
    if isinstance(df, pl.DataFrame):
        return df.to_pandas()
    raise TypeError(f"validate_frame expects a polars or pandas DataFrame, got {type(df).__name__}")


def _norm(value: Any) -> Any:
    """Normalise kwargs for matching: GX turns ints into floats and adds batch_id."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items() if k != "batch_id"}
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    return str(value)


def _kwargs_match(spec_kwargs: dict, result_kwargs: dict) -> bool:
    a, b = _norm(spec_kwargs), _norm(result_kwargs)
    # GX drops some kwargs equal to their defaults (e.g. exact_match=True): compare shared keys.
    return all(a[k] == b[k] for k in a.keys() & b.keys()) and set(_columns(spec_kwargs)) == set(
        _columns(result_kwargs)
    )


def _match_results(suite: SuiteSpec, results: list[Any]) -> dict[str, Any]:
    """Map check_name → GX result, by our injected meta.check_name, else by type + kwargs."""
    by_name = {e.check_name: e for e in suite.expectations}
    matched: dict[str, Any] = {}
    leftovers = []
    for res in results:
        cfg = res.expectation_config
        name = (cfg.meta or {}).get("check_name")
        spec = by_name.get(name)
        if spec is not None and spec.type == cfg.type and name not in matched:
            matched[name] = res
        else:
            leftovers.append(res)
    for res in leftovers:
        cfg = res.expectation_config
        for spec in suite.expectations:
            if spec.check_name not in matched and spec.type == cfg.type and _kwargs_match(spec.kwargs, cfg.kwargs):
                matched[spec.check_name] = res
                break
    missing = [e.check_name for e in suite.expectations if e.check_name not in matched]
    if missing:
        raise RuntimeError(f"suite {suite.name}: GX returned no result for {', '.join(missing)}")
    return matched


def _json_safe(value: Any) -> Any:
    """JSON-safe copy of a GX observed value (:func:`pipeline.jsonio.to_jsonable`; anything else as text)."""
    from pipeline.jsonio import to_jsonable

    return to_jsonable(value, fallback=str)


def _safe_observed(spec: ExpectationSpec, observed: Any) -> Any:
    """Observed values are kept only when they cannot be cell values of an id column:
    table-level results (column names, row counts) and numeric column aggregates."""
    observed = _json_safe(observed)
    if not any(k in spec.kwargs for k in ("column", "column_A", "column_B", "column_list")):
        return observed
    if isinstance(observed, (int, float)) and not isinstance(observed, bool):
        return observed
    return None


def _exception_message(info: Any) -> str | None:
    if not isinstance(info, dict):
        return None
    candidates = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for c in candidates:
        if c.get("raised_exception"):
            msg = str(c.get("exception_message") or "exception while evaluating").strip()
            return msg.splitlines()[0][:300] if msg else "exception while evaluating"
    return None


def _outcome(spec: ExpectationSpec, res: Any) -> ExpectationOutcome:
    result = dict(res.result or {})
    rows = [int(i) for i in result.get("partial_unexpected_index_list") or [] if hasattr(i, "__index__")]
    pct = result.get("unexpected_percent")
    return ExpectationOutcome(
        check_name=spec.check_name,
        type=spec.type,
        kwargs=spec.kwargs,
        blocking=spec.blocking,
        description=spec.description,
        success=bool(res.success),
        element_count=None if result.get("element_count") is None else int(result["element_count"]),
        unexpected_count=None if result.get("unexpected_count") is None else int(result["unexpected_count"]),
        unexpected_percent=None if pct is None or not math.isfinite(float(pct)) else float(pct),
        sample_rows=tuple(sorted(set(rows))[:_SAMPLE_ROWS]),
        observed_value=_safe_observed(spec, result.get("observed_value")),
        error=_exception_message(res.exception_info),
    )


def validate_frame(df: Any, suite: SuiteSpec | str) -> ValidationReport:
    """Run ``suite`` (a SuiteSpec, suite name or path) on a polars or pandas frame.

    Row numbers in the report are 0-based positions in ``df``.
    """
    spec = suite if isinstance(suite, SuiteSpec) else load_suite(suite)
    pdf = _to_pandas(df)
    with _LOCK:
        batch_definition = _batch_definition()
        gx = _GX["gx"]
        gx_suite = gx.ExpectationSuite(
            name=spec.name,
            expectations=[
                {
                    "type": e.type,
                    "kwargs": dict(e.kwargs),
                    "meta": {"check_name": e.check_name, "blocking": e.blocking, "description": e.description},
                }
                for e in spec.expectations
            ],
        )
        batch = batch_definition.get_batch(batch_parameters={"dataframe": pdf})
        result = batch.validate(gx_suite, result_format={"result_format": "SUMMARY"})
    matched = _match_results(spec, list(result.results))
    outcomes = tuple(_outcome(e, matched[e.check_name]) for e in spec.expectations)
    return ValidationReport(
        suite=spec.name,
        asset=spec.asset,
        success=all(o.success for o in outcomes),
        outcomes=outcomes,
    )


# --------------------------------------------------------------------------- messages


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(_json_safe(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_outcome(outcome: ExpectationOutcome, source: str) -> str:
    """One human-readable line about one (failed) expectation: no cell values, only counts."""
    kind = "blocking" if outcome.blocking else "warning"
    cols = outcome.columns
    where = (
        f"column {cols[0]!r}" if len(cols) == 1 else f"columns {', '.join(map(repr, cols))}" if cols else "table"
    )
    params = {k: v for k, v in outcome.kwargs.items() if k not in _COLUMN_KEYS}
    rule = outcome.type + (f" {', '.join(f'{k}={_short(v)}' for k, v in params.items())}" if params else "")
    head = f"{source}: check {outcome.check_name} failed ({kind}) on {where} [{rule}]"
    if outcome.error:
        return f"{head}: could not be evaluated: {outcome.error}"
    if outcome.unexpected_count is not None:
        total = "?" if outcome.element_count is None else outcome.element_count
        pct = "" if outcome.unexpected_percent is None else f" ({outcome.unexpected_percent:.2f}%)"
        rows = f"; first rows: {', '.join(map(str, outcome.sample_rows))}" if outcome.sample_rows else ""
        return f"{head}: {outcome.unexpected_count} of {total} rows fail{pct}{rows}"
    if outcome.type == "expect_table_columns_to_match_set" and isinstance(outcome.observed_value, list):
        missing = sorted(set(outcome.kwargs.get("column_set", [])) - set(outcome.observed_value))
        extra = sorted(set(outcome.observed_value) - set(outcome.kwargs.get("column_set", [])))
        parts = [f"missing columns: {', '.join(missing)}"] if missing else []
        if extra and outcome.kwargs.get("exact_match", True):
            parts.append(f"unexpected columns: {', '.join(extra)}")
        return f"{head}: {'; '.join(parts) or 'column set differs'}"
    if outcome.observed_value is not None:
        return f"{head}: observed {_short(outcome.observed_value, 120)}"
    return head


def describe_failures(report: ValidationReport, source: str) -> str:
    """One line per failing expectation, naming ``source`` (file or asset); '' if all pass."""
    return "\n".join(describe_outcome(o, source) for o in report.failures())
