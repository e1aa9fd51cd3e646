"""The SØM calculation frame: budget consequences per year, payer and item, discounted to NPV.

For a cohort starting in year ``c`` with ``N`` participants, a success rate ``s`` and ``K`` course years:

* costs fall in the course years: year ``c + k − 1`` carries ``N · amount(k, payer)`` (amounts negative);
* success is reached in the last course year ``c + K − 1``; consequence year ``j ≥ 1`` falls in
  ``c + K − 1 + j`` and carries, per item ``i`` and payer ``p``::

      amount = −N · s · units_i[j] · price_i[p]      (less use, negative units → savings, positive)

  (SØM: consequences × prices for citizens who achieve success; Socialstyrelsen, vidensdatabasen
  konsekvenser/priser). ``avoided_costs`` are added like costs with the opposite meaning (positive).

Discounting: year ``t`` after ``start_year`` has factor ``Π_{s=1..t} 1 / (1 + r(s))``; ``fm2021`` is the
Danish Finance Ministry schedule since 2021: 3.5 % for years 1–35, 2.5 % for 36–70, 1.5 % after.
NPV = Σ discounted amounts; payback year = first year the cumulative discounted net (all payers) is ≥ 0
after some cost has occurred; ROI = NPV / |present value of costs|.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import polars as pl

from som_models.parameters.schema import PAYERS, ParameterSet

FM2021 = ((1, 0.035), (36, 0.025), (71, 0.015))

ROW_SCHEMA = {"year": pl.Int64, "payer": pl.Utf8, "item": pl.Utf8, "amount": pl.Float64, "discounted": pl.Float64}


@dataclass(frozen=True, eq=False)
class Projection:
    """Rows by year × payer × item (nominal and discounted), NPV per payer and in total, payback, ROI."""

    intervention: str
    success_rate: float
    rows: pl.DataFrame
    npv: Mapping[str, float]
    payback_year: int | None
    roi: float | None
    cumulative: pl.DataFrame

    def to_dict(self) -> dict[str, Any]:
        return {
            "intervention": self.intervention,
            "success_rate": self.success_rate,
            "npv": dict(self.npv),
            "payback_year": self.payback_year,
            "roi": self.roi,
            "rows": self.rows.to_dicts(),
        }


def discount_factors(schedule: Any, years: int) -> np.ndarray:
    """Factors for t = 0 … years−1 (t = 0 is the start year, factor 1)."""
    if schedule in (None, "fm2021"):
        steps = FM2021
    elif schedule == "none":
        steps = ((1, 0.0),)
    else:
        steps = tuple(schedule)
    rates = np.zeros(years)
    for t in range(1, years):
        rates[t] = [r for start, r in steps if start <= t][-1]
    return np.cumprod(1.0 / (1.0 + rates))


def project(params: ParameterSet, *, success_rate: float | None = None) -> Projection:
    """Project the budget consequences of ``params`` (optionally with another success rate)."""
    s = params.success_rate.value if success_rate is None else float(success_rate)
    first, n_years = params.start_year, params.horizon_years
    factors = discount_factors(params.discounting, n_years)
    acc: dict[tuple[int, str, str], float] = {}

    def add(year: int, payer: str, item: str, amount: float) -> None:
        if first <= year < first + n_years and amount != 0:
            acc[(year, payer, item)] = acc.get((year, payer, item), 0.0) + amount

    for cohort_year, participants in params.cohorts:
        for line in params.costs:
            add(cohort_year + line.course_year - 1, line.payer, "intervention_cost", participants * line.amount)
        for line in params.avoided_costs:
            add(cohort_year + line.course_year - 1, line.payer, "avoided_cost", participants * abs(line.amount))
        success_year = cohort_year + params.course_years - 1
        for cons in params.consequences:
            for j, units in enumerate(cons.units, start=1):
                for payer, price in params.prices[cons.item].items():
                    add(success_year + j, payer, cons.item, -participants * s * units * price)

    rows = [
        {"year": y, "payer": p, "item": i, "amount": a, "discounted": a * factors[y - first]}
        for (y, p, i), a in sorted(acc.items())
    ]
    table = pl.DataFrame(rows, schema=ROW_SCHEMA)
    npv = {p: float(table.filter(pl.col("payer") == p)["discounted"].sum()) for p in PAYERS}
    npv["total"] = float(sum(npv[p] for p in PAYERS))
    by_year = (
        pl.DataFrame({"year": list(range(first, first + n_years))})
        .join(table.group_by("year").agg(pl.col("amount").sum(), pl.col("discounted").sum()), on="year", how="left")
        .fill_null(0.0)
        .sort("year")
        .with_columns(pl.col("amount").cum_sum().alias("cumulative"), pl.col("discounted").cum_sum().alias("cumulative_discounted"))
    )
    payback = None
    seen_cost = False
    for year, disc, cum in by_year.select("year", "discounted", "cumulative_discounted").iter_rows():
        seen_cost = seen_cost or disc < 0
        if seen_cost and cum >= 0:
            payback = int(year)
            break
    pv_costs = float(table.filter(pl.col("item") == "intervention_cost")["discounted"].sum())
    roi = npv["total"] / abs(pv_costs) if pv_costs else None
    return Projection(params.intervention, s, table, npv, payback, roi, by_year)
