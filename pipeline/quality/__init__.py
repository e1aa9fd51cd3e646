"""Data-quality layer: Great Expectations suites run on polars frames, surfaced as Dagster checks.

The suites live as native GX Core 1.x JSON in the repository's ``expectations/`` folder.
:mod:`pipeline.quality.gx_runner` loads and runs them (GX is imported lazily, on first
validation); :mod:`pipeline.quality.checks` turns each suite into Dagster asset checks.
Reports carry counts and row numbers only — never cell values — so no person identifier
can leak into logs or Dagster metadata.
"""

from pipeline.quality.gx_runner import (
    SUITE_DIR,
    ExpectationOutcome,
    ExpectationSpec,
    SuiteSpec,
    ValidationReport,
    describe_failures,
    describe_outcome,
    list_suites,
    load_suite,
    validate_frame,
)

__all__ = [
    "SUITE_DIR",
    "ExpectationOutcome",
    "ExpectationSpec",
    "SuiteSpec",
    "ValidationReport",
    "describe_failures",
    "describe_outcome",
    "list_suites",
    "load_suite",
    "validate_frame",
]
