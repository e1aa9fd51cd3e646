"""Two-period (2×2) difference-in-differences estimators of the ATT with covariates, panel data.

Notation (Sant'Anna & Zhao 2020, section 3): ``ΔY = Y_post − Y_pre``, ``D`` = 1 for the treated group,
``X`` covariates (with an intercept, measured in the pre/base period), ``w`` case weights normalised to mean
one, ``p(X)`` the propensity score, ``m(X)`` a linear regression of ``ΔY`` on ``X`` among comparison units.
Every estimator returns the ATT and its influence function ``ψ`` (``ATT̂ − ATT ≈ mean(ψ)``), which includes
the estimation effect of the nuisance models, so ``se = sqrt(Σψ²)/n``.

* ``reg`` — outcome regression (Heckman, Ichimura & Todd 1997):
  ``ATT = mean(w D (ΔY − m(X))) / mean(w D)``.
* ``ipw`` — inverse probability weighting with normalised (Hajek) weights (Abadie 2005; SZ 2020 eq. 2.4):
  ``ATT = mean(w₁ ΔY)/mean(w₁) − mean(w₀ ΔY)/mean(w₀)``, ``w₁ = w D``, ``w₀ = w p(X)(1 − D)/(1 − p(X))``,
  with a logistic propensity score fitted by maximum likelihood.
* ``ipw-ht`` — inverse probability weighting with unnormalised (Horvitz–Thompson) weights, Abadie's (2005)
  original estimator (R ``DRDID::ipw_did_panel``):
  ``ATT = [mean(w₁ ΔY) − mean(w₀ ΔY)] / mean(w D)``, same ``w₁``, ``w₀`` and logit as ``ipw``; the comparison
  weights are not rescaled to sum to the treated share, so the estimator is not invariant to adding a constant
  to ``ΔY`` and is usually less precise than ``ipw`` (SZ 2020 §2).
* ``dr`` — the locally efficient doubly robust estimator (SZ 2020 eq. 3.1; what R ``did::att_gt`` uses for
  ``est_method="dr"`` and Stata ``drdid, dripw``): logistic propensity score, OLS outcome regression,
  ``ATT = mean(w₁(ΔY − m))/mean(w₁) − mean(w₀(ΔY − m))/mean(w₀)``.
* ``dr-imp`` — the *improved* locally efficient DR estimator (SZ 2020 section 3.1; R ``DRDID::drdid``
  default, Stata ``drimp``): propensity score by inverse probability tilting and outcome regression by weighted
  least squares with weights ``p/(1 − p)``; the nuisance estimation effects then vanish, so
  ``ψ = w₁(ΔY − m − η₁)/mean(w₁) − w₀(ΔY − m − η₀)/mean(w₀)``.

As in R ``DRDID``, propensity scores are capped at ``1 − 10⁻⁶`` and comparison units with ``p ≥ 0.995`` get
weight zero (trimming). The comparison-group estimators without covariates reduce to the difference of mean
changes.

References: Sant'Anna, P. H. C. and Zhao, J. (2020), "Doubly robust difference-in-differences estimators",
*Journal of Econometrics* 219(1), 101–122; Abadie, A. (2005), *Review of Economic Studies* 72(1), 1–19.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from som_models.estimators._numerics import NotEstimable, inv_spd, ipt, logit

METHODS = ("reg", "ipw", "dr", "dr-imp", "ipw-ht")
TRIM_LEVEL = 0.995
PS_CAP = 1 - 1e-6


@dataclass(frozen=True, eq=False)
class TwoByTwo:
    """ATT of one 2×2 comparison with its influence function over the units used (treated, then comparison)."""

    att: float
    influence: np.ndarray
    n_treated: int
    n_control: int
    method: str
    converged: bool = True
    trimmed: int = 0

    @property
    def se(self) -> float:
        """``sqrt(Σψ²)/n`` (divide-by-n convention, as R ``did``; R ``DRDID`` prints ``sd(ψ)/√n``)."""
        n = self.influence.shape[0]
        return float(np.sqrt(np.sum(self.influence**2)) / n)


@dataclass
class Nuisance:
    """Propensity score and regression pieces that depend only on the sample and the covariates.

    Reused across the ATT(g, t) cells that share the same treated units, comparison units and covariates.
    """

    x: np.ndarray
    d: np.ndarray
    w: np.ndarray
    method: str
    ps: np.ndarray | None = None
    ps_score: np.ndarray | None = None  # w (d − p): the logit score is ps_score · x
    ps_hess: np.ndarray | None = None  # (X' diag(w p (1 − p)) X / n)⁻¹
    beta: np.ndarray | None = None  # logit coefficients (warm start for the next fit)
    or_weights: np.ndarray | None = None  # weights of the comparison-group regression
    or_gram_inv: np.ndarray | None = None  # (X' diag(or_weights) X / n)⁻¹
    converged: bool = True
    trim: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


def fit_nuisance(x: np.ndarray, d: np.ndarray, w: np.ndarray | None, method: str,
                 start: np.ndarray | None = None) -> Nuisance:
    """Fit the propensity score (logit or IPT) and prepare the comparison-group regression of one 2×2 sample."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)} (got {method!r})")
    n = d.shape[0]
    w = np.ones(n) if w is None else w / np.mean(w)
    nu = Nuisance(x=x, d=d, w=w, method=method)
    if method in ("ipw", "dr", "dr-imp", "ipw-ht"):
        beta, ps, converged = logit(x, d, w, start=start)
        nu.beta = beta
        if method == "dr-imp":
            _, ps, conv2 = ipt(x, d, w, start=beta)
            converged = converged and conv2
        ps = np.minimum(ps, PS_CAP)
        nu.ps, nu.converged = ps, converged
        nu.trim = np.where(d == 1, True, ps < TRIM_LEVEL)
        if method in ("ipw", "dr", "ipw-ht"):
            info = x.T @ (x * (ps * (1 - ps) * w)[:, None])
            nu.ps_hess = inv_spd(info, "propensity score") * n
            nu.ps_score = w * (d - ps)
    if method in ("reg", "dr"):
        nu.or_weights = w * (1 - d)
    elif method == "dr-imp":
        ps_imp = _fitted(nu.ps, "ps", method)
        nu.or_weights = w * (1 - d) * ps_imp / (1 - ps_imp)
    if nu.or_weights is not None:
        gram = x.T @ (x * nu.or_weights[:, None]) / n
        nu.or_gram_inv = inv_spd(gram, "outcome regression")
    return nu


