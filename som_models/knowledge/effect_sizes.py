"""Effect-size conversions for the knowledge base (each function returns ``(estimate, variance)``).

* Binary outcomes, 2×2 table (``a`` events of ``n1`` treated, ``c`` events of ``n2`` controls, ``b = n1 − a``,
  ``d = n2 − c``): log odds ratio ``ln(ad / bc)`` with variance ``1/a + 1/b + 1/c + 1/d`` (Woolf); when a cell is
  zero, 0.5 is added to every cell (Haldane–Anscombe). Log risk ratio ``ln((a/n1)/(c/n2))`` with variance
  ``1/a − 1/n1 + 1/c − 1/n2``. Risk difference ``a/n1 − c/n2`` with variance ``p1(1−p1)/n1 + p2(1−p2)/n2``.
* Cox transform to a standardised mean difference (Sánchez-Meca, Marín-Martínez & Chacón-Moscoso 2003,
  Psychological Methods 8(4):448–467; the D-Cox index WSIPP uses, shared/research/domain.md §3):
  ``d_Cox = ln(OR) / 1.65`` with variance ``0.367 · var(ln OR)``.
* Continuous outcomes: Hedges' g (Hedges 1981; Borenstein, Hedges, Higgins & Rothstein 2009, ch. 4):
  pooled SD ``s = √(((n1−1)s1² + (n2−1)s2²)/(n1+n2−2))``, ``d = (m1 − m2)/s``, ``J = 1 − 3/(4(n1+n2−2) − 1)``,
  ``g = J·d``, ``var(g) = J²·((n1+n2)/(n1·n2) + d²/(2(n1+n2)))``.
* A standard error from a symmetric confidence interval: ``se = (high − low) / (2·z_{(1+level)/2})``.
* From a standardised effect back to a success rate (the SØM prior): with a baseline (control) success share
  ``p0``, ``p1 = expit(logit(p0) + 1.65·d)`` and the success rate net of what happens anyway is ``p1 − p0``;
  delta method: ``se = 1.65 · p1 · (1 − p1) · se(d)``.
"""

from __future__ import annotations

import math
from statistics import NormalDist

COX_FACTOR = 1.65
COX_VARIANCE_FACTOR = 0.367


def _cells(a: float, n1: float, c: float, n2: float) -> tuple[float, float, float, float]:
    if not (0 <= a <= n1 and 0 <= c <= n2 and n1 > 0 and n2 > 0):
        raise ValueError(f"a 2×2 table needs 0 ≤ events ≤ n in both arms, got {a}/{n1} and {c}/{n2}")
    b, d = n1 - a, n2 - c
    if min(a, b, c, d) == 0:
        return a + 0.5, b + 0.5, c + 0.5, d + 0.5
    return a, b, c, d


def log_odds_ratio(a: float, n1: float, c: float, n2: float) -> tuple[float, float]:
    """``ln OR`` and its variance from events ``a`` of ``n1`` (treated) and ``c`` of ``n2`` (control)."""
    a_, b_, c_, d_ = _cells(a, n1, c, n2)
    return math.log(a_ * d_ / (b_ * c_)), 1 / a_ + 1 / b_ + 1 / c_ + 1 / d_


def log_risk_ratio(a: float, n1: float, c: float, n2: float) -> tuple[float, float]:
    a_, b_, c_, d_ = _cells(a, n1, c, n2)
    m1, m2 = a_ + b_, c_ + d_
    return math.log((a_ / m1) / (c_ / m2)), 1 / a_ - 1 / m1 + 1 / c_ - 1 / m2


def risk_difference(a: float, n1: float, c: float, n2: float) -> tuple[float, float]:
    _cells(a, n1, c, n2)
    p1, p2 = a / n1, c / n2
    return p1 - p2, p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2


def cox_d(log_or: float, variance: float) -> tuple[float, float]:
    """The Cox transform of a log odds ratio to the standardised-mean-difference scale."""
    return log_or / COX_FACTOR, COX_VARIANCE_FACTOR * variance


def hedges_g(m1: float, sd1: float, n1: float, m2: float, sd2: float, n2: float) -> tuple[float, float]:
    """Hedges' g (treated minus control) and its variance."""
    if n1 < 2 or n2 < 2 or sd1 < 0 or sd2 < 0:
        raise ValueError("Hedges' g needs n ≥ 2 and non-negative SDs in both arms")
    df = n1 + n2 - 2
    s = math.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / df)
    if s == 0:
        raise ValueError("Hedges' g needs a positive pooled SD")
    d = (m1 - m2) / s
    j = 1 - 3 / (4 * df - 1)
    return j * d, j**2 * ((n1 + n2) / (n1 * n2) + d**2 / (2 * (n1 + n2)))


def se_from_ci(low: float, high: float, level: float = 0.95) -> float:
    if not high >= low or not 0 < level < 1:
        raise ValueError(f"a confidence interval needs low ≤ high and 0 < level < 1, got [{low}, {high}] at {level}")
    return (high - low) / (2 * NormalDist().inv_cdf((1 + level) / 2))


def success_rate_from_d(d: float, se_d: float, baseline: float) -> tuple[float, float]:
    """Success rate net of the baseline ``p1 − p0`` implied by a Cox-scale effect ``d``, and its delta-method SE."""
    if not 0 < baseline < 1:
        raise ValueError(f"the baseline success share must be strictly between 0 and 1, got {baseline}")
    logit = math.log(baseline / (1 - baseline)) + COX_FACTOR * d
    p1 = 1 / (1 + math.exp(-logit))
    return p1 - baseline, COX_FACTOR * p1 * (1 - p1) * se_d
