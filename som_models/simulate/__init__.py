"""The known-truth world: synthetic DST-style register deliveries with planted effects.

``simulate(scenario, persons, seed)`` returns a :class:`SimulatedDelivery`; ``write_delivery`` writes it.
Scenarios: ``homelessness`` (Housing First-like, effects roughly as assumed), ``youth_crime`` (MST-like,
crime rises), ``youth_behaviour`` (MST-like, paid by børne- og unge, gains to beskæftigelse in adulthood),
``children_placed`` (placements fall) and ``small`` (a tiny randomised world for tests).
"""

from dataclasses import replace
from typing import Any

from som_models.simulate.delivery import FORMATS, SimulatedDelivery, WideCodes, write_delivery
from som_models.simulate.homelessness import HomelessnessWorld, simulate_homelessness
from som_models.simulate.scenarios import (
    CHILDREN_PLACED,
    SMALL,
    YOUTH_BEHAVIOUR,
    YOUTH_CRIME,
    simulate_children_placed,
    simulate_small,
    simulate_youth_behaviour,
    simulate_youth_crime,
)
from som_models.simulate.world import OUTCOMES, Effect, Profile, WorldSpec, simulate_world

SCENARIOS = {
    "homelessness": simulate_homelessness,
    "youth_crime": simulate_youth_crime,
    "children_placed": simulate_children_placed,
    "youth_behaviour": simulate_youth_behaviour,
    "small": simulate_small,
}


_WORLDS = {"youth_crime": YOUTH_CRIME, "youth_behaviour": YOUTH_BEHAVIOUR, "children_placed": CHILDREN_PLACED, "small": SMALL}


def simulate(scenario: str, persons: int, seed: int, *, first_year: int | None = None, last_year: int | None = None,
             target_share: float | None = None, keep_expected: bool | None = None) -> SimulatedDelivery:
    """Simulate one delivery of a named scenario.

    ``first_year``/``last_year`` move the delivery period and ``target_share`` sets the share of persons in
    the target group (the rest is the background population); ``keep_expected`` keeps the row-by-row
    expected panel (default: up to 200 000 persons). Roll-out and randomisation years must stay inside the
    period.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(sorted(SCENARIOS))}")
    changes: dict[str, Any] = {k: v for k, v in (("first_year", first_year), ("last_year", last_year),
                                                 ("target_share", target_share))
               if v is not None}
    if scenario == "homelessness":
        homeless = replace(HomelessnessWorld(), **changes) if changes else None
        return simulate_homelessness(persons, seed, homeless, keep_expected=keep_expected)
    return simulate_world(replace(_WORLDS[scenario], **changes), persons, seed, keep_expected=keep_expected)


__all__ = [
    "CHILDREN_PLACED", "FORMATS", "OUTCOMES", "SCENARIOS", "SMALL", "YOUTH_BEHAVIOUR", "YOUTH_CRIME", "Effect",
    "HomelessnessWorld", "Profile", "SimulatedDelivery", "WideCodes", "WorldSpec", "simulate", "simulate_children_placed",
    "simulate_homelessness", "simulate_small", "simulate_world", "simulate_youth_behaviour", "simulate_youth_crime",
    "write_delivery",
]
