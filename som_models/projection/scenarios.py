"""Named scenarios side by side: NPV, payback and break-even per payer for the base and each scenario.

The scenarios are stated in the calculation document (``scenarios.<name>``: ``set`` / ``scale`` overrides,
:mod:`som_models.parameters.scenarios`) and validated with it; each is a complete parameter set, projected like
the base with :func:`som_models.projection.project` (NPV and payback per payer and in total) and
:func:`som_models.projection.break_even` (break-even success rate and cost per participant). Nothing else
differs between the columns: a scenario that overrides nothing would repeat the base (and is refused).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from som_models.parameters.schema import PAYERS, ParameterSet
from som_models.projection.breakeven import BreakEvenResult, break_even
from som_models.projection.frame import project

KEYS = (*PAYERS, "total")
BASE = "base"


@dataclass(frozen=True)
class ScenarioResult:
    """One column of the table: NPV and payback year per payer and in total, and the break-even values."""

    name: str
    description: str
    success_rate: float
    npv: Mapping[str, float]
    payback: Mapping[str, int | None]
    break_even: BreakEvenResult
    #: whether the payer (or the total) has a year with a net cost; without one there is no payback to reach
    bears_cost: Mapping[str, bool] = field(default_factory=dict)

    def describe_payback(self, key: str) -> str:
        """The payback year, ``never`` (a net cost not recovered within the horizon) or ``no net cost``."""
        year = self.payback[key]
        if year is not None:
            return str(year)
        return "never" if self.bears_cost.get(key, True) else "no net cost"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "success_rate": self.success_rate,
                "npv": dict(self.npv), "payback": dict(self.payback), "bears_cost": dict(self.bears_cost),
                "break_even": self.break_even.to_dict()}


@dataclass(frozen=True)
class ScenarioTable:
    """The base (first) and each named scenario, in document order."""

    columns: tuple[ScenarioResult, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(col.name for col in self.columns)

    def to_dict(self) -> list[dict[str, Any]]:
        return [col.to_dict() for col in self.columns]

    def to_polars(self) -> pl.DataFrame:
        """One row per ``measure`` × ``payer`` (``npv``, ``payback_year``, ``break_even_success_rate``,
        ``break_even_cost_per_participant``; null where there is none), one column per scenario."""
        rows = []
        for measure in ("npv", "payback_year", "break_even_success_rate", "break_even_cost_per_participant"):
            for k in KEYS:
                row: dict[str, Any] = {"measure": measure, "payer": k}
                for col in self.columns:
                    row[col.name] = _value(col, measure, k)
                rows.append(row)
        return pl.DataFrame(rows, schema={"measure": pl.Utf8, "payer": pl.Utf8,
                                          **{n: pl.Float64 for n in self.names}})


def _value(col: ScenarioResult, measure: str, key: str) -> float | None:
    if measure == "npv":
        return col.npv[key]
    if measure == "payback_year":
        y = col.payback[key]
        return None if y is None else float(y)
    be = (col.break_even.success_rate if measure == "break_even_success_rate"
          else col.break_even.cost_per_participant)[key]
    return be.value


def _column(name: str, description: str, params: ParameterSet) -> ScenarioResult:
    proj = project(params)
    payback: dict[str, int | None] = {p: proj.payback_by_payer.get(p) for p in PAYERS}
    payback["total"] = proj.payback_year
    by_year = proj.rows.group_by("year", "payer").agg(pl.col("discounted").sum())
    bears = {p: bool((by_year.filter(pl.col("payer") == p)["discounted"] < 0).any()) for p in PAYERS}
    bears["total"] = bool((proj.cumulative["discounted"] < 0).any())
    return ScenarioResult(name, description, proj.success_rate, dict(proj.npv), payback, break_even(params), bears)


def scenario_table(params: ParameterSet) -> ScenarioTable:
    """The base document and each of its ``scenarios``, projected side by side (empty scenarios: base only)."""
    cols = [_column(BASE, "the document as stated", params)]
    cols += [_column(s.name, s.description, s.params) for s in params.scenarios]
    return ScenarioTable(tuple(cols))
