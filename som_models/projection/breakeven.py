"""Break-even values per payer: the success rate, and the cost per participant, at which the NPV is zero.

Both are exact because the NPV of a calculation document is linear in each of them (:mod:`.engine`: the
consequence-year amounts are ``s · V @ E``, the cost amounts ``C @ F``; everything else is fixed).

**Success rate.** For payer ``p`` (or the total), ``NPV_p(s) = a_p + b_p · s`` with ``a_p = NPV_p(0)`` (costs,
course-year effects — per participant, no success rate — and avoided costs) and ``b_p = NPV_p(1) − NPV_p(0)``
(the discounted consequences of one unit of success rate). The break-even success rate is

    s*_p = −a_p / b_p                          when b_p > 0 (the NPV rises with success).

It may lie outside [0, 1]: ``s* ≤ 0`` means the payer breaks even at any success rate; ``s* > 1`` that no
success rate reaches it. There is none when ``b_p = 0`` (success does not move this payer's NPV) or
``b_p < 0`` (the NPV *falls* as success rises — e.g. a payer who pays for more of a service when the
intervention succeeds; it then breaks even only for ``s ≤ −a_p/b_p``, reported as ``ceiling``).

**Cost per participant.** Scaling every intervention cost line (``costs``, not ``avoided_costs``) by ``λ``,
``NPV_p(λ) = A_p + λ · B_p`` with ``A_p = NPV_p`` at zero cost and ``B_p = NPV_p(1) − A_p`` (the discounted
costs the payer bears, < 0). With ``C_p`` the payer's current cost per participant (the sum of its cost lines
over the course years, price-year kroner, positive), the break-even cost per participant is

    c*_p = C_p · (−A_p / B_p)                  when B_p < 0 and A_p ≥ 0,

the largest cost per participant (in the same proportions over course years) at which the payer still breaks
even. For the total, all payers' lines are scaled together and ``C`` is the sum over payers. There is none when
the payer bears no cost (``B_p = 0``) or when ``A_p < 0`` (it does not break even even at zero cost).

**Per udvalg.** The same for every account (payer, udvalg) of the udvalg ledger (:mod:`.ledger`): its NPV is
linear in ``s`` and in ``λ`` too (a sum of terms of the payer's NPV, each either ∝ s or not), so ``a, b, A, B``
are read off the same four evaluations; ``C`` is the account's cost per participant (its cost lines: a line with
``committee`` in that udvalg, a line without in ``unassigned``). Only accounts with a flow are reported.

A payer whose NPV is 0 both at ``s = 0`` and ``s = 1`` and at zero cost has **no stake** (no flows at all).
The NPVs are evaluated with the vectorised engine (:func:`.engine.evaluate`) at the point values of every other
input; :func:`som_models.projection.project` at ``success_rate = s*`` gives NPV 0 (a test checks it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from som_models.parameters.schema import PAYERS, ParameterSet
from som_models.projection.committees import UNASSIGNED
from som_models.projection.engine import Compiled, base_inputs, compile_calculation
from som_models.projection.ledger import account_flows, label

KEYS = (*PAYERS, "total")
#: kroner: a slope or NPV smaller than this in absolute value counts as zero (floating-point noise)
ZERO_TOLERANCE = 1e-6

#: status → what it means (shown by `som project` and documented in docs/calculation-document.md)
SUCCESS_STATUS = {
    "break_even": "NPV rises with the success rate; breaks even at s*",
    "no_effect": "the success rate does not change this payer's NPV",
    "falls_with_success": "NPV falls as the success rate rises; breaks even only below the ceiling",
    "no_stake": "no flows fall on this payer",
}
COST_STATUS = {
    "break_even": "breaks even up to this cost per participant",
    "no_cost": "bears no intervention cost within the horizon",
    "not_even_at_zero_cost": "does not break even even at zero intervention cost",
    "no_stake": "no flows fall on this payer",
}


@dataclass(frozen=True)
class BreakEven:
    """One break-even value: ``NPV(x) = intercept + slope · x`` is zero at ``value`` (None when ``status`` says
    there is none). ``kind`` is ``success_rate`` (x = s) or ``cost_per_participant`` (x = λ, the cost scale;
    ``value`` then in kroner per participant, ``current`` the cost per participant now)."""

    payer: str
    kind: str
    status: str
    value: float | None
    intercept: float
    slope: float
    current: float
    ceiling: float | None = None

    @property
    def reachable(self) -> bool | None:
        """For a success rate: whether ``value`` lies in [0, 1] (None when there is no value)."""
        if self.value is None or self.kind != "success_rate":
            return None
        return 0.0 <= self.value <= 1.0

    def describe(self) -> str:
        """The value in words, e.g. ``0.333`` / ``none — NPV falls as the success rate rises …``."""
        if self.value is None:
            text = (SUCCESS_STATUS if self.kind == "success_rate" else COST_STATUS)[self.status]
            if self.ceiling is not None:
                text += f" (s ≤ {self.ceiling:.4g})"
            return f"none — {text}"
        if self.kind == "success_rate":
            if self.value <= 0:
                return f"{self.value:.4g} (breaks even at any success rate)"
            if self.value > 1:
                return f"{self.value:.4g} (above 1: not reachable)"
            return f"{self.value:.4g}"
        return f"{self.value:,.0f} kr (now {self.current:,.0f})"

    def short(self) -> str:
        """The value in a few words for narrow tables, e.g. ``0.2005`` / ``4,988 kr`` / ``no effect``."""
        if self.value is None:
            text = self.status.replace("_", " ")
            return f"{text} (s ≤ {self.ceiling:.4g})" if self.ceiling is not None else text
        if self.kind == "success_rate":
            return f"{self.value:.4g}" + (" (any s)" if self.value <= 0 else " (not reachable)" if self.value > 1 else "")
        return f"{self.value:,.0f} kr"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "value": self.value, "intercept": self.intercept, "slope": self.slope,
                "current": self.current, "ceiling": self.ceiling, "reachable": self.reachable}


@dataclass(frozen=True)
class BreakEvenResult:
    """Break-even success rate and cost per participant for each payer and the total (keys of :data:`KEYS`), and
    per udvalg (keys ``payer/udvalg``, accounts with a flow only)."""

    success_rate: Mapping[str, BreakEven]
    cost_per_participant: Mapping[str, BreakEven]
    udvalg_success_rate: Mapping[str, BreakEven] = field(default_factory=dict)
    udvalg_cost_per_participant: Mapping[str, BreakEven] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"success_rate": {k: v.to_dict() for k, v in self.success_rate.items()},
                "cost_per_participant": {k: v.to_dict() for k, v in self.cost_per_participant.items()},
                "udvalg": {k: {"success_rate": v.to_dict(),
                               "cost_per_participant": self.udvalg_cost_per_participant[k].to_dict()}
                           for k, v in self.udvalg_success_rate.items()}}


def _npvs(c: Compiled, s: np.ndarray, cost_amounts: np.ndarray) -> tuple[np.ndarray, tuple, np.ndarray]:
    """NPV per payer and in total (D, 4), the ledger's accounts and their NPV (D, A), at success rates ``s`` (D,)
    and cost amounts (D, L), other inputs at their point values."""
    _, u, pf, _ = base_inputs(c)
    D = s.shape[0]
    ev, accts, Y = account_flows(c, s, np.repeat(u, D, axis=0), np.repeat(pf, D, axis=0), cost_amounts)
    return np.column_stack([ev.npv, ev.npv.sum(axis=1)]), accts, Y @ c.factors


def _zero(x: float) -> bool:
    return abs(x) <= ZERO_TOLERANCE


def _pair(key: str, a: float, b: float, A: float, B: float, s0: float, current: float
          ) -> tuple[BreakEven, BreakEven]:
    """The break-even success rate and cost per participant of one payer, the total or one account from
    ``NPV(s) = a + b·s`` and ``NPV(λ) = A + λ·B`` (module docstring)."""
    if _zero(a) and _zero(b) and _zero(A) and _zero(B):
        return (BreakEven(key, "success_rate", "no_stake", None, a, b, s0),
                BreakEven(key, "cost_per_participant", "no_stake", None, A, B, current))
    if _zero(b):
        success = BreakEven(key, "success_rate", "no_effect", None, a, b, s0)
    elif b < 0:
        success = BreakEven(key, "success_rate", "falls_with_success", None, a, b, s0, ceiling=-a / b if a >= 0 else None)
    else:
        success = BreakEven(key, "success_rate", "break_even", -a / b + 0.0, a, b, s0)
    if _zero(B) or current <= 0:
        cost = BreakEven(key, "cost_per_participant", "no_cost", None, A, B, current)
    elif A < 0:
        cost = BreakEven(key, "cost_per_participant", "not_even_at_zero_cost", None, A, B, current)
    else:
        cost = BreakEven(key, "cost_per_participant", "break_even", current * (-A / B), A, B, current)
    return success, cost


def break_even(params: ParameterSet, *, compiled: Compiled | None = None) -> BreakEvenResult:
    """The break-even success rate and cost per participant per payer, in total and per udvalg (formulas above)."""
    c = compiled or compile_calculation(params)
    s0, _, _, cost0 = base_inputs(c)
    scaled = cost0.copy()
    is_cost = np.array([not line.avoided for line in c.costs], dtype=bool)
    scaled[0, is_cost] = 0.0
    # rows: s = 0, s = 1 (at the costs of the document); point s at zero intervention cost; point s and costs
    npv, accts, acc_npv = _npvs(c, np.array([0.0, 1.0, s0[0], s0[0]]), np.vstack([cost0, cost0, scaled, cost0]))
    current = {p: -sum(line.amount for line in c.costs if not line.avoided and PAYERS[line.payer] == p)
               for p in PAYERS}
    per_participant = {p: float(v) for p, v in current.items()}
    per_participant["total"] = float(sum(per_participant.values()))
    success: dict[str, BreakEven] = {}
    cost: dict[str, BreakEven] = {}
    for n, key in enumerate(KEYS):
        success[key], cost[key] = _pair(key, float(npv[0, n]), float(npv[1, n] - npv[0, n]), float(npv[2, n]),
                                        float(npv[3, n] - npv[2, n]), float(s0[0]), per_participant[key])
    u_success: dict[str, BreakEven] = {}
    u_cost: dict[str, BreakEven] = {}
    for n, (payer, udvalg) in enumerate(accts):
        key = label(payer, udvalg)
        mine = -sum(line.amount for line in c.costs if not line.avoided and PAYERS[line.payer] == payer
                    and (line.committee or UNASSIGNED) == udvalg)
        pair = _pair(key, float(acc_npv[0, n]), float(acc_npv[1, n] - acc_npv[0, n]), float(acc_npv[2, n]),
                     float(acc_npv[3, n] - acc_npv[2, n]), float(s0[0]), float(mine))
        if pair[0].status != "no_stake":
            u_success[key], u_cost[key] = pair
    return BreakEvenResult(success, cost, u_success, u_cost)
