"""The known-truth world: synthetic DST-style register deliveries with planted effects.

``simulate(scenario, persons, seed)`` returns a :class:`SimulatedDelivery`; ``write_delivery`` writes it.
"""

from som_models.simulate.delivery import SimulatedDelivery, write_delivery
from som_models.simulate.homelessness import HomelessnessWorld, simulate_homelessness

SCENARIOS = {"homelessness": simulate_homelessness}


def simulate(scenario: str, persons: int, seed: int) -> SimulatedDelivery:
    """Simulate one delivery of a named scenario."""
    try:
        fn = SCENARIOS[scenario]
    except KeyError:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {sorted(SCENARIOS)}") from None
    return fn(persons, seed)


__all__ = ["SCENARIOS", "HomelessnessWorld", "SimulatedDelivery", "simulate", "simulate_homelessness", "write_delivery"]