def _fitted(value: np.ndarray | None, name: str, method: str) -> np.ndarray:
    """A nuisance piece that ``method`` needs; an error when :func:`fit_nuisance` did not fit it."""
    if value is None:
        raise ValueError(f"Nuisance.{name} is missing: method {method!r} needs it (fit it with fit_nuisance)")
    return value


def att_2x2(dy: np.ndarray, nu: Nuisance) -> TwoByTwo:
    """ATT and influence function of one 2×2 comparison, given the outcome changes and the fitted nuisance."""
    x, d, w, method = nu.x, nu.d, nu.w, nu.method
    n = d.shape[0]
    n1, n0 = int(d.sum()), int(n - d.sum())
    if method in ("reg", "dr", "dr-imp"):
        or_weights = _fitted(nu.or_weights, "or_weights", method)
        or_gram_inv = _fitted(nu.or_gram_inv, "or_gram_inv", method)
        coef = or_gram_inv @ (x.T @ (or_weights * dy) / n)
        m = x @ coef
    if method == "reg":
        w1 = w * d
        mw1 = w1.mean()
        eta_t = np.mean(w1 * dy) / mw1
        eta_c = np.mean(w1 * m) / mw1
        ols_rep_m1 = _ols_lin_rep_times(x, or_weights * (dy - m), or_gram_inv, x.T @ w1 / n)
        psi = (w1 * (dy - eta_t)) / mw1 - (w1 * (m - eta_c) + ols_rep_m1) / mw1
        return TwoByTwo(float(eta_t - eta_c), psi, n1, n0, method)
    ps, trim = _fitted(nu.ps, "ps", method), _fitted(nu.trim, "trim", method)
    w1 = w * d
    w0 = w * ps * (1 - d) / (1 - ps) * trim
    mw1, mw0 = w1.mean(), w0.mean()
    if mw0 <= 0:
        raise NotEstimable("no comparison units left after propensity-score trimming")
    trimmed = int(np.sum((d == 0) & ~trim))
    if method == "ipw":
        eta_t = np.mean(w1 * dy) / mw1
        eta_c = np.mean(w0 * dy) / mw0
        m2 = x.T @ (w0 * (dy - eta_c)) / n
        psi = w1 * (dy - eta_t) / mw1 - (w0 * (dy - eta_c) + _ps_lin_rep_times(x, nu, m2)) / mw0
        return TwoByTwo(float(eta_t - eta_c), psi, n1, n0, method, nu.converged, trimmed)
    if method == "ipw-ht":
        return _ipw_ht(dy, x, nu, w1, w0, n1, n0, trimmed)
    r = dy - m
    eta_t = np.mean(w1 * r) / mw1
    eta_c = np.mean(w0 * r) / mw0
    if method == "dr-imp":
        psi = w1 * (r - eta_t) / mw1 - w0 * (r - eta_c) / mw0
        return TwoByTwo(float(eta_t - eta_c), psi, n1, n0, method, nu.converged, trimmed)
    # traditional locally efficient DR with the estimation effects of the logit and the OLS
    ols_resid_w = or_weights * r
    m1 = x.T @ w1 / n
    m3 = x.T @ w0 / n
    m2 = x.T @ (w0 * (r - eta_c)) / n
    inf_treat = (w1 * (r - eta_t) - _ols_lin_rep_times(x, ols_resid_w, or_gram_inv, m1)) / mw1
    inf_cont = (w0 * (r - eta_c) + _ps_lin_rep_times(x, nu, m2) - _ols_lin_rep_times(x, ols_resid_w, or_gram_inv, m3)) / mw0
    return TwoByTwo(float(eta_t - eta_c), inf_treat - inf_cont, n1, n0, method, nu.converged, trimmed)


