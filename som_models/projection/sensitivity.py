"""The discount rate as a sensitivity: NPV per payer under alternative discount schedules, side by side.

The schedules (``δ_t = Π_{u=1..t} 1/(1 + r(u))``, :func:`.engine.discount_factors`):

* ``fm2021`` — the Finance Ministry schedule since 2021: 3.5 % in years 1–35, 2.5 % in 36–70, 1.5 % after;
* ``fm2013`` — the Finance Ministry schedule 2013–2020: 4 % in years 1–35, 3 % in 36–70, 2 % after
  (fm.dk, May 2013; shared/research/domain.md §2);
* ``none`` — 0 %, undiscounted;
* a flat rate ``r`` in every year.

:data:`DEFAULT_SCHEDULES` — the document's own schedule, then ``fm2021``, ``fm2013``, ``none`` and flat 2 %,
3.5 % and 4 % (brackets around the Finance Ministry's 3.5 %) — is shown by ``som project``;
``--discount-sensitivity fm2021,fm2013,2,3.5,4`` (flat rates in per cent) chooses another list. The yearly
nominal amounts do not depend on the rate, so they are computed once with the vectorised engine at the point
values and discounted with each schedule: ``NPV_p = Σ_t Y[p, t] · δ_t``; the payback year is recomputed for each schedule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import polars as pl

from som_models.parameters.schema import PAYERS, ParameterSet
from som_models.projection.engine import (
    FM2021,
    Compiled,
    base_inputs,
    compile_calculation,
    describe_discounting,
    discount_factors,
    evaluate,
    payback_years,
)

KEYS = (*PAYERS, "total")
FM2013 = ((1, 0.04), (36, 0.03), (71, 0.02))
NAMED = {"fm2021": FM2021, "fm2013": FM2013, "none": ((1, 0.0),)}
#: the alternatives shown by default after the document's own schedule (flat rates as shares)
DEFAULT_SCHEDULES: tuple[str | float, ...] = ("fm2021", "fm2013", "none", 0.02, 0.035, 0.04)


def _steps(schedule: Any) -> tuple[tuple[int, float], ...]:
    if schedule in (None, "fm2021"):
        return FM2021
    if isinstance(schedule, str):
        return NAMED[schedule]
    if isinstance(schedule, (int, float)):
        return ((1, float(schedule)),)
    return tuple(schedule)


def _label(schedule: Any) -> str:
    if isinstance(schedule, str):
        return schedule
    if isinstance(schedule, (int, float)):
        return f"flat {100 * schedule:g} %"
    return "custom"


def parse_schedules(text: str) -> tuple[str | float, ...]:
    """``"fm2021,fm2013,none,2,3.5"`` → ``('fm2021', 'fm2013', 'none', 0.02, 0.035)``: names, or flat rates in
    per cent (0 ≤ r < 100). Raises ValueError naming the bad entry."""
    out: list[str | float] = []
    for raw in text.split(","):
        tok = raw.strip()
        if not tok:
            raise ValueError(f"{text!r}: an empty entry (write e.g. fm2021,fm2013,2,3.5,4)")
        if tok in NAMED:
            out.append(tok)
            continue
        try:
            pct = float(tok.rstrip("%"))
        except ValueError:
            raise ValueError(f"{tok!r} is neither a schedule ({', '.join(NAMED)}) nor a rate in per cent") from None
        if not 0 <= pct < 100:
            raise ValueError(f"{tok!r}: a rate in per cent must be between 0 and 100")
        out.append(pct / 100)
    return tuple(out)


@dataclass(frozen=True)
class DiscountRow:
    """NPV per payer and in total, and the payback year, under one schedule."""

    label: str
    description: str
    npv: Mapping[str, float]
    payback_year: int | None
    is_document: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "description": self.description, "npv": dict(self.npv),
                "payback_year": self.payback_year, "document": self.is_document}


@dataclass(frozen=True)
class DiscountSensitivity:
    rows: tuple[DiscountRow, ...]

    def to_dict(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.rows]

    def to_polars(self) -> pl.DataFrame:
        """``schedule``, ``description``, NPV per payer and ``total``, ``payback_year``."""
        return pl.DataFrame([{"schedule": r.label, "description": r.description, **{k: r.npv[k] for k in KEYS},
                              "payback_year": r.payback_year} for r in self.rows],
                            schema={"schedule": pl.Utf8, "description": pl.Utf8, **{k: pl.Float64 for k in KEYS},
                                    "payback_year": pl.Int64})


def discount_sensitivity(params: ParameterSet, schedules: Sequence[str | float] | None = None, *,
                         compiled: Compiled | None = None) -> DiscountSensitivity:
    """NPV per payer and in total under the document's schedule and each of ``schedules`` (default
    :data:`DEFAULT_SCHEDULES`; a schedule equal to the document's is listed once)."""
    c = compiled or compile_calculation(params)
    yearly = evaluate(c, *base_inputs(c)).yearly[0]                  # (P, T) nominal
    T = c.n_years
    own = _steps(params.discounting)
    entries: list[tuple[str, Any, bool]] = [("document", params.discounting, True)]
    seen = {own}
    for sch in DEFAULT_SCHEDULES if schedules is None else schedules:
        steps = _steps(sch)
        if steps in seen:
            continue
        seen.add(steps)
        entries.append((_label(sch), sch, False))
    rows = []
    for label, sch, is_doc in entries:
        steps = _steps(sch)
        factors = discount_factors(steps, T)
        npv = {p: float(yearly[k] @ factors) for k, p in enumerate(PAYERS)}
        npv["total"] = float(sum(npv[p] for p in PAYERS))
        t = int(payback_years(replace(c, factors=factors), yearly.sum(axis=0)[None, :])[0])
        desc = describe_discounting(sch if sch in (None, "fm2021", "none") else steps)
        rows.append(DiscountRow(f"document ({_label(sch or 'fm2021')})" if is_doc else label, desc, npv,
                                None if t < 0 else c.first + t, is_doc))
    return DiscountSensitivity(tuple(rows))
