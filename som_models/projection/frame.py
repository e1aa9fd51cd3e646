"""The SØM calculation frame: budget consequences per year, payer and item, discounted to NPV.

For a cohort starting in year ``c`` with ``N`` participants, a success rate ``s`` and ``K`` course years:

* costs fall in the course years: year ``c + k − 1`` carries ``N · amount(k, payer)`` (amounts negative);
  one-off and fixed costs (``fixed_costs``) carry their ``amount`` in each of their calendar years, whatever the
  cohorts (rows labelled by ``item``, default ``one_off_cost`` / ``fixed_cost``);
  ``avoided_costs`` are added the same way as savings (positive);
* success is reached in the last course year ``c + K − 1``; consequence year ``j ≥ 1`` falls in
  ``c + K − 1 + j`` and carries, per item ``i`` and payer ``p``::

      amount = −N · s · units_i[j] · price_i[p]      (less use, negative units → savings, positive)

  (SØM: consequences × prices for citizens who achieve success; Socialstyrelsen, vidensdatabasen
  konsekvenser/priser). Prices are first converted to the document's price year (``prices.py``);
* course-year effects (``consequences.<item>.course``, units per *participant* in course years ``k = 1 … K``):
  course year ``k`` falls in ``c + k − 1`` (like the costs) and carries ``−N · course_i[k] · price_i[p]`` — no
  success rate (success is not yet defined during the course), priced, split by committee, refunded and taxed
  like the consequences (the refusion rules with the figures of consequence year 1), in the item's rows;
* refusion (``rules.py``) moves part of the kommune amount of the items it concerns to the state, shown as
  the transfer rows ``refusion:<item>`` (staircase: ``−N·s·sign(u)·price_kommune·S(W_j, |u|)`` to stat) and
  ``refusion:<rule>`` (expensive cases: ``N·s·(R(E_0) − R(E_0 − d_j))`` to stat, ``d_j`` the kommune gross
  saving per successful person of the group's items) — kommune minus, stat plus, total unchanged;
* tax (optional): with ``y = N · s · units_i[j] · taxable_i`` the changed income, ``tax:<item>`` = ``tax_p · y`` for
  each payer with a rate, ``am_bidrag:<item>`` = ``AM · y`` to the state (earned income only) and
  ``tilbageloeb:<item>`` = ``tilbageløb · y`` to the state, with the shares of ``rules.tax_shares``.

Discounting: year ``t`` after ``start_year`` has factor ``Π_{s=1..t} 1 / (1 + r(s))``; ``fm2021`` is the
Danish Finance Ministry schedule since 2021: 3.5 % for years 1–35, 2.5 % for 36–70, 1.5 % after.
NPV = Σ discounted amounts; payback year = first year, at or after the first year with a net cost (discounted
net < 0), in which the cumulative discounted net (all payers, or one payer) is ≥ 0; ROI = NPV / |present value
of the intervention costs| (``costs`` and ``fixed_costs`` lines, not avoided costs). An ``optimism_bias`` is applied
by :func:`.engine.compile_calculation` (the projection computes with its adjusted parameter set). Every payer's
amounts are split by udvalg (committee or sector) in the udvalg ledger (:mod:`som_models.projection.ledger`:
``ledger``; the kommune's part also as ``committees`` / ``npv_by_committee``); what no udvalg is named for is
``unassigned``.

Events outside ``start_year … start_year + horizon_years − 1`` are not counted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from som_models.parameters.schema import PAYERS, ParameterSet
from som_models.projection.committees import UNASSIGNED
from som_models.projection.engine import (
    FM2021,
    KOMMUNE,
    PAYBACK_TOLERANCE,
    compile_calculation,
    describe_discounting,
    discount_factors,
)
from som_models.projection.ledger import Ledger, ledger
from som_models.projection.rules import tax_shares
from som_models.results_base import ResultDisplay, fmt, frame_lines, render_summary

ROW_SCHEMA = {"year": pl.Int64, "payer": pl.Utf8, "item": pl.Utf8, "amount": pl.Float64, "discounted": pl.Float64}
COMMITTEE_SCHEMA = {"year": pl.Int64, "committee": pl.Utf8, "amount": pl.Float64, "discounted": pl.Float64}

__all__ = ["FM2021", "Projection", "discount_factors", "project"]


@dataclass(frozen=True, eq=False, repr=False)
class Projection(ResultDisplay):
    """Rows by year × payer × item (nominal and discounted), NPV per payer and in total, payback, ROI.

    Result protocol (:mod:`som_models.results_base`): ``to_polars()`` is the NPV and payback year per payer
    (``rows`` keeps the year × payer × item detail); ``summary()`` adds the success rate, discounting and ROI.
    """

    intervention: str
    success_rate: float
    rows: pl.DataFrame
    npv: Mapping[str, float]
    payback_year: int | None
    roi: float | None
    cumulative: pl.DataFrame
    payback_by_payer: Mapping[str, int | None] = field(default_factory=dict)
    pv_costs: float = 0.0
    price_year: int | None = None
    committees: pl.DataFrame | None = None
    npv_by_committee: Mapping[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    #: the discount schedule in words (:func:`som_models.projection.engine.describe_discounting`)
    discounting: str = ""
    #: the udvalg ledger: net per (payer, udvalg) and year, NPV, payback, cross-subsidy (:mod:`.ledger`)
    ledger: Ledger | None = None

    def _repr_fields(self) -> dict[str, Any]:
        return {"intervention": self.intervention, "years": self.cumulative.height, "rows": self.rows.height,
                "npv_total": self.npv.get("total"), "payback_year": self.payback_year}

    def to_polars(self) -> pl.DataFrame:
        """``payer`` (kommune, region, stat, total), ``npv`` (discounted kroner) and ``payback_year`` (null = not
        within the horizon)."""
        payers = [*PAYERS, "total"]
        return pl.DataFrame({"payer": payers, "npv": [float(self.npv[p]) for p in payers],
                             "payback_year": [self.payback_by_payer.get(p) if p != "total" else self.payback_year
                                              for p in payers]},
                            schema={"payer": pl.Utf8, "npv": pl.Float64, "payback_year": pl.Int64})

    def summary(self) -> str:
        """Success rate, horizon, discounting, NPV and payback per payer, ROI, committees, warnings."""
        years = self.cumulative.get_column("year").to_list()
        info = [("Intervention", self.intervention), ("Success rate", self.success_rate),
                ("Horizon", f"{min(years)}–{max(years)} ({len(years)} years)" if years else None),
                ("Price year", self.price_year), ("Discount rate", self.discounting or None),
                ("PV of costs", self.pv_costs), ("ROI", "NA" if self.roi is None else f"{self.roi:.3g}"),
                ("Payback year", self.payback_year if self.payback_year is not None else "not within the horizon")]
        body = frame_lines(self.to_polars(), labels={"npv": "NPV (kr)", "payback_year": "payback"})
        footer = []
        if self.ledger is not None and self.ledger.accounts:
            footer.append("NPV by udvalg: " + ", ".join(f"{k} {fmt(v)}" for k, v in self.ledger.npv.items()))
        footer += [f"Warning: {w}" for w in self.warnings]
        return render_summary(f"SØM projection — {self.intervention}", info, body, footer)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "intervention": self.intervention,
            "success_rate": self.success_rate,
            "price_year": self.price_year,
            "npv": dict(self.npv),
            "payback_year": self.payback_year,
            "payback_by_payer": dict(self.payback_by_payer),
            "roi": self.roi,
            "pv_costs": self.pv_costs,
            "rows": self.rows.to_dicts(),
            "cumulative": self.cumulative.to_dicts(),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }
        if self.committees is not None:
            out["committees"] = self.committees.to_dicts()
            out["npv_by_committee"] = dict(self.npv_by_committee)
        if self.ledger is not None:
            out["udvalg"] = self.ledger.to_dict()
        return out


def _payback(years: list[int], discounted: list[float]) -> int | None:
    cum, seen = 0.0, False
    for year, disc in zip(years, discounted, strict=False):
        cum += disc
        seen = seen or disc < 0
        if seen and cum >= -PAYBACK_TOLERANCE:
            return int(year)
    return None


def _add_tax(params: ParameterSet, item: str, t: int, income: float, add) -> None:
    """The rows ``tax:<item>`` (per payer), ``am_bidrag:<item>`` and ``tilbageloeb:<item>`` (state) of a change in
    income ``income`` in year index ``t`` (shares: :func:`som_models.projection.rules.tax_shares`)."""
    assert params.tax is not None
    shares = tax_shares(params.tax, item)
    for payer, share in shares.tax.items():
        add(t, payer, f"tax:{item}", share * income)
    add(t, "stat", f"am_bidrag:{item}", shares.am * income)
    add(t, "stat", f"tilbageloeb:{item}", shares.tilbageloeb * income)


def _price_course(c, params: ParameterSet, i: int, course: tuple[float, ...], base: int, n: int, add) -> None:
    """Add the course-year amounts of consequence item ``i`` (units per participant ``course[k − 1]`` in year
    ``base + k − 1``) for ``n`` participants: the item's savings by payer, its refusion transfers (the rules'
    figures of consequence year 1) and its tax — the consequence-year formulas with ``N`` in place of ``N · s``."""
    item = c.items[i]
    for k, v in enumerate(course, start=1):
        t = base + k - 1
        for p, payer in enumerate(PAYERS):
            if payer in params.prices.get(item, {}):
                add(t, payer, item, -n * v * c.prices[i, p])
        for st in c.staircase:
            if i in st.items:
                x = -np.sign(v) * c.prices[i, KOMMUNE] * float(st.rule.weeks_share(st.weeks_before[0], abs(v)))
                add(t, "kommune", f"refusion:{item}", -n * x)
                add(t, "stat", f"refusion:{item}", n * x)
        if params.tax is not None and item in params.tax.taxable:
            _add_tax(params, item, t, n * v * params.tax.taxable[item], add)


def _course_expensive(c, params: ParameterSet, base: int, n: int, add) -> None:
    """The expensive-case refusion of the course years: per group and course year ``k``, the kommune gross saving
    per participant ``d_k = Σ_i −course_i[k] · price_i[kommune]`` of its items, valued at consequence year 1's
    ``case_expense``."""
    for ex in c.expensive:
        courses = {c.items[i]: params.consequences[i].course for i in ex.items
                   if params.consequences[i].course is not None}
        for k in range(1, params.course_years + 1):
            contrib = {item: -course.units[k - 1] * c.prices[c.items.index(item), KOMMUNE]
                       for item, course in courses.items() if course is not None}
            d = sum(contrib.values())
            if not d:
                continue
            e0 = ex.case_expense[0]
            dr = float(ex.rule.refusion(e0, ex.thresholds) - ex.rule.refusion(e0 - d, ex.thresholds))
            add(base + k - 1, "kommune", ex.label, -n * dr)
            add(base + k - 1, "stat", ex.label, n * dr)


def project(params: ParameterSet, *, success_rate: float | None = None) -> Projection:
    """Project the budget consequences of ``params`` (optionally with another success rate)."""
    c = compile_calculation(params)
    params = c.params  # with an optimism-bias adjustment applied (som_models.projection.optimism)
    s = params.success_rate.value if success_rate is None else float(success_rate)
    first, T, K = params.start_year, params.horizon_years, params.course_years
    factors = c.factors
    acc: dict[tuple[int, str, str], float] = defaultdict(float)
    pv_costs = 0.0

    def add(t: int, payer: str, item: str, amount: float) -> None:
        if not 0 <= t < T or amount == 0:
            return
        acc[(first + t, payer, item)] += amount

    for fx in c.fixed_lines:  # one-off and fixed costs: per calendar year, not per participant
        for t in range(fx.t_first, fx.t_last + 1):
            add(t, PAYERS[fx.payer], fx.item, fx.amount)
            if 0 <= t < T:
                pv_costs += fx.amount * factors[t]
    for cohort_year, n in params.cohorts:
        base = cohort_year - first
        for line in c.costs:
            t = base + line.course_year - 1
            add(t, PAYERS[line.payer], line.item, n * line.amount)
            if not line.avoided and 0 <= t < T:
                pv_costs += n * line.amount * factors[t]
        t_success = base + K - 1
        # course years: per participant (N · v, no success rate) in year c + k − 1
        for i, cons in enumerate(params.consequences):
            if cons.course is not None:
                _price_course(c, params, i, cons.course.units, base, n, add)
        _course_expensive(c, params, base, n, add)
        for i, cons in enumerate(params.consequences):
            for j, u in enumerate(cons.units, start=1):
                for p, payer in enumerate(PAYERS):
                    if payer in params.prices.get(cons.item, {}):
                        add(t_success + j, payer, cons.item, -n * s * u * c.prices[i, p])
        for st in c.staircase:
            for i in st.items:
                item = c.items[i]
                for j, u in enumerate(params.consequences[i].units, start=1):
                    x = -np.sign(u) * c.prices[i, KOMMUNE] * float(st.rule.weeks_share(st.weeks_before[j - 1], abs(u)))
                    add(t_success + j, "kommune", f"refusion:{item}", -n * s * x)
                    add(t_success + j, "stat", f"refusion:{item}", n * s * x)
        for ex in c.expensive:
            for j in range(1, max(c.lengths[i] for i in ex.items) + 1):
                d = sum(-params.consequences[i].units[j - 1] * c.prices[i, KOMMUNE]
                        for i in ex.items if j <= c.lengths[i])
                e0 = ex.case_expense[j - 1]
                dr = float(ex.rule.refusion(e0, ex.thresholds) - ex.rule.refusion(e0 - d, ex.thresholds))
                add(t_success + j, "kommune", ex.label, -n * s * dr)
                add(t_success + j, "stat", ex.label, n * s * dr)
        if params.tax is not None:
            for item, kr in params.tax.taxable.items():
                for j, u in enumerate(params.consequence(item).units, start=1):
                    _add_tax(params, item, t_success + j, n * s * u * kr, add)

    rows = [{"year": y, "payer": p, "item": i, "amount": a, "discounted": a * factors[y - first]}
            for (y, p, i), a in sorted(acc.items())]
    table = pl.DataFrame(rows, schema=ROW_SCHEMA)
    npv = {p: float(table.filter(pl.col("payer") == p)["discounted"].sum()) for p in PAYERS}
    npv["total"] = float(sum(npv[p] for p in PAYERS))
    years = list(range(first, first + T))
    by_year = (
        pl.DataFrame({"year": years}, schema={"year": pl.Int64})
        .join(table.group_by("year").agg(pl.col("amount").sum(), pl.col("discounted").sum()), on="year", how="left")
        .with_columns(pl.col("amount", "discounted").fill_null(0.0))
        .sort("year")
        .with_columns(pl.col("amount").cum_sum().alias("cumulative"),
                      pl.col("discounted").cum_sum().alias("cumulative_discounted"))
    )
    payback = _payback(years, by_year["discounted"].to_list())
    payback_by_payer: dict[str, int | None] = {}
    for payer in PAYERS:
        per_year = dict(table.filter(pl.col("payer") == payer).group_by("year").agg(pl.col("discounted").sum()).iter_rows())
        payback_by_payer[payer] = _payback(years, [per_year.get(y, 0.0) for y in years])
    book = ledger(compiled=c, success_rate=s)
    committees, npv_by_committee = _kommune_committees(book)
    roi = npv["total"] / abs(pv_costs) if pv_costs else None
    return Projection(params.intervention, s, table, npv, payback, roi, by_year, payback_by_payer, float(pv_costs),
                      params.price_year, committees, npv_by_committee, c.notes, c.warnings,
                      describe_discounting(params.discounting), book)


def _kommune_committees(book: Ledger) -> tuple[pl.DataFrame | None, dict[str, float]]:
    """The kommune's part of the ledger as the ``committees`` table (year, committee, amount, discounted) and
    ``npv_by_committee`` — None / empty when no kommune udvalg is named (everything municipal unassigned)."""
    mine = [n for n, (p, u) in enumerate(book.accounts) if p == "kommune"]
    if not any(book.accounts[n][1] != UNASSIGNED for n in mine):
        return None, {}
    rows = [{"year": y, "committee": book.accounts[n][1], "amount": float(book.amounts[n, t]),
             "discounted": float(book.discounted[n, t])}
            for t, y in enumerate(book.years) for n in sorted(mine, key=lambda n: book.accounts[n][1])
            if book.amounts[n, t] != 0]
    return (pl.DataFrame(rows, schema=COMMITTEE_SCHEMA),
            {book.accounts[n][1]: float(book.discounted[n].sum()) for n in sorted(mine, key=lambda n: book.accounts[n][1])})
