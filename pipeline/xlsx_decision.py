"""The decision-aid sheets of the `som project --xlsx` workbook, from the same JSON document as ``--json``:

* ``Scenarios`` — one row per measure × payer (NPV, payback year, break-even success rate, break-even cost per
  participant), one column per scenario (base first); the scenario descriptions below;
* ``Discount sensitivity`` — per discount schedule the NPV per payer and in total and the payback year;
* ``Cash view`` — the NPV per payer in the full economic view, the cash view and the difference, the lines that
  are not cashable, and — when stated — the optimism-bias adjustment with the NPV without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KEYS = ("kommune", "region", "stat", "total")
MEASURES = (("NPV (kr)", "npv"), ("payback year", "payback"), ("break-even success rate", "success_rate"),
            ("break-even cost per participant (kr)", "cost_per_participant"))


def _measure(col: Mapping[str, Any], key: str, payer: str) -> Any:
    if key == "npv":
        return col["npv"][payer]
    if key == "payback":
        if col["payback"][payer] is not None:
            return col["payback"][payer]
        return "never" if col.get("bears_cost", {}).get(payer, True) else "no net cost"
    be = col["break_even"][key][payer]
    return be["value"] if be["value"] is not None else be["status"]


def add_decision_sheets(wb: Any, doc: Mapping[str, Any]) -> None:
    """Add the sheets of the module docstring for the keys ``doc`` has (``scenarios``, ``discount_sensitivity``,
    ``cash_view``, ``optimism_bias``)."""
    from pipeline.xlsx_export import _sheet

    scenarios = doc.get("scenarios")
    if scenarios:
        ws = _sheet(wb, "Scenarios", ("measure", "payer", *(c["name"] for c in scenarios)),
                    ([label, payer, *(_measure(c, key, payer) for c in scenarios)]
                     for label, key in MEASURES for payer in KEYS))
        ws.append([])
        for c in scenarios:
            ws.append(["scenario", c["name"], c["description"], f"success rate {c['success_rate']:g}"])
    sens = doc.get("discount_sensitivity")
    if sens:
        _sheet(wb, "Discount sensitivity", ("schedule", "rates", *(f"NPV {k}" for k in KEYS), "payback year"),
               ([r["label"], r["description"], *(r["npv"][k] for k in KEYS),
                 r["payback_year"] if r["payback_year"] is not None else "none within the horizon"] for r in sens))
    cash = doc.get("cash_view")
    if cash:
        ws = _sheet(wb, "Cash view", ("view", *KEYS),
                    [["full economic view", *(cash["npv_full"][k] for k in KEYS)],
                     ["cash view (cashable only)", *(cash["npv_cash"][k] for k in KEYS)],
                     ["non-cash", *(cash["npv_non_cash"][k] for k in KEYS)]])
        ws.append([])
        ws.append(["not cashable", ", ".join(cash["non_cashable"]) or "none (every line is cashable)"])
        ws.append(["cash payback year", cash["payback_year"] if cash["payback_year"] is not None
                   else "none within the horizon"])
        ob = doc.get("optimism_bias")
        if ob:
            ws.append([])
            ws.append(["optimism bias: cost uplift", ob["costs"]])
            ws.append(["optimism bias: effect haircut", ob["effects"]])
            ws.append(["optimism bias: source", ob["source"]])
            ws.append(["NPV without optimism bias", *(ob["npv_unadjusted"][k] for k in KEYS)])
