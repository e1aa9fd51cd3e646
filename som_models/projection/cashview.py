"""The cash view of a projection: only the amounts that release or cost cash, apart from the full economic view.

SØM values a consequence at the public budget's unit price, but not every saving releases cash: a shelter bed
left empty is freed capacity until the kommune closes beds; a shorter hospital stay frees staff time, not
money (HM Treasury's Green Book distinguishes *cash-releasing* from *non-cash-releasing* benefits). A price line
says which it is with ``prices.<item>.cashable`` and a fixed cost with ``fixed_costs[k].cashable`` (default
``true``: an unmarked line counts in both views, what every document meant before).

The cash view is the projection with the non-cashable lines left out, computed with the vectorised engine
(:func:`.engine.evaluate`) at the point values:

* a non-cashable item's prices are set to 0 for every payer, in the consequence and the course years — its
  refusion transfers follow (a staircase transfer is a share of the kommune price; an expensive-case transfer is
  computed from the kommune gross saving of the group's *cashable* items only, the expense actually reduced);
* tax and tilbageløb stay (they are paid in cash whatever the item's price line says);
* per-participant ``costs`` and ``avoided_costs`` count as cash; non-cashable ``fixed_costs`` lines are left out.

``npv_non_cash = npv_full − npv_cash`` per payer and in total; payback years as in the full view.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from som_models.parameters.schema import PAYERS, ParameterSet
from som_models.projection.engine import Compiled, base_inputs, compile_calculation, evaluate, payback_years

KEYS = (*PAYERS, "total")


@dataclass(frozen=True)
class CashView:
    """NPV per payer and in total in the full economic view and the cash view, and the cash payback years."""

    npv_full: Mapping[str, float]
    npv_cash: Mapping[str, float]
    payback_year: int | None
    payback_by_payer: Mapping[str, int | None]
    #: price items and fixed-cost lines marked ``cashable: false``
    non_cashable: tuple[str, ...]

    @property
    def npv_non_cash(self) -> dict[str, float]:
        return {k: self.npv_full[k] - self.npv_cash[k] for k in KEYS}

    @property
    def differs(self) -> bool:
        """Whether any line is non-cashable (otherwise the two views are the same)."""
        return bool(self.non_cashable)

    def to_dict(self) -> dict[str, Any]:
        return {"npv_full": dict(self.npv_full), "npv_cash": dict(self.npv_cash), "npv_non_cash": self.npv_non_cash,
                "payback_year": self.payback_year, "payback_by_payer": dict(self.payback_by_payer),
                "non_cashable": list(self.non_cashable)}


def cash_compiled(c: Compiled) -> Compiled:
    """``c`` with the non-cashable price items at price 0 and the non-cashable fixed costs left out (of ``fixed`` and
    of ``fixed_lines``, so drawn fixed amounts — :func:`~som_models.projection.engine.evaluate`'s ``fixed_amounts``,
    one per line of ``fixed_lines`` — cannot bring them back)."""
    specs = c.params.price_specs
    prices = c.prices.copy()
    for i, item in enumerate(c.items):
        if item in specs and not specs[item].cashable:
            prices[i, :] = 0.0
    fixed = None
    if c.fixed is not None:
        fixed = np.zeros_like(c.fixed)
        for fx in c.fixed_lines:
            if fx.cashable:
                fixed[fx.payer, fx.t_first:fx.t_last + 1] += fx.amount
    lines = tuple(fx for fx in c.fixed_lines if fx.cashable)
    return replace(c, prices=prices, fixed=fixed if lines else None, fixed_lines=lines)


def _year(c: Compiled, t: int) -> int | None:
    return None if t < 0 else c.first + int(t)


def cash_view(params: ParameterSet, *, compiled: Compiled | None = None) -> CashView:
    """The full and the cash NPV per payer and in total, and the cash payback years (module docstring)."""
    c = compiled or compile_calculation(params)
    cash = cash_compiled(c)
    full_npv = evaluate(c, *base_inputs(c)).npv[0]
    ev = evaluate(cash, *base_inputs(cash))
    yearly = ev.yearly[0]                                            # (P, T)
    npv_cash = {p: float(ev.npv[0, k]) for k, p in enumerate(PAYERS)}
    npv_cash["total"] = float(ev.npv[0].sum())
    npv_full = {p: float(full_npv[k]) for k, p in enumerate(PAYERS)}
    npv_full["total"] = float(full_npv.sum())
    payback = _year(cash, payback_years(cash, yearly.sum(axis=0)[None, :])[0])
    by_payer = {p: _year(cash, payback_years(cash, yearly[k][None, :])[0]) for k, p in enumerate(PAYERS)}
    non_cashable = tuple([item for item in c.items if item in c.params.price_specs
                          and not c.params.price_specs[item].cashable]
                         + [fx.item for fx in c.fixed_lines if not fx.cashable])
    return CashView(npv_full, npv_cash, payback, by_payer, non_cashable)
