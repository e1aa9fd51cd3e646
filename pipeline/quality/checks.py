"""Dagster asset checks from the expectation suites.

Two kinds, both named by the expectation's ``check_name`` and blocking as the expectation's meta says:

* **Checks of a stored asset** (:func:`build_gx_asset_checks`): each suite file in ``expectations/`` becomes
  one ``@multi_asset_check`` named ``gx_<suite>`` with one ``AssetCheckSpec`` per expectation. The check op
  loads the asset through its IO manager and evaluates the suite once with the same engine switch as
  ingestion (:func:`pipeline.quality.engine.validate`).
* **Checks of the ingestion** (:func:`ingest_check_specs`, :func:`ingest_check_results`): every expectation
  of every register suite (``expectations/registers/<register>.json``, check ``<register>__<check_name>``,
  e.g. ``bef__not_null__PNR``, on ``treatments`` for the intervention register ``indsats`` and on ``panel``
  for the others) and of the ``panel`` and ``treatments`` suites is a check of the ``registers``
  multi-asset. Their results come from the validation that ingestion runs anyway
  (:func:`pipeline.registers.ingest.build_checked`), so nothing is validated twice, and they are recorded
  before a refused delivery fails the step: the UI names the register and rule that refused it. A register
  the delivery does not contain yields no result (Dagster shows its checks as skipped).

Every result records the ``engine`` that evaluated it. Blocking expectations report with severity ERROR
(a failure stops downstream assets), the others WARN. Metadata holds counts and row numbers only, never
cell values.
"""

import dataclasses
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from pipeline.quality.engine import validate
from pipeline.quality.gx_runner import (
    SUITE_DIR,
    ExpectationOutcome,
    SuiteSpec,
    ValidationReport,
    describe_outcome,
    list_suites,
    load_suite,
)

REGISTER_SUITE_DIR = SUITE_DIR / "registers"
#: Register whose rows become the ``treatments`` asset (the other registers feed ``panel``).
TREATMENT_REGISTER = "indsats"
#: The suites of the assets the ``registers`` multi-asset produces, validated during ingestion.
INGEST_OUTPUT_SUITES = ("panel", "treatments")


def _check_op_name(suite: SuiteSpec) -> str:
    return "gx_" + re.sub(r"[^A-Za-z0-9_]", "_", suite.name)


def _result_metadata(outcome: ExpectationOutcome) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "engine": outcome.engine,
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
        report = validate(_to_frame(df), suite)
        failed = report.failures()
        where = f"{source} partition {context.partition_key}" if context.has_partition_key else source
        context.log.info(
            f"suite {suite.name} ({where}, engine {'+'.join(report.engines)}): {len(report.outcomes)} expectations, "
            f"{len(failed)} failed ({len(report.blocking_failures())} blocking)"
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
    skip_assets: Iterable[str] = (),
) -> list[dg.AssetChecksDefinition]:
    """One multi-asset check per suite file in ``suite_dir`` (except suites of ``skip_assets``, e.g. the
    assets whose suites are checked during ingestion, see :func:`ingest_check_specs`).

    ``partitions_defs`` maps asset keys (``panel``, ``registers/bef``) of partitioned assets to
    their PartitionsDefinition so their checks run per partition.
    """
    partitions_defs = dict(partitions_defs or {})
    skip = set(skip_assets)
    suites = [s for s in list_suites(suite_dir) if s.asset not in skip]
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


# --------------------------------------------------------------------------- checks of the ingestion


@dataclass(frozen=True)
class IngestSuite:
    """A suite evaluated during ingestion: its checks are ``{prefix}{check_name}`` on ``asset``."""

    suite: SuiteSpec
    asset: str
    prefix: str
    register: str | None  # the register a register suite describes; None for the panel/treatments suites

    def check_name(self, expectation_check_name: str) -> str:
        return f"{self.prefix}{expectation_check_name}"


