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

from som_models.estimators._influence import BlockInfluence, ColumnRows, DeferredColumn, DeferredColumns, StreamedInfluence
from som_models.estimators.results import AggregateEffect, DidResult, stored
from som_models.lazy_scipy import stats

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
        return {lab: (float(s), float(lo), float(hi))
                for lab, s, lo, hi in zip(self.labels, self.se, self.lower, self.upper, strict=False)}


def _multipliers(rng: np.random.Generator, shape: tuple[int, int], kind: str) -> np.ndarray:
    if kind == "rademacher":
        return rng.integers(0, 2, size=shape, dtype=np.int8).astype(np.float64) * 2.0 - 1.0
    if kind == "mammen":
        p = (_SQRT5 + 1) / (2 * _SQRT5)
        u = rng.random(shape)
        return np.where(u < p, -(_SQRT5 - 1) / 2, (_SQRT5 + 1) / 2)
    raise ValueError(f"bootstrap weights must be 'mammen' or 'rademacher' (got {kind!r})")


def multiplier_bootstrap(
    influence: np.ndarray | ColumnRows | BlockInfluence | StreamedInfluence,
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
    """Bootstrap SEs and the uniform critical value for the columns of ``influence`` (see module docstring): a dense
    units × columns array (or one column), or a structured form read chunk by chunk of rows (``shape``, ``rows``)."""
    if draws < 2:
        raise ValueError(f"the bootstrap needs at least 2 draws (got {draws})")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1) (got {alpha})")
    psi = influence if not isinstance(influence, np.ndarray) or influence.ndim == 2 else influence[:, None]
    units, columns = psi.shape
    # a structured influence (estimators' moments form) gives its rows chunk by chunk: the dense matrix is never held
    rows = psi.rows if hasattr(psi, "rows") else (lambda a, b: psi[a:b])
    n = units if n is None else n
    estimates = np.atleast_1d(np.asarray(estimates, dtype=float))
    chunk = max(1, int(_CHUNK_BYTES // (8 * draws)))
    if cluster is not None:
        if cluster.shape[0] != units:
            raise ValueError("cluster must have one entry per unit (row of the influence matrix)")
        _, inverse = np.unique(cluster, return_inverse=True)
        n_clusters = int(inverse.max()) + 1
        summed = np.zeros((n_clusters, columns))
        step = max(chunk, 1 << 14)
        for start in range(0, units, step):  # in row order: the same additions as one pass over all rows
            np.add.at(summed, inverse[start:start + step], rows(start, min(units, start + step)))
        psi, units, rows = summed, n_clusters, (lambda a, b: summed[a:b])
    rng = np.random.default_rng(seed)
    m = units
    total = np.zeros((draws, columns))
    for start in range(0, m, chunk):
        block = np.ascontiguousarray(rows(start, min(m, start + chunk)))
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
    infl = stored(result, "influence")  # structured (moments) form: rows are evaluated chunk by chunk
    return multiplier_bootstrap(infl if hasattr(infl, "rows") else result.influence, est, n=result.n_units,
                                labels=tuple((c.group, c.time) for c in result.cells), **kwargs)


def bootstrap_aggregate(
    agg: AggregateEffect,
    n_units: int,
    **kwargs,
) -> tuple[BootstrapInference | None, BootstrapInference]:
    """Bootstrap of an aggregation: (uniform band over its levels, e.g. event times, or None when the aggregation
    has no levels; the overall effect). Pass ``cluster=result.clusters`` to draw one multiplier per cluster, as for
    the cells."""
    levels = list(agg.estimates)
    if levels:
        # structured levels (the estimators' moments form) are read chunk by chunk of units: no dense columns
        psi = (agg.influence.rows_view(levels) if isinstance(agg.influence, DeferredColumns)
               else np.column_stack([agg.influence[lvl] for lvl in levels]))
        by_level = multiplier_bootstrap(psi, np.array([agg.estimates[lvl] for lvl in levels]), n=n_units,
                                        labels=tuple(levels), **kwargs)
    else:
        by_level = None
    deferred = stored(agg, "overall_influence")
    if deferred is None:
        raise ValueError("this aggregation carries no influence function for its overall effect")
    overall = multiplier_bootstrap(deferred.rows_view() if isinstance(deferred, DeferredColumn) else np.asarray(deferred),
                                   np.array([agg.overall]), n=n_units, labels=("overall",), **kwargs)
    return by_level, overall


# ----------------------------------------------------------------------------------------------------------------
# Few clusters: the wild cluster bootstrap-t with Webb weights, and randomisation inference over a roll-out.
# ----------------------------------------------------------------------------------------------------------------

#: Webb (2023) six-point distribution: ±√(1/2), ±1, ±√(3/2), each with probability 1/6 (mean 0, variance 1).
WEBB_POINTS = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])


