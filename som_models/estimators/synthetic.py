"""Known-truth staggered-adoption panels for estimator tests, coverage studies and benchmarks.

``staggered_panel`` draws ``n`` units over ``periods`` consecutive years. Unit ``i`` has covariates
``x1 … x_k`` (x1 binary "sex", x2 standardised "birth year", the rest normal/binary; if ``time_varying`` the
last one drifts by period), a cohort ``G_i`` (first treated year, 0 = never treated) and outcome::

    Y_it = α_i + λ_t + (t − t₀)/(T − 1) · κ · (x_i'β) + τ(t − G_i) 1{t ≥ G_i} + ε_it

with ``τ(e) = effect + slope · e``. Treatment take-up depends on ``x'β`` when ``confounded`` is true, so
parallel trends hold only conditionally on ``x`` (the unconditional estimator is then biased and the
doubly robust one is not). Because effects are homogeneous across cohorts, the true ATT(g, t) is ``τ(t − g)``
and the true event-time effect is ``τ(e)``. Generation is vectorised (1 M units × 12 years in seconds).
"""

from __future__ import annotations

import numpy as np
import polars as pl


def true_effect(e: int | np.ndarray, effect: float = -1.0, slope: float = -0.2):
    """Planted effect ``τ(e) = effect + slope · e`` for ``e ≥ 0`` (0 before treatment)."""
    e = np.asarray(e)
    return np.where(e >= 0, effect + slope * e, 0.0)


def staggered_panel(
    n: int,
    *,
    periods: int = 12,
    first_year: int = 2010,
    cohorts: tuple[int, ...] | None = None,
    never_share: float = 0.5,
    effect: float = -1.0,
    slope: float = -0.2,
    n_covariates: int = 5,
    time_varying: bool = True,
    confounded: bool = True,
    trend_strength: float = 1.0,
    noise: float = 1.0,
    seed: int = 0,
) -> pl.DataFrame:
    """Long panel ``person_id, year, y, first_treat, x1 … x_k`` (sorted by person and year)."""
    rng = np.random.default_rng(seed)
    years = np.arange(first_year, first_year + periods)
    if cohorts is None:
        cohorts = tuple(int(y) for y in years[3:-2])
    k = max(n_covariates, 0)
    x = np.empty((n, k))
    for j in range(k):
        if j == 0:
            x[:, j] = rng.integers(0, 2, n)
        elif j == 1:
            x[:, j] = rng.standard_normal(n)
        elif j % 2 == 0:
            x[:, j] = rng.standard_normal(n)
        else:
            x[:, j] = rng.random(n) < 0.3
    beta = np.array([0.5, -0.6, 0.4, 0.3, -0.5, 0.2, 0.1][:k] + [0.1] * max(0, k - 7))
    index = x @ beta if k else np.zeros(n)
    tilt = (index - index.mean()) / (index.std() + 1e-12) if confounded and k else np.zeros(n)
    p_treat = 1 / (1 + np.exp(-(np.log((1 - never_share) / never_share) + 0.8 * tilt)))
    treated = rng.random(n) < p_treat
    g = np.where(treated, rng.choice(np.asarray(cohorts), n), 0)
    alpha = rng.standard_normal(n) + 0.5 * tilt
    lam = np.linspace(0.0, 1.0, periods)
    frac = (years - first_year) / max(periods - 1, 1)
    y = (alpha[:, None] + lam[None, :] + trend_strength * frac[None, :] * index[:, None]
         + true_effect(years[None, :] - np.where(g > 0, g, 10**6)[:, None], effect, slope)
         + noise * rng.standard_normal((n, periods)))
    cols = {
        "person_id": np.repeat(np.arange(1, n + 1, dtype=np.int64), periods),
        "year": np.tile(years.astype(np.int64), n),
        "y": y.ravel(),
        "first_treat": np.repeat(g.astype(np.int64), periods),
    }
    for j in range(k):
        if time_varying and j == k - 1 and k > 1:
            drift = rng.standard_normal(n) * 0.1
            cols[f"x{j + 1}"] = (x[:, j][:, None] + drift[:, None] * np.arange(periods)[None, :]).ravel()
        else:
            cols[f"x{j + 1}"] = np.repeat(x[:, j], periods)
    return pl.DataFrame(cols)
