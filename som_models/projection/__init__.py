"""The SØM calculation frame (projection of budget consequences), refusion rules, price conversion, Monte Carlo."""

from som_models.projection.breakeven import BreakEven, BreakEvenResult, break_even
from som_models.projection.decision import DecisionAids, decision_aids
from som_models.projection.engine import FM2021, compile_calculation, discount_factors
from som_models.projection.frame import Projection, project
from som_models.projection.montecarlo import MonteCarloResult, TornadoRow, monte_carlo

__all__ = ["BreakEven", "BreakEvenResult", "DecisionAids", "FM2021", "MonteCarloResult", "Projection", "TornadoRow",
           "break_even", "compile_calculation", "decision_aids", "discount_factors", "monte_carlo", "project"]