@dataclass(frozen=True)
class WildClusterTest:
    """Wild cluster bootstrap-t test and interval of one linear combination ``λ = cᵀθ`` (see
    :func:`wild_cluster_bootstrap`). ``p_value`` tests ``λ = null`` two-sided; ``p_greater`` / ``p_less`` are
    the one-sided p-values against ``λ > null`` / ``λ < null``; ``tost_p`` is the equivalence p-value
    ``max(p_greater at null − margin, p_less at null + margin)`` when a margin was given."""

    estimate: float
    se: float
    null: float
    statistic: float
    p_value: float
    p_greater: float
    p_less: float
    ci_low: float
    ci_high: float
    alpha: float
    clusters: int
    draws: int
    weights: str
    seed: int | None
    margin: float | None = None
    tost_p: float | None = None


def _studentised_draws(scores: np.ndarray, shares: np.ndarray, groups: np.ndarray, n: int, draws: int,
                       rng: np.random.Generator, kind: str) -> np.ndarray:
    """``t*_b = (Σ_g w_bg s_g / n) / se*_b``, ``se*_b² = G/(G − 1) Σ_g (w_bg s_g − π_g Σ_{h ∈ k(g)} w_bh s_h)² / n²``."""
    g = scores.shape[0]
    out = np.empty(draws)
    chunk = max(1, int(_CHUNK_BYTES // (8 * max(g, 1))))
    for start in range(0, draws, chunk):
        b = min(chunk, draws - start)
        if kind == "webb":
            w = WEBB_POINTS[rng.integers(0, 6, size=(b, g))]
        else:
            w = _multipliers(rng, (b, g), kind)
        ws = w * scores[None, :]
        total = ws.sum(axis=1)
        centred = ws.copy()
        for k in np.unique(groups):
            m = groups == k
            centred[:, m] -= shares[None, m] * ws[:, m].sum(axis=1)[:, None]
        se_b = np.sqrt(g / (g - 1) * (centred**2).sum(axis=1)) / n
        with np.errstate(divide="ignore", invalid="ignore"):
            out[start:start + b] = np.where(se_b > 0, (total / n) / se_b, 0.0)
    return out


def wild_cluster_bootstrap(
    cluster_scores: np.ndarray,
    estimates: np.ndarray | float,
    *,
    n: int,
    contrast: np.ndarray | None = None,
    null: float = 0.0,
    sizes: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    draws: int = 9999,
    seed: int | None = None,
    alpha: float = 0.05,
    weights: str = "webb",
    margin: float | None = None,
) -> WildClusterTest:
    """Wild cluster bootstrap-t for a linear combination of estimates, from the clusters' summed influence functions.

    Input: ``cluster_scores`` ``S`` (G × p, or length G for one estimate), ``S_g = Σ_{i ∈ g} ψ_i`` with
    ``θ̂ − θ ≈ (1/n) Σ_i ψ_i``; the combination ``λ̂ = cᵀθ̂`` has cluster scores ``s_g = cᵀS_g``. Then::

        se  = √(G/(G − 1) · Σ_g s_g²) / n                       (cluster-robust, as the analytic SEs)
        t   = (λ̂ − λ₀) / se
        t*_b = (Σ_g w_bg s_g / n) / se*_b,   se*_b = √(G/(G − 1) · Σ_g (w_bg s_g − π_g Σ_{h ∈ k(g)} w_bh s_h)²) / n
        p   = #{b : |t*_b| ≥ |t|} / B,  p_greater = #{t*_b ≥ t} / B,  p_less = #{t*_b ≤ t} / B
        CI  = λ̂ ± q_{1−α}(|t*|) · se                            (symmetric bootstrap-t, the p-value's dual)

    with i.i.d. cluster weights ``w_bg`` of mean 0 and variance 1 — by default Webb's (2023) six-point
    distribution ±√(1/2), ±1, ±√(3/2) (each 1/6), which, unlike Rademacher weights (2^G distinct draws),
    gives 6^G distinct draws and so a usable distribution with as few as 6–10 clusters. Each bootstrap draw
    perturbs the whole cluster's score, as the wild cluster bootstrap of Cameron, Gelbach & Miller (2008) does
    with residuals; perturbing influence functions (scores) instead of re-estimating is the multiplier or
    "score" wild bootstrap (Kline & Santos 2012). The statistic is studentised in every draw: the perturbed
    scores are re-centred to sum to zero within each of ``groups`` (cluster-level labels, e.g. treated vs
    comparison clusters; one group when not given) — as the scores of an estimate do within the cells it fits —,
    each cluster taking the share ``π_g`` of its group's total (``sizes``, units per cluster, over the group's
    units; equal shares when not given). For a mean (one group) or a difference in means between treated and
    comparison clusters (two groups) this is exactly the bootstrap sample's own cluster-robust variance. The
    test does not impose the null on the scores (the "unrestricted" variant, WCU in MacKinnon & Webb 2017), so
    the same draws give the p-value of any ``λ₀`` and the interval; WCU is known to over-reject somewhat when
    few clusters are treated (MacKinnon & Webb 2017) — with 4 of 8 clusters treated about 6 % at α = 5 %
    (tests/test_few_clusters.py) — which is why the verdicts refuse to decide on ≤ 5 treated clusters without an
    exact randomisation-inference answer.

    ``margin`` (> 0, absolute) adds the TOST equivalence p-value ``max(P*(t* ≥ t₋), P*(t* ≤ t₊))`` with
    ``t_± = (λ̂ − λ₀ ∓ margin) / se`` (Schuirmann 1987, with the bootstrap distribution in place of the normal).
    ``weights``: ``webb`` (default), ``rademacher`` or ``mammen``. Draws are seeded (``default_rng(seed)``).
    """
    if draws < 99:
        raise ValueError(f"the wild cluster bootstrap needs at least 99 draws (got {draws})")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1) (got {alpha})")
    if weights not in ("webb", "rademacher", "mammen"):
        raise ValueError(f"wild bootstrap weights must be webb, rademacher or mammen (got {weights!r})")
    s_mat = np.asarray(cluster_scores, dtype=float)
    s_mat = s_mat[:, None] if s_mat.ndim == 1 else s_mat
    theta = np.atleast_1d(np.asarray(estimates, dtype=float))
    c = np.ones(1) if contrast is None else np.atleast_1d(np.asarray(contrast, dtype=float))
    if s_mat.shape[1] != theta.shape[0] or c.shape[0] != theta.shape[0]:
        raise ValueError(f"cluster_scores has {s_mat.shape[1]} column(s), estimates {theta.shape[0]}, contrast "
                         f"{c.shape[0]}: they must agree")
    g = s_mat.shape[0]
    if g < 2:
        raise ValueError(f"the wild cluster bootstrap needs at least 2 clusters (got {g})")
    if not np.all(np.isfinite(s_mat)):
        raise ValueError("cluster_scores contain non-finite values")
    if margin is not None and not margin > 0:
        raise ValueError(f"margin must be > 0 (got {margin})")
    scores = s_mat @ c
    lam = float(c @ theta)
    grp = np.zeros(g, dtype=int) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
    if grp.shape != (g,):
        raise ValueError(f"groups must give a group for each of the {g} clusters")
    sz = np.ones(g) if sizes is None else np.asarray(sizes, dtype=float)
    if sz.shape != (g,) or np.any(sz <= 0):
        raise ValueError(f"sizes must give a positive size for each of the {g} clusters")
    shares = sz / np.bincount(grp, sz)[grp]
    se = float(np.sqrt(g / (g - 1) * np.sum(scores**2)) / n)
    if not se > 0:
        raise ValueError("the cluster scores are all zero: the combination has no sampling variation to test")
    t_star = _studentised_draws(scores, shares, grp, n, draws, np.random.default_rng(seed), weights)
    t_obs = (lam - null) / se
    tol = 1e-12 * max(1.0, abs(t_obs))
    p = float(np.mean(np.abs(t_star) >= abs(t_obs) - tol))
    p_greater = float(np.mean(t_star >= t_obs - tol))
    p_less = float(np.mean(t_star <= t_obs + tol))
    crit = float(np.quantile(np.abs(t_star), 1 - alpha, method="inverted_cdf"))
    tost = None
    if margin is not None:
        lower = (lam - (null - margin)) / se
        upper = (lam - (null + margin)) / se
        tost = float(max(np.mean(t_star >= lower - tol), np.mean(t_star <= upper + tol)))
    return WildClusterTest(estimate=lam, se=se, null=float(null), statistic=float(t_obs), p_value=p,
                           p_greater=p_greater, p_less=p_less, ci_low=lam - crit * se, ci_high=lam + crit * se,
                           alpha=alpha, clusters=g, draws=draws, weights=weights, seed=seed, margin=margin,
                           tost_p=tost)


@dataclass(frozen=True)
class RandomisationTest:
    """Randomisation inference over which clusters adopt (see :func:`rollout_randomisation_test`)."""

    statistic: float
    p_value: float
    p_greater: float
    p_less: float
    assignments: int
    exact: bool
    draws: int


def _distinct_assignments(adoption: np.ndarray):
    """Every distinct arrangement of the multiset ``adoption`` over its positions (G! / Π m_k! of them)."""
    from itertools import combinations

    values, counts = np.unique(adoption, return_counts=True)
    g = adoption.shape[0]

    def place(free: tuple[int, ...], k: int, current: np.ndarray):
        if k == len(values) - 1:
            current[list(free)] = values[k]
            yield current.copy()
            return
        for chosen in combinations(free, int(counts[k])):
            current[list(chosen)] = values[k]
            rest = tuple(i for i in free if i not in chosen)
            yield from place(rest, k + 1, current)

    yield from place(tuple(range(g)), 0, np.empty(g, dtype=adoption.dtype))


def assignment_count(adoption: np.ndarray) -> int:
    """Number of distinct roll-outs: ``G! / Π_k m_k!`` with ``m_k`` clusters adopting at time ``k``."""
    from math import factorial

    _, counts = np.unique(np.asarray(adoption), return_counts=True)
    total = factorial(int(counts.sum()))
    for m in counts:
        total //= factorial(int(m))
    return total


def rollout_randomisation_test(statistic, adoption: np.ndarray, *, max_exact: int = 20000, draws: int = 9999,
                               seed: int | None = None) -> RandomisationTest:
    """Randomisation inference for a roll-out: permute which clusters adopt (and when), recompute the statistic.

    ``adoption`` holds each cluster's adoption time as assigned (e.g. 0 = never); ``statistic(assignment)`` maps an
    adoption vector of the same length to a number (e.g. the estimate minus the hypothesised effect, computed from
    outcomes from which the hypothesised effect was removed for the clusters the assignment treats — a sharp
    null). Under the null that the assignment was a random permutation of the adoption times across clusters
    (Fisher 1935; for a roll-out, e.g. Abadie, Athey, Imbens & Wooldridge 2020)::

        p = #{π : |T(π)| ≥ |T_obs|} / N,   p_greater = #{π : T(π) ≥ T_obs} / N,   p_less = #{π : T(π) ≤ T_obs} / N

    over all ``N = G! / Π m_k!`` distinct assignments when ``N ≤ max_exact`` (exact); otherwise over the observed
    assignment and ``draws`` uniformly random permutations, ``p = (1 + #{b : |T_b| ≥ |T_obs|}) / (1 + B)``
    (valid, not exact). Ties count as at least as extreme.
    """
    adoption = np.asarray(adoption)
    if adoption.ndim != 1 or adoption.shape[0] < 2:
        raise ValueError("adoption must be a vector with one adoption time per cluster (at least 2 clusters)")
    if np.unique(adoption).size < 2:
        raise ValueError("every cluster has the same adoption time: there is nothing to permute")
    t_obs = float(statistic(adoption.copy()))
    if not np.isfinite(t_obs):
        raise ValueError("the statistic of the observed assignment is not finite")
    n_assign = assignment_count(adoption)
    tol = 1e-12 * max(1.0, abs(t_obs))
    if n_assign <= max_exact:
        values = np.array([float(statistic(a)) for a in _distinct_assignments(adoption)])
        return RandomisationTest(statistic=t_obs, p_value=float(np.mean(np.abs(values) >= abs(t_obs) - tol)),
                                 p_greater=float(np.mean(values >= t_obs - tol)),
                                 p_less=float(np.mean(values <= t_obs + tol)), assignments=n_assign, exact=True,
                                 draws=n_assign)
    if draws < 99:
        raise ValueError(f"randomisation inference by sampling needs at least 99 draws (got {draws})")
    rng = np.random.default_rng(seed)
    values = np.array([float(statistic(rng.permutation(adoption))) for _ in range(draws)])
    return RandomisationTest(statistic=t_obs,
                             p_value=float((1 + np.sum(np.abs(values) >= abs(t_obs) - tol)) / (1 + draws)),
                             p_greater=float((1 + np.sum(values >= t_obs - tol)) / (1 + draws)),
                             p_less=float((1 + np.sum(values <= t_obs + tol)) / (1 + draws)),
                             assignments=n_assign, exact=False, draws=draws)
