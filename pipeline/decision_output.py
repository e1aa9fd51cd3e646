"""`som project`: printing the decision aids (:mod:`som_models.projection.decision`) — scenarios side by side, the
discount-rate sensitivity, the cash view and the optimism-bias adjustment."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

KEYS = ("kommune", "region", "stat", "total")


def _kr(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}"


def print_decision_aids(console: Console, aids: Any) -> None:
    """Print the tables of a :class:`som_models.projection.decision.DecisionAids`."""
    if aids.optimism_bias is not None:
        ob = aids.optimism_bias
        console.print(Text.assemble(("Optimism bias applied: ", "bold"),
                                    f"costs +{100 * ob['costs']:g} %, effects −{100 * ob['effects']:g} % "
                                    f"(source: {ob['source']}); NPV without it: "
                                    + ", ".join(f"{k} {_kr(ob['npv_unadjusted'][k])}" for k in KEYS)),
                      soft_wrap=True, highlight=False)
    if aids.scenarios is not None:
        cols = aids.scenarios.columns
        t = Table(title="Scenarios side by side (NPV, payback, break-even)")
        t.add_column("")
        for col in cols:
            t.add_column(col.name, justify="right")
        for k in KEYS:
            t.add_row(f"NPV {k}", *(_kr(col.npv[k]) for col in cols))
        for k in KEYS:
            t.add_row(f"payback {k}", *(col.describe_payback(k) for col in cols))
        t.add_row("success rate", *(f"{col.success_rate:.3g}" for col in cols))
        for k in KEYS:
            t.add_row(f"break-even s* {k}", *(col.break_even.success_rate[k].describe() for col in cols))
        for k in KEYS:
            t.add_row(f"break-even cost/participant {k}",
                      *(col.break_even.cost_per_participant[k].describe() for col in cols))
        console.print(t)
        for col in cols[1:]:
            if col.description:
                console.print(Text(f"scenario {col.name}: {col.description}", style="dim"), soft_wrap=True,
                              highlight=False)
    t = Table(title="Discount rate sensitivity (NPV, kr)")
    t.add_column("schedule")
    t.add_column("rates")
    for k in KEYS:
        t.add_column(k, justify="right")
    t.add_column("payback", justify="right")
    for r in aids.discount.rows:
        t.add_row(r.label, r.description, *(_kr(r.npv[k]) for k in KEYS), str(r.payback_year or "none"))
    console.print(t)
    cash = aids.cash
    if not cash.differs:
        console.print(Text("Cash view: every line is cashable (prices.<item>.cashable, fixed_costs[k].cashable "
                           "default true), so it equals the full view.", style="dim"), soft_wrap=True, highlight=False)
        return
    t = Table(title="Full economic view vs cash view (NPV, kr)")
    t.add_column("view")
    for k in KEYS:
        t.add_column(k, justify="right")
    t.add_row("full (all savings)", *(_kr(cash.npv_full[k]) for k in KEYS))
    t.add_row("cash (cashable only)", *(_kr(cash.npv_cash[k]) for k in KEYS))
    t.add_row("non-cash", *(_kr(cash.npv_non_cash[k]) for k in KEYS))
    console.print(t)
    console.print(Text(f"Not cashable: {', '.join(cash.non_cashable)}; cash payback year "
                       f"{cash.payback_year or 'none within the horizon'}.", style="dim"), soft_wrap=True,
                  highlight=False)
