"""Which realised estimand tests — and updates — which assumption of a parameter set: the one mapping.

Verdicts (:mod:`som_models.verdicts`) compare each assumption with its realised counterpart and calibration
(:mod:`som_models.calibration`) turns the same counterparts into new parameter values; both take the
mapping from here. With ``K`` = ``course_years``, ``s`` = the assumed success rate and ``u_i[j]`` the
consequence profile of item ``i`` (units per successful person in consequence year ``j = 1, 2, …``), an
estimate row is identified by ``(outcome, estimand, event_time)`` of the tidy table (DESIGN §3.3) and
event time ``e`` counts years since the intervention started (``e = 0`` is the first course year):

* **success rate** ``s`` ↔ the ``event`` row of the success indicator (``outcome`` = the success measure's
  name) at ``e = K``, consequence year 1 — the realised net success rate is the ATT on being a success in
  the first year after the course.
* **consequence year** ``j`` of item ``i`` ↔ the ``event`` row of outcome ``i`` at
  ``e = K − 1 + j`` (conversely ``j = e − K + 1``); the **implied effect** the parameter set assumes
  there is ``a_i(e) = s · u_i[e − K + 1]`` (success rate × consequence value), and ``0`` for event
  times beyond the profile (``j > len(u_i)``: no effect assumed). The effect path of item ``i`` is
  ``a_i(e)`` over the observed consequence years ``e ≥ K``.
* **course year** ``k = 1 … K`` of item ``i`` (``consequences.<i>.course``, units per *participant*) ↔ the
  ``event`` row of outcome ``i`` at ``e = k − 1`` (the course years are event times ``0 … K − 1``, numbered
  like the cost lines' ``course_year``); the effect the parameter set assumes there is the course value
  itself, ``b_i(e) = v_i[e + 1]`` — no success rate: during the course success is not yet defined, so the
  course profile is stated per participant and equals the event-time ATT it claims. The **course path** of
  item ``i`` is ``b_i(e)`` over the observed course years ``0 ≤ e < K`` (assumption ``course_path:<i>``,
  separate from the effect path so each is one hypothesis of the Holm family; only *causal* course profiles
  are tested against the ATT path).
* **calibration** inverts the second line with the realised success rate ``r_s`` (ATT at ``e = K``):
  realised units per successful person ``c_j = ATT_i(K − 1 + j) / r_s`` with the delta-method SE
  ``|c_j| · √((σ_ATT/ATT)² + (σ_s/r_s)²)`` (ignoring the covariance of the two estimates; ``σ_ATT / r_s``
  when ``ATT = 0``); a causal course year is updated from ``ATT_i(k − 1)`` directly (per participant).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from som_models.parameters.schema import ParameterSet

#: The estimand of the tidy table that tests the assumptions (event-time ATT).
EVENT = "event"


@dataclass(frozen=True)
class EstimandKey:
    """One row of the tidy estimates table: ``(outcome, estimand, event_time)``."""

    outcome: str
    estimand: str
    event_time: int


@dataclass(frozen=True)
class AssumptionMap:
    """The assumption ↔ estimand mapping of one parameter set (formulas in the module docstring)."""

    course_years: int
    success_outcome: str
    success_rate: float
    #: consequence item → units per successful person in consequence years 1, 2, …
    profiles: Mapping[str, tuple[float, ...]]
    #: consequence item → units per participant in course years 1 … K (items with a course profile only)
    course_profiles: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: ParameterSet) -> AssumptionMap:
        """The mapping of ``params`` (its success measure names the success indicator outcome)."""
        sm = params.success_measure
        if sm is None:
            raise ValueError(f"parameter set {params.intervention!r} has no success_measure: the success rate cannot be "
                             "tied to an outcome of the data")
        return cls(course_years=params.course_years, success_outcome=sm.name,
                   success_rate=params.success_rate.value,
                   profiles={c.item: tuple(c.units) for c in params.consequences},
                   course_profiles={c.item: tuple(c.course.units) for c in params.consequences if c.course is not None})

    @property
    def success_estimand(self) -> EstimandKey:
        """The row that tests the success rate: the success indicator's ``event`` ATT at ``e = K``."""
        return EstimandKey(self.success_outcome, EVENT, self.course_years)

    def event_time(self, consequence_year: int) -> int:
        """``e = K − 1 + j`` for consequence year ``j``."""
        return self.course_years - 1 + int(consequence_year)

    def consequence_year(self, event_time: int) -> int:
        """``j = e − K + 1`` for event time ``e``."""
        return int(event_time) - self.course_years + 1

    def consequence_estimand(self, item: str, consequence_year: int) -> EstimandKey:
        """The row that tests (and updates) consequence year ``j`` of ``item``: its ``event`` ATT at ``e = K − 1 + j``."""
        return EstimandKey(item, EVENT, self.event_time(consequence_year))

    def in_consequence_years(self, event_time: int | None) -> bool:
        """Whether an event time lies in the consequence years (``e ≥ K``)."""
        return event_time is not None and event_time >= self.course_years

    def beyond_profile(self, item: str, event_time: int) -> bool:
        """Whether ``e`` lies past the last consequence year of ``item``'s profile (no effect assumed there)."""
        return self.consequence_year(event_time) > len(self.profiles[item])

    def implied_effect(self, item: str, event_time: int) -> float:
        """``a_i(e) = s · u_i[e − K + 1]``, 0 beyond the profile (the effect the parameter set implies at ``e``)."""
        j = self.consequence_year(event_time)
        units = self.profiles[item]
        return self.success_rate * units[j - 1] if j <= len(units) else 0.0

    def course_event_time(self, course_year: int) -> int:
        """``e = k − 1`` for course year ``k = 1 … K``."""
        return int(course_year) - 1

    def course_year(self, event_time: int) -> int:
        """``k = e + 1`` for an event time ``0 ≤ e < K``."""
        return int(event_time) + 1

    def in_course_years(self, event_time: int | None) -> bool:
        """Whether an event time lies in the course (``0 ≤ e < K``)."""
        return event_time is not None and 0 <= event_time < self.course_years

    def course_estimand(self, item: str, course_year: int) -> EstimandKey:
        """The row that tests (and updates) course year ``k`` of ``item``: its ``event`` ATT at ``e = k − 1``."""
        if not 1 <= int(course_year) <= self.course_years:
            raise ValueError(f"course year {course_year} is outside the course (1–{self.course_years})")
        return EstimandKey(item, EVENT, self.course_event_time(course_year))

    def course_effect(self, item: str, event_time: int) -> float:
        """``b_i(e) = v_i[e + 1]``: the course value (per participant) the parameter set assumes at ``0 ≤ e < K``."""
        return self.course_profiles[item][self.course_year(event_time) - 1]

    def first_year_effect(self, item: str) -> float:
        """``s · u_i[1]``: the implied effect in consequence year 1."""
        return self.success_rate * self.profiles[item][0]


def units_per_success(effect: float, effect_se: float, success: float, success_se: float) -> tuple[float, float]:
    """Realised units per successful person from an event-time ATT and the realised success rate, with the
    delta-method SE: ``c = ATT / r_s``, ``se = |c| · √((σ_ATT/ATT)² + (σ_s/r_s)²)`` (``σ_ATT / r_s`` if ATT = 0)."""
    c = effect / success
    rel = (effect_se / effect) ** 2 if effect else 0.0
    se = abs(c) * math.sqrt(rel + (success_se / success) ** 2) if effect else effect_se / success
    return c, se
