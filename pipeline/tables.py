"""The console tables every `som` command shares: verdicts on assumptions and the projection's NPV per payer.

One rendering each, so ``som demo``, ``som evaluate``, ``som params diff/approve`` and ``som audit`` show the
same columns, number formats and colours. Verdict records are expected to have passed
:func:`pipeline.disclosure.suppress_verdict` (a withheld realised value shows as ``suppressed``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.table import Table
from rich.text import Text

PAYER_COLUMNS = ("kommune", "region", "stat", "total")
LABEL_COLOURS = {"consistent": "green", "inconclusive": "yellow", "refuted-overestimated": "red",
                 "refuted-underestimated": "red"}


def fmt_number(x: Any) -> str:
    """A number to 3 significant figures ('' for None)."""
    if x is None:
        return ""
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def fmt_interval(low: Any, high: Any) -> str:
    """``low to high`` to 3 significant figures ('' when the interval is missing)."""
    return "" if low is None or high is None else f"{fmt_number(low)} to {fmt_number(high)}"


def label_text(label: str | None) -> Text:
    """A verdict label in its colour (a :class:`rich.text.Text`, never parsed as markup)."""
    return Text(label or "", style=LABEL_COLOURS.get(label or "", "white"))


def verdict_table(verdicts: Iterable[Mapping[str, Any]], *, title: str, alpha: float = 0.05) -> Table:
    """Assumption, verdict, assumed, realised and the (1 − alpha) interval that decided, one row per verdict."""
    table = Table(title=title)
    table.add_column("assumption", overflow="fold", min_width=20)
    table.add_column("verdict", no_wrap=True)
    for col in ("assumed", "realised", f"{100 * (1 - alpha):g} % CI"):
        table.add_column(col, justify="right")
    for v in verdicts:
        withheld = bool((v.get("evidence") or {}).get("suppressed"))
        table.add_row(v["assumption"], label_text(v["label"]), fmt_number(v.get("assumed")),
                      "suppressed" if withheld else fmt_number(v.get("realised")),
                      "" if withheld else fmt_interval(v.get("ci_low"), v.get("ci_high")))
    return table


def npv_table(title: str, rows: Mapping[str, Mapping[str, Any] | None]) -> Table:
    """NPV per payer (kr, discounted) and payback year, one row per named projection summary.

    A summary is ``{"npv": {payer: kr}, "payback_year": year | None}``; ``None`` marks a parameter document
    that is not a calculation document.
    """
    table = Table(title=title)
    for col in ("parameters", *PAYER_COLUMNS, "payback year"):
        table.add_column(col, justify="left" if col == "parameters" else "right")
    for name, p in rows.items():
        if p is None:
            table.add_row(name, *[""] * len(PAYER_COLUMNS), "not a calculation document")
            continue
        table.add_row(name, *(f"{p['npv'].get(k, 0.0):,.0f}" for k in PAYER_COLUMNS), str(p.get("payback_year") or "none"))
    return table