def _ipw_ht(dy: np.ndarray, x: np.ndarray, nu: Nuisance, w1: np.ndarray, w0: np.ndarray, n1: int, n0: int,
            trimmed: int) -> TwoByTwo:
    """Unnormalised (Horvitz–Thompson) IPW DiD (Abadie 2005) and its influence function.

    ``ATT = mean((w₁ − w₀) ΔY) / mean(w₁)``; with ``l_i`` the logit's linear representation,
    ``ψ = [(w₁ − w₀) ΔY − l' M − w₁ ATT] / mean(w₁)``, ``M = mean(w₀ ΔY x)`` (the derivative of the
    comparison term with respect to the logit coefficients). As R ``DRDID::ipw_did_panel``.
    """
    n = dy.shape[0]
    mw1 = w1.mean()
    att = float(np.mean((w1 - w0) * dy) / mw1)
    m = x.T @ (w0 * dy) / n
    psi = ((w1 - w0) * dy - _ps_lin_rep_times(x, nu, m) - w1 * att) / mw1
    return TwoByTwo(att, psi, n1, n0, "ipw-ht", nu.converged, trimmed)


def _ps_lin_rep_times(x: np.ndarray, nu: Nuisance, v: np.ndarray) -> np.ndarray:
    """``[w(D − p) x' (X'WX/n)⁻¹] v`` — the logit's asymptotic linear representation times ``v``."""
    ps_score = _fitted(nu.ps_score, "ps_score", nu.method)
    ps_hess = _fitted(nu.ps_hess, "ps_hess", nu.method)
    return ps_score * (x @ (ps_hess @ v))


