"""Fixed- and random-effects meta-analysis (inverse variance), with DerSimonian–Laird and REML τ².

For effects ``y_i`` with sampling variances ``v_i`` (``k`` studies), fixed-effect weights ``w_i = 1/v_i``:

* fixed effect: ``μ_FE = Σ w_i y_i / Σ w_i``; Cochran's ``Q = Σ w_i (y_i − μ_FE)²`` on ``k − 1`` df;
* DerSimonian & Laird (1986): ``τ² = max(0, (Q − (k − 1)) / (Σ w_i − Σ w_i² / Σ w_i))``;
* REML (Viechtbauer 2005, Journal of Educational and Behavioral Statistics 30:261–293): the fixed point of
  ``τ² = Σ w*_i² ((y_i − μ*)² − v_i) / Σ w*_i² + 1 / Σ w*_i`` with ``w*_i = 1/(v_i + τ²)``, iterated from the
  DL value and truncated at 0;
* random effects: ``μ = Σ w*_i y_i / Σ w*_i``, ``se(μ) = (Σ w*_i)^(−1/2)``, ``μ ± z·se`` (Wald, normal);
* heterogeneity (Higgins & Thompson 2002, Statistics in Medicine 21:1539–1558): typical within-study variance
  ``s² = (k − 1) Σ w_i / ((Σ w_i)² − Σ w_i²)``, ``I² = τ² / (τ² + s²)``, ``H² = (τ² + s²) / s²`` (for DL,
  ``I² = (Q − df)/Q``);
* prediction interval for the effect in a new setting: ``μ ± z·√(τ² + se(μ)²)``.

Checked against Normand (1999, Statistics in Medicine 18:321–359, Tables VIII–IX) and the BCG trials
(Colditz et al. 1994) in ``tests/test_knowledge_meta.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from som_models.lazy_scipy import stats

METHODS = ("REML", "DL", "FE")


@dataclass(frozen=True)
class MetaResult:
    method: str
    k: int
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    tau2: float
    i2: float
    h2: float
    q: float
    q_df: int
    q_p: float | None
    pi_low: float
    pi_high: float
    fixed_estimate: float
    fixed_se: float
    weights: tuple[float, ...]
    iterations: int
    level: float

    @property
    def tau(self) -> float:
        return math.sqrt(self.tau2)

    @property
    def predictive_se(self) -> float:
        """``√(τ² + se(μ)²)``: the SD of the effect expected in a new setting."""
        return math.sqrt(self.tau2 + self.se**2)

    def to_dict(self) -> dict:
        return {"method": self.method, "k": self.k, "estimate": self.estimate, "se": self.se, "ci": [self.ci_low, self.ci_high],
                "tau2": self.tau2, "tau": self.tau, "i2": self.i2, "h2": self.h2, "q": self.q, "q_df": self.q_df,
                "q_p": self.q_p, "prediction_interval": [self.pi_low, self.pi_high],
                "fixed_effect": {"estimate": self.fixed_estimate, "se": self.fixed_se},
                "weights": list(self.weights), "iterations": self.iterations, "level": self.level}


def _reml(y: np.ndarray, v: np.ndarray, start: float, tol: float = 1e-12, max_iter: int = 10_000) -> tuple[float, int]:
    tau2 = max(start, 0.0)
    for it in range(1, max_iter + 1):
        w = 1 / (v + tau2)
        mu = np.sum(w * y) / np.sum(w)
        new = float(np.sum(w**2 * ((y - mu) ** 2 - v)) / np.sum(w**2) + 1 / np.sum(w))
        new = max(new, 0.0)
        if abs(new - tau2) <= tol * max(1.0, tau2):
            return new, it
        tau2 = new
    raise RuntimeError("REML did not converge")


def meta_analysis(effects: Sequence[float], variances: Sequence[float], *, method: str = "REML",
                  level: float = 0.95) -> MetaResult:
    """Pool ``effects`` with sampling ``variances`` (see the module docstring for the formulas)."""
    method = method.upper()
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    y = np.asarray(effects, dtype=float)
    v = np.asarray(variances, dtype=float)
    if y.ndim != 1 or y.shape != v.shape or y.size == 0:
        raise ValueError("need equally long, non-empty lists of effects and variances")
    if not np.all(np.isfinite(y)) or not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError("effects must be finite and variances positive")
    k = y.size
    w = 1 / v
    sw = w.sum()
    mu_fe = float(np.sum(w * y) / sw)
    q = float(np.sum(w * (y - mu_fe) ** 2))
    c = sw - np.sum(w**2) / sw
    dl = max(0.0, (q - (k - 1)) / c) if k > 1 and c > 0 else 0.0
    iterations = 0
    if method == "FE" or k == 1:
        tau2 = 0.0
    elif method == "DL":
        tau2 = dl
    else:
        tau2, iterations = _reml(y, v, dl)
    ws = 1 / (v + tau2)
    mu = float(np.sum(ws * y) / ws.sum())
    se = float(1 / math.sqrt(ws.sum()))
    z = NormalDist().inv_cdf((1 + level) / 2)
    s2 = (k - 1) * sw / (sw**2 - np.sum(w**2)) if k > 1 else float("nan")
    i2 = float(tau2 / (tau2 + s2)) if k > 1 else 0.0
    h2 = float((tau2 + s2) / s2) if k > 1 else 1.0
    pse = math.sqrt(tau2 + se**2)
    return MetaResult(method if k > 1 else "FE", k, mu, se, mu - z * se, mu + z * se, float(tau2), i2, h2, q, k - 1,
                      float(stats.chi2.sf(q, k - 1)) if k > 1 else None, mu - z * pse, mu + z * pse, mu_fe,
                      float(1 / math.sqrt(sw)), tuple(float(x) for x in ws / ws.sum()), iterations, level)
