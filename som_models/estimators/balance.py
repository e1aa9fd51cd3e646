"""Covariate balance between a treated and a comparison group: the standardised mean difference.

``SMD = (x̄_T − x̄_C) / √((s²_T + s²_C) / 2)`` with sample variances (``ddof = 1``) of the two groups
(Austin 2009, *Stat. Med.* 28(25); Stuart 2010, *Stat. Sci.* 25(1)); |SMD| > 0.1 is the usual flag of
imbalance. After matching the comparison mean is the weighted mean while the denominator keeps the
unweighted (pre-matching) variances, so SMDs before and after matching are comparable (Stuart 2010).

Edge cases: fewer than two values in either group → NaN (no variance); a zero pooled standard deviation
→ 0 when the means are equal, else ±∞ (the groups are perfectly separated, which is maximal imbalance).
"""

from __future__ import annotations

import math

import numpy as np


def pooled_sd(treated: np.ndarray, control: np.ndarray) -> float:
    """``√((s²_T + s²_C) / 2)`` with ``ddof = 1``; NaN if either group has fewer than two values."""
    a, b = np.asarray(treated, dtype=float), np.asarray(control, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    return math.sqrt((float(np.var(a, ddof=1)) + float(np.var(b, ddof=1))) / 2)


def standardised_difference(mean_treated: float, mean_control: float, sd: float) -> float:
    """``(mean_treated − mean_control) / sd``: NaN for an unknown ``sd``, 0 or ±∞ for ``sd = 0``."""
    diff = mean_treated - mean_control
    if math.isnan(sd) or math.isnan(diff):
        return math.nan
    if sd == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / sd


def smd(treated: np.ndarray, control: np.ndarray, *, treated_weights: np.ndarray | None = None,
        control_weights: np.ndarray | None = None) -> float:
    """The standardised mean difference of one variable (weighted means if weights are given; the
    denominator always uses the unweighted variances, see the module docstring)."""
    a, b = np.asarray(treated, dtype=float), np.asarray(control, dtype=float)
    if len(a) == 0 or len(b) == 0:
        return math.nan

    def mean(x: np.ndarray, w: np.ndarray | None) -> float:
        if w is None:
            return float(x.mean())
        w = np.asarray(w, dtype=float)
        return float(np.average(x, weights=w)) if w.sum() > 0 else math.nan

    return standardised_difference(mean(a, treated_weights), mean(b, control_weights), pooled_sd(a, b))
