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
from typing import Any

import numpy as np
import polars as pl
from scipy.special import expit

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
    ps_hess: np.ndarray | None = None  # (X' diag(w p (1 − p)) X / n)⁻¹
    beta: np.ndarray | None = None  # logit coefficients (warm start for the next fit)
    ps_beta: np.ndarray | None = None  # coefficients of the propensity index: logit, or IPT for dr-imp
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
        nu.ps_beta = beta
        if method == "dr-imp":
            nu.ps_beta, ps, conv2 = ipt(x, d, w, start=beta)
            converged = converged and conv2
        ps = np.minimum(ps, PS_CAP)
        nu.ps, nu.converged = ps, converged
        nu.trim = np.where(d == 1, True, ps < TRIM_LEVEL)
        if method in ("ipw", "dr", "ipw-ht"):
            info = x.T @ (x * (ps * (1 - ps) * w)[:, None])
            nu.ps_hess = inv_spd(info, "propensity score") * n
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


@dataclass(frozen=True, eq=False)
class InfluenceFormula:
    """A fitted 2×2: the ATT and the cell-level constants of its influence function, so that ``ψ_i`` can be
    evaluated for any subset of the units from the unit's own ``(x_i, d_i, w_i, ΔY_i)`` (:meth:`psi`) — e.g. in
    chunks of persons, without holding the sample's influence vector.

    ``w`` is the case weight normalised over the fitted sample (``w / mean(w)``, 1 without weights); the
    propensity score is ``p_i = min(expit(x_i'β), 1 − 10⁻⁶)`` with ``β`` = ``ps_beta`` (logit, or IPT for
    ``dr-imp``), ``m_i = x_i'γ`` with ``γ`` = ``coef`` (comparison-group regression). With ``w₁ = w D``,
    ``w₀ = w p (1 − D)/(1 − p) · 1{D = 1 or p < 0.995}``, ``r = ΔY − m``, ``o = w (1 − D)`` (the OLS weights) and
    ``l_v = x'v`` (the linear representations times constant vectors ``v``)::

        reg     ψ = [w₁(ΔY − η_t) − w₁(m − η_c) − o r l_{v_or1}] / mean(w₁)
        ipw     ψ = w₁(ΔY − η_t)/mean(w₁) − [w₀(ΔY − η_c) + w(D − p) l_{v_ps}] / mean(w₀)
        ipw-ht  ψ = [(w₁ − w₀)ΔY − w(D − p) l_{v_ps} − w₁ ATT] / mean(w₁)
        dr      ψ = [w₁(r − η_t) − o r l_{v_or1}]/mean(w₁) − [w₀(r − η_c) + w(D − p) l_{v_ps} − o r l_{v_or0}]/mean(w₀)
        dr-imp  ψ = w₁(r − η_t)/mean(w₁) − w₀(r − η_c)/mean(w₀)

    (Sant'Anna & Zhao 2020, §3 and appendix; the same expressions as R ``DRDID``'s panel estimators.)
    """

    method: str
    att: float
    eta_t: float
    eta_c: float
    mw1: float
    mw0: float
    n_treated: int
    n_control: int
    converged: bool = True
    trimmed: int = 0
    ps_beta: np.ndarray | None = None
    coef: np.ndarray | None = None
    v_ps: np.ndarray | None = None
    v_or1: np.ndarray | None = None
    v_or0: np.ndarray | None = None

    def _ps(self, x: np.ndarray) -> np.ndarray:
        return np.minimum(expit(x @ _fitted(self.ps_beta, "ps_beta", self.method)), PS_CAP)

    def psi(self, x: np.ndarray, d: np.ndarray, w: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """``ψ_i`` of the given units (rows of ``x``, ``d``, ``w``, ``dy``); see the class docstring."""
        method = self.method
        w1 = w * d
        if method in ("reg", "dr", "dr-imp"):
            m = x @ _fitted(self.coef, "coef", method)
        if method == "reg":
            o_r = w * (1 - d) * (dy - m)
            return (w1 * (dy - self.eta_t)) / self.mw1 - (w1 * (m - self.eta_c) + o_r * (x @ self.v_or1)) / self.mw1
        ps = self._ps(x)
        trim = np.where(d == 1, True, ps < TRIM_LEVEL)
        w0 = w * ps * (1 - d) / (1 - ps) * trim
        if method == "ipw":
            return (w1 * (dy - self.eta_t) / self.mw1
                    - (w0 * (dy - self.eta_c) + w * (d - ps) * (x @ self.v_ps)) / self.mw0)
        if method == "ipw-ht":
            return ((w1 - w0) * dy - w * (d - ps) * (x @ self.v_ps) - w1 * self.att) / self.mw1
        r = dy - m
        if method == "dr-imp":
            return w1 * (r - self.eta_t) / self.mw1 - w0 * (r - self.eta_c) / self.mw0
        o_r = w * (1 - d) * r
        inf_treat = (w1 * (r - self.eta_t) - o_r * (x @ self.v_or1)) / self.mw1
        inf_cont = (w0 * (r - self.eta_c) + w * (d - ps) * (x @ self.v_ps) - o_r * (x @ self.v_or0)) / self.mw0
        return inf_treat - inf_cont


def fit_2x2(dy: np.ndarray, nu: Nuisance) -> InfluenceFormula:
    """ATT of one 2×2 comparison and the constants of its influence function, given the outcome changes and the
    fitted nuisance (:func:`fit_nuisance`); the estimators' formulas are in the module docstring."""
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
        return InfluenceFormula(method, float(eta_t - eta_c), float(eta_t), float(eta_c), float(mw1), float("nan"),
                                n1, n0, coef=coef, v_or1=or_gram_inv @ (x.T @ w1 / n))
    ps, trim = _fitted(nu.ps, "ps", method), _fitted(nu.trim, "trim", method)
    beta = _fitted(nu.ps_beta, "ps_beta", method)
    w1 = w * d
    w0 = w * ps * (1 - d) / (1 - ps) * trim
    mw1, mw0 = w1.mean(), w0.mean()
    if mw0 <= 0:
        raise NotEstimable("no comparison units left after propensity-score trimming")
    trimmed = int(np.sum((d == 0) & ~trim))
    common: dict[str, Any] = dict(n_treated=n1, n_control=n0, converged=nu.converged, trimmed=trimmed, ps_beta=beta)
    if method == "ipw":
        eta_t = np.mean(w1 * dy) / mw1
        eta_c = np.mean(w0 * dy) / mw0
        m2 = x.T @ (w0 * (dy - eta_c)) / n
        return InfluenceFormula(method, float(eta_t - eta_c), float(eta_t), float(eta_c), float(mw1), float(mw0),
                                v_ps=_ps_hess(nu) @ m2, **common)
    if method == "ipw-ht":
        # Horvitz–Thompson IPW (Abadie 2005): ATT = mean((w₁ − w₀) ΔY) / mean(w₁); the comparison term's derivative
        # with respect to the logit coefficients is M = mean(w₀ ΔY x) (R DRDID::ipw_did_panel)
        att = float(np.mean((w1 - w0) * dy) / mw1)
        m_ht = x.T @ (w0 * dy) / n
        return InfluenceFormula(method, att, float("nan"), float("nan"), float(mw1), float(mw0),
                                v_ps=_ps_hess(nu) @ m_ht, **common)
    r = dy - m
    eta_t = np.mean(w1 * r) / mw1
    eta_c = np.mean(w0 * r) / mw0
    if method == "dr-imp":
        return InfluenceFormula(method, float(eta_t - eta_c), float(eta_t), float(eta_c), float(mw1), float(mw0),
                                coef=coef, **common)
    # traditional locally efficient DR with the estimation effects of the logit and the OLS
    m1 = x.T @ w1 / n
    m3 = x.T @ w0 / n
    m2 = x.T @ (w0 * (r - eta_c)) / n
    return InfluenceFormula(method, float(eta_t - eta_c), float(eta_t), float(eta_c), float(mw1), float(mw0),
                            coef=coef, v_ps=_ps_hess(nu) @ m2, v_or1=or_gram_inv @ m1, v_or0=or_gram_inv @ m3,
                            **common)


def att_2x2(dy: np.ndarray, nu: Nuisance) -> TwoByTwo:
    """ATT and influence function of one 2×2 comparison, given the outcome changes and the fitted nuisance."""
    f = fit_2x2(dy, nu)
    return TwoByTwo(f.att, f.psi(nu.x, nu.d, nu.w, dy), f.n_treated, f.n_control, f.method, f.converged, f.trimmed)


def _ps_hess(nu: Nuisance) -> np.ndarray:
    """``(X' diag(w p (1 − p)) X / n)⁻¹`` of the logit (the logit's linear representation is ``w(D − p) x' H``)."""
    return _fitted(nu.ps_hess, "ps_hess", nu.method)


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
