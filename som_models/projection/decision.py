"""The decision aids of one calculation document, computed together: named scenarios side by side, the discount
rate as a sensitivity, the cash view apart from the full economic view, and the optimism-bias adjustment with the
unadjusted NPV beside it. `som project` (text, ``--json``, ``--xlsx``) and the notebook API call
:func:`decision_aids`; the break-even values per payer are :mod:`.breakeven` (also per scenario here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from som_models.parameters.schema import ParameterSet
from som_models.projection.cashview import CashView, cash_view
from som_models.projection.engine import compile_calculation
from som_models.projection.frame import project
from som_models.projection.optimism import without_optimism_bias
from som_models.projection.scenarios import ScenarioTable, scenario_table
from som_models.projection.sensitivity import DiscountSensitivity, discount_sensitivity


@dataclass(frozen=True)
class DecisionAids:
    """``scenarios`` is None when the document names none; ``optimism_bias`` None when it states none."""

    scenarios: ScenarioTable | None
    discount: DiscountSensitivity
    cash: CashView
    #: ``{costs, effects, source, npv_unadjusted: {payer: kr}}`` when the document states an adjustment
    optimism_bias: Mapping[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"discount_sensitivity": self.discount.to_dict(), "cash_view": self.cash.to_dict()}
        if self.scenarios is not None:
            out["scenarios"] = self.scenarios.to_dict()
        if self.optimism_bias is not None:
            out["optimism_bias"] = dict(self.optimism_bias)
        return out


def decision_aids(params: ParameterSet, *, discount_schedules: Sequence[str | float] | None = None) -> DecisionAids:
    """Scenarios (if any), discount sensitivity (``discount_schedules``, default
    :data:`.sensitivity.DEFAULT_SCHEDULES`), cash view and optimism bias of ``params`` (the stated set)."""
    c = compile_calculation(params)
    ob = None
    if params.optimism_bias is not None:
        unadjusted = project(without_optimism_bias(params)).npv
        ob = {"costs": params.optimism_bias.costs, "effects": params.optimism_bias.effects,
              "source": params.optimism_bias.source, "npv_unadjusted": dict(unadjusted)}
    return DecisionAids(scenario_table(params) if params.scenarios else None,
                        discount_sensitivity(params, discount_schedules, compiled=c), cash_view(params, compiled=c), ob)