def ingest_suites(suite_dir: str | os.PathLike = SUITE_DIR) -> dict[str, IngestSuite]:
    """Suite name → :class:`IngestSuite` for every register suite and the panel/treatments suites.

    Raises ValueError if two checks of one asset would get the same name.
    """
    out: dict[str, IngestSuite] = {}
    for path in sorted((Path(suite_dir) / "registers").glob("*.json")):
        register = path.stem
        asset = "treatments" if register == TREATMENT_REGISTER else "panel"
        suite = load_suite(path)
        out[suite.name] = IngestSuite(suite, asset, f"{register}__", register)
    for name in INGEST_OUTPUT_SUITES:
        suite = load_suite(Path(suite_dir) / f"{name}.json")
        out[suite.name] = IngestSuite(suite, suite.asset, "", None)
    seen: dict[tuple[str, str], str] = {}
    for item in out.values():
        for e in item.suite.expectations:
            key = (item.asset, item.check_name(e.check_name))
            if key in seen:
                raise ValueError(f"{item.suite.path}: check {key[1]!r} on {key[0]} clashes with one of {seen[key]}")
            seen[key] = str(item.suite.path)
    return out


def ingest_check_specs(partitions_def: dg.PartitionsDefinition | None = None,
                       suite_dir: str | os.PathLike = SUITE_DIR) -> list[dg.AssetCheckSpec]:
    """One ``AssetCheckSpec`` per expectation evaluated during ingestion (for ``check_specs=`` of the asset)."""
    specs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)  # partitioned check specs are "preview" in 1.13
        for item in ingest_suites(suite_dir).values():
            where = f"register {item.register}: " if item.register else ""
            for e in item.suite.expectations:
                specs.append(dg.AssetCheckSpec(
                    name=item.check_name(e.check_name), asset=item.asset, blocking=e.blocking,
                    description=f"{where}{e.description}", partitions_def=partitions_def,
                    metadata={"gx_suite": item.suite.name, "gx_expectation_type": e.type,
                              **({"register": item.register} if item.register else {})},
                ))
    return specs


def _merge(outcomes: list[ExpectationOutcome]) -> ExpectationOutcome:
    """One outcome for an expectation evaluated more than once in a build: the first failure, else the last."""
    return next((o for o in outcomes if not o.success), outcomes[-1])


def ingest_check_results(reports: Iterable[ValidationReport], suite_dir: str | os.PathLike = SUITE_DIR
                         ) -> Iterator[dg.AssetCheckResult]:
    """An ``AssetCheckResult`` per expectation in ``reports`` (the ingestion's validations), suite order.

    Row numbers in a register's results are positions in the register's files taken together (in manifest
    order); the refusal message of the step names the file and the row within it.
    """
    suites = ingest_suites(suite_dir)
    grouped: dict[str, dict[str, list[ExpectationOutcome]]] = {}
    for report in reports:
        if report.suite not in suites:
            raise ValueError(f"validation report of suite {report.suite!r}, which is not an ingestion suite")
        for o in report.outcomes:
            grouped.setdefault(report.suite, {}).setdefault(o.check_name, []).append(o)
    for suite_name, by_check in grouped.items():
        item = suites[suite_name]
        source = (f"register {item.register} ({item.suite.path.name})" if item.register
                  else f"{item.asset} (built from the delivery)")
        for e in item.suite.expectations:
            if e.check_name not in by_check:
                continue
            outcome = _merge(by_check[e.check_name])
            yield dg.AssetCheckResult(
                asset_key=dg.AssetKey(item.asset),
                check_name=item.check_name(e.check_name),
                passed=outcome.success,
                severity=dg.AssetCheckSeverity.ERROR if outcome.blocking else dg.AssetCheckSeverity.WARN,
                description=None if outcome.success else describe_outcome(dataclasses.replace(outcome, sample_rows=()), source),
                metadata=_result_metadata(outcome),
            )