def _ols_lin_rep_times(x: np.ndarray, resid_w: np.ndarray, gram_inv: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``[w(1−D)(ΔY − m) x' (X'WX/n)⁻¹] v`` without forming the n × k matrix."""
    return resid_w * (x @ (gram_inv @ v))


def unconditional_2x2(dy: np.ndarray, d: np.ndarray, w: np.ndarray | None = None) -> TwoByTwo:
    """Difference of (weighted) mean changes, ``ψ = w D (ΔY − μ₁)/mean(wD) − w(1−D)(ΔY − μ₀)/mean(w(1−D))``."""
    n = d.shape[0]
    w = np.ones(n) if w is None else w / np.mean(w)
    w1, w0 = w * d, w * (1 - d)
    mw1, mw0 = w1.mean(), w0.mean()
    mu1, mu0 = np.mean(w1 * dy) / mw1, np.mean(w0 * dy) / mw0
    psi = w1 * (dy - mu1) / mw1 - w0 * (dy - mu0) / mw0
    return TwoByTwo(float(mu1 - mu0), psi, int(d.sum()), int(n - d.sum()), "unconditional")


def drdid_panel(
    data: pl.DataFrame,
    *,
    outcome: str,
    id_col: str,
    time_col: str,
    treat_col: str,
    covariates: list[str] | tuple[str, ...] = (),
    method: str = "dr",
    weight_col: str | None = None,
) -> TwoByTwo:
    """Two-period panel ATT from a long frame with exactly two periods (the earlier is the pre period).

    Units must be observed in both periods (others are dropped); ``treat_col`` is 0/1 and constant within
    units; covariates are taken from the pre period (an intercept is added). Example (LaLonde–CPS, SZ 2020):
    ``drdid_panel(nsw, outcome="re", id_col="id", time_col="year", treat_col="experimental",
    covariates=["age", "educ", "black", "married", "nodegree", "hisp", "re74"], method="dr-imp")``.
    """
    from som_models.estimators.panel import check_columns

    cols = [outcome, id_col, time_col, treat_col, *covariates] + ([weight_col] if weight_col else [])
    check_columns(data, cols, numeric=[outcome, time_col, treat_col, *covariates] + ([weight_col] if weight_col else []))
    periods = sorted(data.get_column(time_col).unique().drop_nulls().to_list())
    if len(periods) != 2:
        raise ValueError(f"column {time_col!r} must hold exactly two periods for a 2×2 DiD (found {len(periods)})")
    pre, post = periods
    keep = [id_col, treat_col, *covariates] + ([weight_col] if weight_col else [])
    a = data.filter(pl.col(time_col) == pre).select(*keep, pl.col(outcome).cast(pl.Float64).alias("_y0"))
    b = data.filter(pl.col(time_col) == post).select(id_col, pl.col(outcome).cast(pl.Float64).alias("_y1"),
                                                     pl.col(treat_col).alias("_d1"))
    wide = a.join(b, on=id_col, how="inner").drop_nulls(["_y0", "_y1"])
    if wide.height == 0:
        raise ValueError("no unit is observed in both periods")
    if wide.filter(pl.col(treat_col) != pl.col("_d1")).height:
        raise ValueError(f"column {treat_col!r} must be constant within each unit")
    d = wide.get_column(treat_col).cast(pl.Float64).to_numpy()
    if not np.isin(d, (0.0, 1.0)).all():
        raise ValueError(f"column {treat_col!r} must be 0/1")
    for c in covariates:
        if wide.get_column(c).null_count():
            raise ValueError(f"covariate {c!r} has missing values in the pre period")
    dy = wide.get_column("_y1").to_numpy() - wide.get_column("_y0").to_numpy()
    w = wide.get_column(weight_col).cast(pl.Float64).to_numpy() if weight_col else None
    if not covariates and method in METHODS:
        x = np.ones((wide.height, 1))
    else:
        x = np.column_stack([np.ones(wide.height)] + [wide.get_column(c).cast(pl.Float64).to_numpy() for c in covariates])
    if d.sum() == 0 or d.sum() == d.shape[0]:
        raise ValueError(f"column {treat_col!r} needs both treated (1) and comparison (0) units")
    if method == "unconditional":
        return unconditional_2x2(dy, d, w)
    return att_2x2(dy, fit_nuisance(x, d, w, method))
