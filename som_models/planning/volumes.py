"""Planning the course-length and cost assumptions by simulation (issue 14 item 1: "simulation otherwise").

The verdicts (:mod:`som_models.volume_verdicts`) judge the mean course length ``d̄`` of the completed cohorts and the
mean cost per participant ``x̄`` of a cost file by **band tests**: with the assumption ``A``, the band half-width
``δ`` (``max(margin·K, ½ year)`` for the course length, ``margin·|A|`` for the cost) and ``se = s/√n`` (``s`` the
*sample* SD):

* refuted when ``p = min(1, 2·min(Φ̄((d − δ)/se), Φ((d + δ)/se))) < α/h`` (``d = mean − A``);
* consistent when the TOST ``max(Φ̄((d + δ)/se), Φ((d − δ)/se)) < α/h`` (and not refuted),

Holm over the volume assumptions judged together (``h`` ≤ 3). No variance component of the panel applies to
these means (the variance model of :mod:`som_models.planning.variance` covers register outcomes), the values are
skewed and bounded and ``se`` is estimated, so the plan **simulates the verdict's own test**: for each vintage
``V`` and each truth — the assumption ``A`` (confirmation power) and a miss of twice the band, ``A ± 2δ``
(refutation power; the lower of the two sides is reported, as for the participants) — ``draws`` samples of the
``n(V)`` persons the verdict will see are drawn and judged at the first Holm step (``α/m``, a lower bound on
Holm's power, as for the effects). The individual values are drawn

* by **resampling** the values the baseline observed (course lengths of its completed courses, the amounts of a
  cost file), rescaled to the truth's mean (the shape of the distribution kept); or, when none are observed,
* from a **gamma** distribution with the truth's mean and the coefficient of variation ``cv`` (default 0.5, a
  stated assumption of the plan, not a measured figure).

``n(V)``: the course length counts the persons of cohorts ``g`` with ``g + K ≤ V`` (all their courses ended by
then when courses last about ``K`` years; courses running longer delay it); the cost counts the participants of
cohorts with ``g + K − 1 ≤ V`` (their course years, in which the costs fall, delivered). Later vintages add
persons until the last cohort is complete. The seed and the number of draws are recorded in the plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from som_models.lazy_scipy import stats

COURSE_RESOLUTION = 0.5  # the course length's band is at least ± half a year (as in the verdicts)
DEFAULT_CV = 0.5


@dataclass(frozen=True)
class SimulatedPower:
    """Rates over ``draws`` simulated verdicts of a band test at one sample size."""

    n: int
    refute_up: float
    refute_down: float
    confirm: float
    expected_se: float

    @property
    def refute(self) -> float:
        return min(self.refute_up, self.refute_down)


def band_decisions(samples: np.ndarray, assumed: float, delta: float, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The verdicts' band tests on each row of ``samples`` (draws × n): ``(refuted, consistent)`` booleans at level
    ``level`` (module docstring; the same formulas as :mod:`som_models.volume_verdicts`)."""
    n = samples.shape[1]
    mean = samples.mean(axis=1)
    se = samples.std(axis=1, ddof=1) / math.sqrt(n)
    d = mean - assumed
    with np.errstate(divide="ignore", invalid="ignore"):
        safe = np.where(se > 0, se, 1.0)
        p = np.minimum(1.0, 2 * np.minimum(stats.norm.sf((d - delta) / safe), stats.norm.cdf((d + delta) / safe)))
        tost = np.maximum(stats.norm.sf((d + delta) / safe), stats.norm.cdf((d - delta) / safe))
    p = np.where(se > 0, p, np.where(np.abs(d) > delta, 0.0, 1.0))
    tost = np.where(se > 0, tost, np.where(np.abs(d) < delta, 0.0, 1.0))
    refuted = p < level
    return refuted, (tost < level) & ~refuted & (delta > 0)


def _draw(rng: np.random.Generator, base: np.ndarray | None, mean: float, cv: float, size: tuple[int, int]) -> np.ndarray:
    if base is not None and base.size >= 2 and base.mean() != 0:
        return rng.choice(base, size=size, replace=True) * (mean / float(base.mean()))
    if mean <= 0:
        raise ValueError(f"cannot simulate values with mean {mean:g} from a gamma distribution: give observed values")
    shape = 1 / cv**2
    return rng.gamma(shape, mean / shape, size=size)


def simulate_band_power(n: int, assumed: float, delta: float, level: float, *, base: np.ndarray | None = None,
                        cv: float = DEFAULT_CV, draws: int = 2000, seed: int = 0) -> SimulatedPower:
    """Refutation power at ``A ± 2δ`` and confirmation power at ``A`` of the band test with ``n`` persons."""
    if n < 2:
        raise ValueError(f"a band test needs at least two persons, got {n}")
    rng = np.random.default_rng(seed)
    sign = 1.0 if assumed >= 0 else -1.0
    rates = {}
    for name, truth in (("up", assumed + 2 * delta), ("down", assumed - 2 * delta), ("at", assumed)):
        if sign * truth <= 0:  # a truth of the other sign (e.g. a negative course length) cannot happen
            rates[name] = 1.0
            continue
        samples = sign * _draw(rng, None if base is None else sign * base, sign * truth, cv, (draws, n))
        refuted, consistent = band_decisions(samples, assumed, delta, level)
        rates[name] = float((consistent if name == "at" else refuted).mean())
    sd = (float(np.std(base, ddof=1)) * abs(assumed / float(np.mean(base))) if base is not None and base.size >= 2
          and np.mean(base) != 0 else cv * abs(assumed))
    return SimulatedPower(n, rates["up"], rates["down"], rates["at"], sd / math.sqrt(n))


def persons_by_vintage(cohorts: Mapping[int, int], course_years: int, vintages: Sequence[int], lag: int) -> dict[int, int]:
    """Persons of the cohorts ``g`` with ``g + lag ≤ V``, per vintage ``V`` (module docstring)."""
    return {v: int(sum(n for g, n in cohorts.items() if g + lag <= v)) for v in vintages}


def course_band(course_years: float, margin: float) -> float:
    """The band half-width of the course-length verdict: ``max(margin·K, ½ year)``."""
    return max(margin * course_years, COURSE_RESOLUTION)


__all__ = ["DEFAULT_CV", "SimulatedPower", "band_decisions", "course_band", "persons_by_vintage",
           "simulate_band_power"]
