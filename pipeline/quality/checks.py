"""Dagster asset checks generated from the Great Expectations suites.

Each suite file becomes one ``@multi_asset_check`` named ``gx_<suite>`` with one
``AssetCheckSpec`` per expectation (check name = the expectation's ``check_name``;
``blocking`` from the expectation's meta). The check op loads the asset through its IO manager,
runs the suite once and reports every expectation: blocking ones with severity ERROR (so a
failure stops downstream assets), the others with WARN. Metadata holds counts and row
numbers only, never cell values.
"""

import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import dagster as dg

from pipeline.quality.gx_runner import (
    SUITE_DIR,
    ExpectationOutcome,
    SuiteSpec,
    describe_outcome,
    list_suites,
    validate_frame,
)


def _check_op_name(suite: SuiteSpec) -> str:
    return "gx_" + re.sub(r"[^A-Za-z0-9_]", "_", suite.name)


def _result_metadata(outcome: ExpectationOutcome) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "expectation_type": outcome.type,
        "blocking": outcome.blocking,
        "sample_rows": dg.MetadataValue.json(list(outcome.sample_rows)),
    }
    for key in ("element_count", "unexpected_count", "unexpected_percent"):
        value = getattr(outcome, key)
        if value is not None:
            meta[key] = value
    if outcome.observed_value is not None:
        observed = outcome.observed_value
        meta["observed_value"] = dg.MetadataValue.json(observed) if isinstance(observed, (list, dict)) else observed
    if outcome.error:
        meta["error"] = outcome.error
    return meta


def _to_frame(value: Any) -> Any:
    """The loaded asset value; a multi-partition load (dict of frames) is stacked in key order."""
    if isinstance(value, dict):
        import polars as pl

        return pl.concat([value[k] for k in sorted(value)], how="diagonal_relaxed")
    return value


def build_suite_check(
    suite: SuiteSpec, partitions_def: dg.PartitionsDefinition | None = None
) -> dg.AssetChecksDefinition:
    """One multi-asset check running ``suite`` against its Dagster asset.

    For a partitioned asset pass its ``partitions_def``: the check then runs per partition on
    that partition's frame (otherwise Dagster would load every partition into one check).
    """
    asset_key = dg.AssetKey.from_user_string(suite.asset)
    source = f"{suite.path.name if suite.path else suite.name} on asset {suite.asset}"
    with warnings.catch_warnings():
        # Partitioned check specs are "preview" in Dagster 1.13; we rely on them deliberately.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        specs = [
            dg.AssetCheckSpec(
                name=e.check_name,
                asset=asset_key,
                blocking=e.blocking,
                description=e.description,
                metadata={"gx_expectation_type": e.type, "gx_suite": suite.name},
                partitions_def=partitions_def,
            )
            for e in suite.expectations
        ]

    @dg.multi_asset_check(
        name=_check_op_name(suite),
        specs=specs,
        ins={"df": dg.AssetIn(key=asset_key)},
        description=f"Great Expectations suite {suite.name!r}: {suite.description}".strip(),
        compute_kind="great_expectations",
    )
    def _gx_check(context: dg.AssetCheckExecutionContext, df: Any) -> Iterator[dg.AssetCheckResult]:
        report = validate_frame(_to_frame(df), suite)
        failed = report.failures()
        where = f"{source} partition {context.partition_key}" if context.has_partition_key else source
        context.log.info(
            f"GX suite {suite.name} ({where}): {len(report.outcomes)} expectations, {len(failed)} failed "
            f"({len(report.blocking_failures())} blocking)"
        )
        for outcome in report.outcomes:
            yield dg.AssetCheckResult(
                asset_key=asset_key,
                check_name=outcome.check_name,
                passed=outcome.success,
                severity=dg.AssetCheckSeverity.ERROR if outcome.blocking else dg.AssetCheckSeverity.WARN,
                description=None if outcome.success else describe_outcome(outcome, where),
                metadata=_result_metadata(outcome),
            )

    return _gx_check


def build_gx_asset_checks(
    suite_dir: str | os.PathLike = SUITE_DIR,
    partitions_defs: Mapping[str, dg.PartitionsDefinition] | None = None,
) -> list[dg.AssetChecksDefinition]:
    """One multi-asset check per suite file in ``suite_dir``.

    ``partitions_defs`` maps asset keys (``panel``, ``registers/bef``) of partitioned assets to
    their PartitionsDefinition so their checks run per partition.
    """
    partitions_defs = dict(partitions_defs or {})
    suites = list_suites(suite_dir)
    seen: dict[str, SuiteSpec] = {}
    for suite in suites:
        op_name = _check_op_name(suite)
        if op_name in seen:
            raise ValueError(
                f"{suite.path}: suite name {suite.name!r} clashes with {seen[op_name].path} "
                f"(both would be Dagster check {op_name!r})"
            )
        seen[op_name] = suite
    return [build_suite_check(s, partitions_defs.get(s.asset)) for s in suites]


def validate_suite_assets(
    known_asset_keys: Iterable[str | dg.AssetKey], suite_dir: str | os.PathLike = SUITE_DIR
) -> None:
    """Raise ValueError if a suite's ``meta.dagster_asset`` is not one of ``known_asset_keys``
    (strings like ``panel`` or ``registers/bef``, or AssetKeys)."""
    known = {k.to_user_string() if isinstance(k, dg.AssetKey) else str(k) for k in known_asset_keys}
    problems = [
        f"{s.path or s.name}: unknown Dagster asset {s.asset!r}"
        for s in list_suites(suite_dir)
        if dg.AssetKey.from_user_string(s.asset).to_user_string() not in known
    ]
    if problems:
        raise ValueError(
            "expectation suites refer to assets that are not defined: " + "; ".join(problems)
            + f" (known: {', '.join(sorted(known)) or 'none'})"
        )
