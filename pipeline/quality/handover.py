"""Which expectations hold a handed-over panel to account (see :mod:`pipeline.registers.handover`).

The ``panel`` and ``treatments`` suites describe the canonical panel built from Statistics Denmark's
registers: its covariates (sex, birth year, municipality, …), the DREAM benefit weeks, the intervention
register's code, end year and arm. A panel handed over as a file (a trial's data, a municipality's own
follow-up) carries only its own columns. For such a delivery:

* the required-columns expectation (``expect_table_columns_to_match_set``) asks for what every panel must
  have — ``person_id`` and ``year`` (panel), ``person_id`` and ``start_year`` (treatments); the outcomes the
  evaluation needs are checked when the panel is handed over;
* an expectation on a column the panel does not have is *not applicable*: it is reported as passed with
  that reason, never silently dropped;
* every other expectation (row count, no missing ids, pseudonym form, unique person-years, value ranges of
  columns it does have) applies unchanged.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from pipeline.quality.gx_runner import ExpectationOutcome, SuiteSpec, ValidationReport

#: the columns every handed-over frame must carry, per asset
REQUIRED = {"panel": ("person_id", "year"), "treatments": ("person_id", "start_year")}
_COLUMN_KEYS = ("column", "column_A", "column_B", "column_list")


def _columns(kwargs: dict) -> list[str]:
    cols: list[str] = []
    for key in _COLUMN_KEYS:
        value = kwargs.get(key)
        if isinstance(value, str):
            cols.append(value)
        elif isinstance(value, (list, tuple)):
            cols.extend(str(v) for v in value)
    return cols


def handover_suite(suite: SuiteSpec, columns: Collection[str]) -> tuple[SuiteSpec, dict[str, str]]:
    """The suite a handed-over frame with ``columns`` is validated with, and ``{check_name: reason}`` of the
    expectations that do not apply to it (reported as passed, with the reason)."""
    present = set(columns)
    kept, not_applicable = [], {}
    for e in suite.expectations:
        if e.type == "expect_table_columns_to_match_set":
            required = [c for c in e.kwargs.get("column_set", []) if c in REQUIRED.get(suite.asset, ())]
            kept.append(replace(e, kwargs={**e.kwargs, "column_set": required, "exact_match": False}))
            continue
        absent = [c for c in _columns(e.kwargs) if c not in present]
        if absent:
            not_applicable[e.check_name] = (f"not applicable: the handed-over panel has no column "
                                            f"{', '.join(repr(c) for c in absent)}")
            continue
        kept.append(e)
    return replace(suite, expectations=tuple(kept)), not_applicable


def absent_register_suite(suite: SuiteSpec, columns: Collection[str], absent: dict[str, str]
                          ) -> tuple[SuiteSpec, dict[str, str]]:
    """The suite for a panel built from registers when some registers were neither delivered nor listed in the
    manifest: ``absent`` maps each outcome column such a register would have produced to the register's name.
    Those columns are not required, and expectations on them are *not applicable* (reported as passed with the
    reason); everything else — including a column of a register that *was* delivered — applies unchanged."""
    present = set(columns)
    missing = {c: r for c, r in absent.items() if c not in present}
    if not missing:
        return suite, {}
    kept, not_applicable = [], {}
    for e in suite.expectations:
        if e.type == "expect_table_columns_to_match_set":
            required = [c for c in e.kwargs.get("column_set", []) if c not in missing]
            kept.append(replace(e, kwargs={**e.kwargs, "column_set": required}))
            continue
        gone = [c for c in _columns(e.kwargs) if c in missing]
        if gone:
            regs = sorted({missing[c] for c in gone})
            not_applicable[e.check_name] = (f"not applicable: register {', '.join(regs)} neither delivered nor listed in "
                                            f"the manifest, so the panel has no column {', '.join(map(repr, gone))}")
            continue
        kept.append(e)
    return replace(suite, expectations=tuple(kept)), not_applicable


def not_applicable_report(suite: SuiteSpec, reasons: dict[str, str]) -> ValidationReport:
    """The expectations of ``suite`` named in ``reasons`` as passed outcomes, each saying why it does not apply
    (``engine`` ``not applicable``; the reason is the observed value shown with the check)."""
    outcomes = tuple(
        ExpectationOutcome(check_name=e.check_name, type=e.type, kwargs=dict(e.kwargs), blocking=e.blocking,
                           description=e.description, success=True, element_count=None, unexpected_count=None,
                           unexpected_percent=None, sample_rows=(), observed_value=reasons[e.check_name],
                           engine="not applicable")
        for e in suite.expectations if e.check_name in reasons)
    return ValidationReport(suite=suite.name, asset=suite.asset, success=True, outcomes=outcomes)
