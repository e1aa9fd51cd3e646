"""The one path from a register panel to a published consequence-profile document (``som kb consequences`` and
the Dagster asset ``consequence_profiles`` both call :func:`build_profiles`).

Reads the panel (CSV or Parquet, :func:`pipeline.registers.handover.read_frame`), estimates with
:func:`som_models.knowledge.consequences.estimate_profiles` (every year with at least 2 persons per group, so that
a withheld year is shown as withheld rather than silently missing), suppresses every row resting on fewer than ``min_cell``
persons in either group (:func:`pipeline.disclosure.suppress_frame`: the estimate, its SE, interval, p-value, flag
and both counts are withheld), builds the document (:func:`som_models.knowledge.consequences.profile_document`)
with provenance (panel file name and SHA-256, persons and years as published counts, settings, code version) and
writes it atomically as YAML. Person ids never leave the estimation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from pipeline.atomic import write_text_atomic
from pipeline.disclosure import check_min_cell, suppress_frame, suppress_scalar
from pipeline.registers.handover import read_frame
from pipeline.version import code_version
from som_models.hashing import file_sha256
from som_models.knowledge.consequences import RULES, estimate_profiles, profile_document

COUNT_COLUMNS = ("n_treated", "n_control")
VALUE_COLUMNS = ("estimate", "se", "ci_low", "ci_high", "p_value", "significant_5pct")


@dataclass(frozen=True)
class ProfileRequest:
    """What to estimate: the panel, the target group's success measure, the outcomes and the adjustment."""

    panel: Path
    target_group: str
    outcomes: tuple[str, ...]
    success_outcome: str
    rule: str
    reference: int | str
    years: int = 10
    covariates: tuple[str, ...] = ()
    factors: tuple[str, ...] = ()
    baseline: bool = False
    id_col: str = "person_id"
    time_col: str = "year"
    min_cell: int = 5
    zero_insignificant: bool = False


def build_profiles(req: ProfileRequest) -> tuple[dict[str, Any], pl.DataFrame]:
    """The profile document and the suppressed estimate table (``ValueError`` / ``DeliveryError`` on bad input)."""
    min_cell = check_min_cell(req.min_cell)
    if req.rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)} (got {req.rule!r})")
    panel = read_frame(req.panel, "panel", (req.id_col,))
    for col, role in ((req.id_col, "person id"), (req.time_col, "year")):
        if col not in panel.columns:
            raise ValueError(f"panel {req.panel.name}: column {col!r} ({role}) not found; has {', '.join(panel.columns)}")
    try:
        est = estimate_profiles(panel, outcomes=req.outcomes, success_outcome=req.success_outcome, rule=req.rule,
                                reference=req.reference, years=req.years, covariates=req.covariates,
                                factors=req.factors, baseline=req.baseline, min_group_size=2,
                                id_col=req.id_col, time_col=req.time_col)
    except ValueError as exc:
        raise ValueError(f"panel {req.panel.name}: {exc}") from None
    table = suppress_frame(est.table, count_columns=COUNT_COLUMNS, value_columns=VALUE_COLUMNS, min_cell=min_cell)
    persons = panel.get_column(req.id_col).n_unique()
    years = panel.get_column(req.time_col)
    provenance = {
        "panel": req.panel.name, "panel_sha256": file_sha256(req.panel),
        "persons_in_panel": suppress_scalar(int(persons), int(persons), min_cell),
        "years_in_panel": f"{years.min()}–{years.max()}",
        "delimitation": (f"column {req.reference}" if isinstance(req.reference, str) else f"year {req.reference}"),
        "success": f"{req.success_outcome} {req.rule} in the year after delimitation",
        "covariates": list(req.covariates), "factors": list(req.factors), "baseline_outcome": req.baseline,
        "standard_errors": est.robust, "method": "som_models.knowledge.consequences (SØM success vs non-success)",
        "code_version": code_version(), "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    doc = profile_document(table, outcomes=req.outcomes, target_group=req.target_group,
                           success_measure={"outcome": req.success_outcome, "rule": req.rule},
                           min_cell=min_cell, zero_insignificant=req.zero_insignificant, provenance=provenance)
    return doc, table


def write_profiles(doc: dict[str, Any], out: Path) -> Path:
    """The document as YAML at ``out``, written atomically (a reader never sees half a file)."""
    text = ("# SØM-style consequence profiles (descriptive, not causal) written by `som kb consequences`.\n"
            "# `consequences` drops into a calculation document; `estimates` keeps every year with its 5 % flag;\n"
            "# rows resting on fewer than min_cell persons are withheld (null).\n"
            + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110))
    return write_text_atomic(out, text)


def parse_list(text: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in (text or "").split(",") if x.strip())
