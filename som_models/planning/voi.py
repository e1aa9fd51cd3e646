"""Value of information: the expected value of partial perfect information (EVPPI) per assumption.

The decision is *invest / do not invest* at the sign of the NPV (per payer, or in total): with the NPV ``Y`` a
function of the uncertain inputs ``θ = (φ, ψ)`` — ``φ`` the input of interest (one assumption), ``ψ`` the rest —
the value of learning ``φ`` exactly before deciding is::

    EVPPI(φ) = E_φ[ max(0, E[Y | φ]) ] − max(0, E[Y])

(Raiffa & Schlaifer 1961; Ades, Lu & Claxton 2004). The conditional expectation is estimated by the
**regression method** of Strong, Oakley & Brennan (2014, *Medical Decision Making* 34:311–326): regress the
Monte Carlo draws of ``Y`` on ``φ`` with a smooth fit ``g(φ) ≈ E[Y | φ]`` and take ``EVPPI = mean(max(0, g)) −
max(0, mean(g))``. The fit here is a cubic regression spline (natural-spline basis, knots at quantiles of ``φ``;
least squares) — Strong et al. use a GAM; for one input the two agree closely. Its Monte Carlo standard error
is estimated, as Strong et al. (§2.4) suggest, from the fitted values' sampling variability: draws of the
coefficients from their least-squares covariance give draws of the EVPPI, whose standard deviation is the SE.

The inputs ``φ`` come from the projection's own Monte Carlo (:func:`som_models.projection.monte_carlo`, same seed
and chunking, so the NPV draws are identical): ``success_rate`` (the drawn success rate), ``consequence:<item>``
(the item's discounted sum of units: under ``consequence_correlation: item`` a linear function of the item's
common ``z``; under ``independent`` an index of the whole vector), ``course:<item>`` (the item's course-year
effects summed), ``price:<item>`` (the relative price factor), ``cost:<line>`` and ``fixed:<line>`` (a fixed-cost line's yearly
amount, when it states a ``range``). Under ``item`` correlation the
course-year profile is drawn with the item's own ``z`` (:class:`som_models.projection.montecarlo._Inputs`), so it is
one uncertain input with the effect profile: it is reported once, as ``consequence:<item>`` (two entries would
show the same EVPPI twice and suggest two things to learn); ``course:<item>`` appears on its own only when the
draws are independent or the item's effect profile carries no uncertainty.

:func:`nested_evppi` is the brute-force check: an outer sample of ``φ`` and, for each, an inner Monte Carlo of
``ψ`` giving ``E[Y | φ]`` (biased upwards by the inner noise, ``O(1/n_inner)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from som_models.parameters.schema import PAYERS, ParameterSet

KEYS = (*PAYERS, "total")


@dataclass(frozen=True)
class Evppi:
    evppi: float
    se: float
    fitted_variance_share: float  # R² of the fit: the share of Var(Y) the input explains

    def to_dict(self) -> dict[str, float]:
        return {"evppi": self.evppi, "se": self.se, "r2": self.fitted_variance_share}


def _spline_basis(x: np.ndarray, knots: int) -> np.ndarray:
    """Natural cubic spline basis (Hastie, Tibshirani & Friedman 2009, eq. 5.4–5.5) with knots at quantiles."""
    qs = np.unique(np.quantile(x, np.linspace(0.05, 0.95, knots)))
    cols = [np.ones_like(x), x]
    if len(qs) >= 3:
        last, before = qs[-1], qs[-2]

        def d(k: float) -> np.ndarray:
            return (np.maximum(x - k, 0) ** 3 - np.maximum(x - last, 0) ** 3) / (last - k)

        d_before = d(before)
        cols += [d(k) - d_before for k in qs[:-2]]
    return np.column_stack(cols)


def evppi_regression(phi: np.ndarray, y: np.ndarray, *, knots: int = 6, se_draws: int = 500,
                     seed: int = 0) -> Evppi:
    """EVPPI of ``phi`` for the decision at the sign of ``y`` by the regression method (module docstring)."""
    phi = np.asarray(phi, dtype=float)
    y = np.asarray(y, dtype=float)
    if phi.shape != y.shape or phi.ndim != 1:
        raise ValueError(f"phi and y must be vectors of equal length, got {phi.shape} and {y.shape}")
    n = len(y)
    if n < 50:
        raise ValueError(f"at least 50 Monte Carlo draws are needed for the regression EVPPI, got {n}")
    if np.ptp(phi) == 0:
        return Evppi(0.0, 0.0, 0.0)
    scale = np.std(phi)
    X = _spline_basis((phi - phi.mean()) / scale, knots)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    fitted = X @ coef
    value = float(np.mean(np.maximum(fitted, 0)) - max(0.0, float(np.mean(fitted))))
    resid = y - fitted
    dof = max(1, n - X.shape[1])
    sigma2 = float(resid @ resid) / dof
    xtx_inv = np.linalg.pinv(X.T @ X)
    cov = sigma2 * xtx_inv
    rng = np.random.default_rng(seed)
    try:
        chol = np.linalg.cholesky(cov + 1e-12 * np.eye(len(coef)) * max(1.0, float(np.abs(cov).max())))
    except np.linalg.LinAlgError:
        chol = np.diag(np.sqrt(np.clip(np.diag(cov), 0, None)))
    sims = coef[None, :] + rng.standard_normal((se_draws, len(coef))) @ chol.T
    fits = sims @ X.T
    vals = np.mean(np.maximum(fits, 0), axis=1) - np.maximum(0.0, fits.mean(axis=1))
    var_y = float(np.var(y))
    r2 = float(np.var(fitted) / var_y) if var_y > 0 else 0.0
    return Evppi(max(value, 0.0), float(np.std(vals)), r2)


def nested_evppi(draw_phi: Callable[[np.random.Generator, int], np.ndarray],
                 npv_given: Callable[[np.ndarray, np.random.Generator, int], np.ndarray],
                 *, outer: int, inner: int, seed: int) -> tuple[float, float]:
    """Brute-force two-level Monte Carlo EVPPI: ``outer`` draws of φ, ``inner`` draws of the rest for each.

    ``npv_given(phi_k, rng, inner)`` returns ``inner`` NPV draws with φ fixed at ``phi_k``. Returns ``(EVPPI,
    se)``; ``se`` is the outer-sample standard error of ``mean(max(0, m̂_k))`` (the ``max(0, E[Y])`` term uses
    the grand mean, whose error is of smaller order)."""
    rng = np.random.default_rng(seed)
    phis = draw_phi(rng, outer)
    means = np.array([float(np.mean(npv_given(phis[k], rng, inner))) for k in range(outer)])
    pos = np.maximum(means, 0)
    value = float(pos.mean() - max(0.0, float(means.mean())))
    return value, float(pos.std(ddof=1) / math.sqrt(outer))


def projection_draws(params: ParameterSet, *, draws: int, seed: int, committees: bool = False):
    """The projection Monte Carlo's inputs (one vector per assumption, see the module docstring) and its NPV draws
    (``draws × 4``: kommune, region, stat, total) — the same draws as :func:`som_models.projection.monte_carlo`.
    With ``committees``, a third value: the NPV per udvalg account (``payer/udvalg``, the ledger's labels) and
    draw, for every account with a flow in some draw — from the udvalg ledger's own attribution
    (:func:`som_models.projection.ledger.account_flows`, the accounts add up to their payer in every draw)."""
    from som_models.projection.engine import compile_calculation, evaluate
    from som_models.projection.ledger import account_flows, label
    from som_models.projection.montecarlo import CHUNK, _Inputs, _npv4

    spec = params.monte_carlo
    c = compile_calculation(params)
    inp = _Inputs(c, spec.range_distribution)
    children = np.random.SeedSequence(seed).spawn(-(-draws // CHUNK))
    npv = np.empty((draws, len(KEYS)))
    inputs: dict[str, list[np.ndarray]] = {}
    by_account: dict[str, list[np.ndarray]] = {}
    stake: dict[str, bool] = {}
    T = c.units.shape[1]
    disc = c.factors[:T] if len(c.factors) >= T else np.ones(T)
    for k, child in enumerate(children):
        n = min(CHUNK, draws - k * CHUNK)
        s, units, pf, costs, course, fixed = inp.draw(np.random.default_rng(child), n, spec.consequence_correlation)
        if committees:
            ev, accts, Y = account_flows(c, s, units, pf, costs, course, fixed)
            npv[k * CHUNK:k * CHUNK + n] = _npv4(ev)
            for a, (payer, udvalg) in enumerate(accts):
                key = label(payer, udvalg)
                by_account.setdefault(key, []).append(Y[:, a, :] @ c.factors)
                stake[key] = stake.get(key, False) or bool(np.any(Y[:, a, :] != 0))
        else:
            npv[k * CHUNK:k * CHUNK + n] = _npv4(evaluate(c, s, units, pf, costs, course, fixed))
        inputs.setdefault("success_rate", []).append(s)
        for i, item in enumerate(c.items):
            if np.any(c.se[i] > 0):
                inputs.setdefault(f"consequence:{item}", []).append((units[:, i, :] * disc[None, :]).sum(axis=1))
            if inp.hi[i] > inp.lo[i]:
                inputs.setdefault(f"price:{item}", []).append(pf[:, i])
            shared = spec.consequence_correlation == "item" and np.any(c.se[i] > 0)  # course drawn with the item's z
            if course is not None and np.any(c.course_se[i] > 0) and not shared:
                inputs.setdefault(f"course:{item}", []).append(course[:, i, :].sum(axis=1))
        for j, line in enumerate(c.costs):
            if inp.cost_hi[j] > inp.cost_lo[j]:
                inputs.setdefault(f"cost:{line.label}", []).append(costs[:, j])
        for j, fx in enumerate(c.fixed_lines):
            if fixed is not None and inp.fixed_hi[j] > inp.fixed_lo[j]:
                inputs.setdefault(f"fixed:{fx.label}", []).append(fixed[:, j])
    out = {k: np.concatenate(v) for k, v in inputs.items()}
    if inp.s_se <= 0:
        out.pop("success_rate", None)
    if not committees:
        return out, npv
    return out, npv, {k: np.concatenate(v) for k, v in by_account.items() if stake[k]}


def value_of_information(params: ParameterSet, *, draws: int = 20_000, seed: int | None = None,
                         knots: int = 6) -> dict[str, Any]:
    """EVPPI per uncertain input and payer (kommune, region, stat, total) by the regression method, with the
    expected value of perfect information (EVPI, all inputs at once) as the ceiling. JSON-ready."""
    seed = int(seed if seed is not None else params.monte_carlo.seed)
    inputs, npv, committees = projection_draws(params, draws=draws, seed=seed, committees=True)
    by: dict[str, dict[str, Any]] = {}
    for name, phi in inputs.items():
        by[name] = {key: evppi_regression(phi, npv[:, k], knots=knots, seed=seed).to_dict()
                    for k, key in enumerate(KEYS)}
        by[name]["udvalg"] = {key: evppi_regression(phi, y, knots=knots, seed=seed).to_dict()
                              for key, y in committees.items()}
    evpi = {key: float(np.mean(np.maximum(npv[:, k], 0)) - max(0.0, float(npv[:, k].mean())))
            for k, key in enumerate(KEYS)}
    ranking = sorted(by, key=lambda n: -by[n]["total"]["evppi"])
    return {"method": "regression EVPPI (Strong, Oakley & Brennan 2014), natural cubic spline with "
                      f"{knots} knots; decision: invest iff E[NPV] ≥ 0", "draws": draws, "seed": seed,
            "by_assumption": by, "evpi": evpi, "ranking": ranking,
            "mean_npv": {key: float(npv[:, k].mean()) for k, key in enumerate(KEYS)},
            "udvalg": {"keys": list(committees), "evpi": {k: float(np.mean(np.maximum(y, 0)) - max(0.0, float(y.mean())))
                                                          for k, y in committees.items()},
                       "mean_npv": {k: float(y.mean()) for k, y in committees.items()},
                       "decision": "per udvalg (payer/udvalg account of the udvalg ledger): would the udvalg's own "
                                   "NPV be ≥ 0"}}


def evppi_gaussian(mean: float, sd_explained: float) -> float:
    """Closed form for a normal conditional mean ``E[Y | φ] ~ N(μ, σ²)``: ``σφ(μ/σ) + μΦ(μ/σ) − max(0, μ)``."""
    from scipy import stats

    if sd_explained <= 0:
        return 0.0
    r = mean / sd_explained
    return float(sd_explained * stats.norm.pdf(r) + mean * stats.norm.cdf(r) - max(0.0, mean))


__all__ = ["Evppi", "evppi_gaussian", "evppi_regression", "nested_evppi", "projection_draws", "value_of_information"]

