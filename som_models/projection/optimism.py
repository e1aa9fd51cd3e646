"""Optimism-bias adjustment of a projection (``optimism_bias: {costs, effects, source}``).

Appraisals tend to understate costs and overstate benefits ("optimism bias"); HM Treasury's Green Book asks
for an explicit adjustment, with uplifts taken from evidence on comparable projects (Green Book supplementary
guidance: optimism bias). Its published uplift tables are for capital projects (buildings, civil engineering,
equipment, outsourcing), not for social interventions, so this module has **no default values**: the document
states the shares and their ``source``.

With cost uplift ``u`` and effect haircut ``h`` (0 ≤ h < 1) the projection computes with

* every ``costs`` and ``fixed_costs`` amount (and cost range) × ``(1 + u)``;
* every consequence unit, course-year unit and their standard errors × ``(1 − h)``, and every ``avoided_costs``
  amount (and range) × ``(1 − h)`` — the effects; refusion and tax follow the units they are computed from.

Prices, the success rate and discounting are not adjusted (a haircut on the units already scales every
consequence amount: ``N · s · u · price``). The stated document is not changed — the adjustment is applied by
:func:`som_models.projection.engine.compile_calculation`, which every projection (line by line, vectorised,
Monte Carlo, break-even, scenarios) goes through, so the parameter set the evaluation tests keeps the stated
values. The result records the adjustment (a note, and ``optimism_bias`` in the `som project` JSON together
with the unadjusted NPV).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

from som_models.parameters.schema import Consequence, CostLine, CourseProfile, FixedCost, OptimismBias, ParameterSet


def _scaled(values: tuple[float, ...] | None, f: float) -> tuple[float, ...] | None:
    return None if values is None else tuple(v * f for v in values)


CostLineOrFixed = TypeVar("CostLineOrFixed", CostLine, FixedCost)


def _line(line: CostLineOrFixed, f: float) -> CostLineOrFixed:
    rng = None if line.range is None else (line.range[0] * f, line.range[1] * f)
    return replace(line, amount=line.amount * f, range=rng)


def _consequence(c: Consequence, f: float) -> Consequence:
    course: CourseProfile | None = c.course
    if course is not None:
        course = replace(course, units=tuple(v * f for v in course.units), se=_scaled(course.se, f))
    return replace(c, units=tuple(v * f for v in c.units), se=_scaled(c.se, f), course=course)


def describe(ob: OptimismBias) -> str:
    """The adjustment in words, e.g. ``optimism bias: costs +20 %, effects −10 % (source: …)``."""
    return (f"optimism bias: costs +{100 * ob.costs:g} %, effects −{100 * ob.effects:g} % "
            f"(source: {ob.source}) — the projection computes with adjusted costs and effects")


def apply_optimism_bias(params: ParameterSet) -> ParameterSet:
    """``params`` with the adjustment of its ``optimism_bias`` applied (itself when there is none or it is applied)."""
    ob = params.optimism_bias
    if ob is None or ob.applied:
        return params
    up, cut = 1.0 + ob.costs, 1.0 - ob.effects
    return replace(
        params,
        costs=tuple(_line(line, up) for line in params.costs),
        avoided_costs=tuple(_line(line, cut) for line in params.avoided_costs),
        fixed_costs=tuple(_line(line, up) for line in params.fixed_costs),
        consequences=tuple(_consequence(c, cut) for c in params.consequences),
        optimism_bias=replace(ob, applied=True),
    )


def without_optimism_bias(params: ParameterSet) -> ParameterSet:
    """``params`` without an optimism-bias adjustment (for showing the unadjusted NPV beside the adjusted one).

    Only valid on a stated (not yet adjusted) parameter set."""
    if params.optimism_bias is not None and params.optimism_bias.applied:
        raise ValueError("without_optimism_bias needs the stated parameter set, not the adjusted one")
    return replace(params, optimism_bias=None)
