"""Multiplier bootstrap on influence functions: standard errors and simultaneous (uniform) confidence bands.

Given the units × parameters influence matrix ``Ψ`` of estimates ``θ̂`` (``θ̂ − θ ≈ (1/n) Σ_i ψ_i``), each draw
``b`` perturbs the clusters' summed influence with i.i.d. multipliers ``V_bc`` (mean 0, variance 1)::

    T_b = (1/n) Σ_c V_bc S_c,     S_c = Σ_{i ∈ c} ψ_i      (clusters c = units unless ``cluster`` is given)

so ``Var*(T_b) = (1/n²) Σ_c S_c S_c'`` — the cluster-robust variance (without the analytic ``G/(G − 1)``
factor; one weight per cluster, as R ``did``'s ``mboot`` with ``clustervars``). As in R ``did`` (``mboot``), the
bootstrap standard error is the robust scale ``IQR(T_k) / (z₀.₇₅ − z₀.₂₅)`` and the critical value of the
uniform band is the ``1 − α`` quantile of ``max_k |T_bk| / se_k``; the band ``θ̂_k ± c · se_k`` covers all
parameters at once with probability ``1 − α`` (Callaway & Sant'Anna 2021, section 4.1). With one parameter
the critical value is the pointwise bootstrap-t value (≈ 1.96).

Multipliers: ``mammen`` (Mammen 1993: ``−(√5−1)/2`` w.p. ``(√5+1)/(2√5)``, else ``(√5+1)/2``; R ``did``'s
choice) or ``rademacher`` (±1 w.p. ½). Draws are seeded (``numpy.random.default_rng(seed)``) and generated
in chunks of units, so memory stays bounded at population scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from som_models.estimators.results import AggregateEffect, DidResult

_SQRT5 = np.sqrt(5.0)
_CHUNK_BYTES = 64 * 2**20


@dataclass(frozen=True, eq=False)
class BootstrapInference:
    """Bootstrap standard errors and the uniform band of a vector of estimates."""

    labels: tuple
    estimates: np.ndarray
    se: np.ndarray
    crit: float
    alpha: float
    draws: int
    weights: str
    seed: int | None
    clusters: int
    distribution: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0)))

    @property
    def lower(self) -> np.ndarray:
        return self.estimates - self.crit * self.se

    @property
    def upper(self) -> np.ndarray:
        return self.estimates + self.crit * self.se

    def by_label(self) -> dict:
        """``label -> (se, ci_low, ci_high)`` of the uniform band."""
        return {lab: (float(s), float(lo), float(hi)) for lab, s, lo, hi in zip(self.labels, self.se, self.lower, self.upper)}


def _multipliers(rng: np.random.Generator, shape: tuple[int, int], kind: str) -> np.ndarray:
    if kind == "rademacher":
        return rng.integers(0, 2, size=shape, dtype=np.int8).astype(np.float64) * 2.0 - 1.0
    if kind == "mammen":
        p = (_SQRT5 + 1) / (2 * _SQRT5)
        u = rng.random(shape)
        return np.where(u < p, -(_SQRT5 - 1) / 2, (_SQRT5 + 1) / 2)
    raise ValueError(f"bootstrap weights must be 'mammen' or 'rademacher' (got {kind!r})")


def multiplier_bootstrap(
    influence: np.ndarray,
    estimates: np.ndarray,
    *,
    n: int | None = None,
    draws: int = 999,
    seed: int | None = None,
    weights: str = "mammen",
    alpha: float = 0.05,
    cluster: np.ndarray | None = None,
    labels: tuple | None = None,
) -> BootstrapInference:
    """Bootstrap SEs and the uniform critical value for the columns of ``influence`` (see module docstring)."""
    if draws < 2:
        raise ValueError(f"the bootstrap needs at least 2 draws (got {draws})")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1) (got {alpha})")
    psi = influence if influence.ndim == 2 else influence[:, None]
    n = psi.shape[0] if n is None else n
    estimates = np.atleast_1d(np.asarray(estimates, dtype=float))
    if cluster is not None:
        if cluster.shape[0] != psi.shape[0]:
            raise ValueError("cluster must have one entry per unit (row of the influence matrix)")
        _, inverse = np.unique(cluster, return_inverse=True)
        n_clusters = int(inverse.max()) + 1
        summed = np.zeros((n_clusters, psi.shape[1]))
        np.add.at(summed, inverse, psi)
        psi = summed
    rng = np.random.default_rng(seed)
    m = psi.shape[0]
    chunk = max(1, int(_CHUNK_BYTES // (8 * draws)))
    total = np.zeros((draws, psi.shape[1]))
    for start in range(0, m, chunk):
        block = np.ascontiguousarray(psi[start:start + chunk])
        total += _multipliers(rng, (draws, block.shape[0]), weights) @ block
    total /= n
    q75, q25 = np.quantile(total, [0.75, 0.25], axis=0, method="inverted_cdf")
    se = (q75 - q25) / (stats.norm.ppf(0.75) - stats.norm.ppf(0.25))
    ok = se > np.sqrt(np.finfo(float).eps) * np.maximum(1.0, np.abs(estimates))
    if ok.any():
        t_max = np.max(np.abs(total[:, ok]) / se[ok], axis=1)
        crit = float(np.quantile(t_max, 1 - alpha, method="inverted_cdf"))
    else:
        crit = float("nan")
    se = np.where(ok, se, np.nan)
    return BootstrapInference(labels=tuple(range(len(estimates))) if labels is None else tuple(labels),
                              estimates=estimates, se=se, crit=crit, alpha=alpha, draws=draws, weights=weights,
                              seed=seed, clusters=m, distribution=total)


def bootstrap_cells(result: DidResult, **kwargs) -> BootstrapInference:
    """Bootstrap over all ATT(g, t) cells of a result (uniform band over cells); labels are ``(g, t)``. Draws one
    multiplier per cluster of ``result.clusters`` (``att_gt(cluster_col=…)``) unless ``cluster`` is given."""
    est = np.array([c.estimate for c in result.cells])
    kwargs.setdefault("cluster", result.clusters)  # one multiplier per cluster when the result is clustered
    return multiplier_bootstrap(result.influence, est, n=result.n_units,
                                labels=tuple((c.group, c.time) for c in result.cells), **kwargs)


def bootstrap_aggregate(agg: AggregateEffect, n_units: int, **kwargs) -> tuple[BootstrapInference, BootstrapInference]:
    """Bootstrap of an aggregation: (uniform band over its levels, e.g. event times; the overall effect). Pass
    ``cluster=result.clusters`` to draw one multiplier per cluster, as for the cells."""
    levels = list(agg.estimates)
    if levels:
        psi = np.column_stack([agg.influence[lvl] for lvl in levels])
        by_level = multiplier_bootstrap(psi, np.array([agg.estimates[lvl] for lvl in levels]), n=n_units,
                                        labels=tuple(levels), **kwargs)
    else:
        by_level = None
    if agg.overall_influence is None:
        raise ValueError("this aggregation carries no influence function for its overall effect")
    overall = multiplier_bootstrap(agg.overall_influence, np.array([agg.overall]), n=n_units, labels=("overall",),
                                   **kwargs)
    return by_level, overall
