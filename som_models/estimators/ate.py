"""Average treatment effect (ATE) in an observational cross-section or two-period panel, adjusted for covariates.

Under conditional exchangeability (no unmeasured confounding given ``X``) and positivity, the ATE
``E[Y¹] − E[Y⁰]`` is identified by inverse probability weighting or by standardisation (Hernán & Robins,
*Causal Inference: What If*, 2020, chapters 12–13). With ``n`` units, treatment ``A`` (0/1), outcome ``Y``,
case weights ``w`` (normalised to mean one; one by default), the propensity score ``p(X) = P(A = 1 | X)`` from a
logistic regression fitted by maximum likelihood and an outcome regression ``m(a, X)`` fitted by (weighted)
least squares of ``Y`` on ``(X, A, A·X_int)``:

* ``ipw`` — normalised (Hájek, "stabilised") inverse probability weights:
  ``μ₁ = Σ w A Y / p ÷ Σ w A / p``, ``μ₀ = Σ w (1 − A) Y / (1 − p) ÷ Σ w (1 − A) / (1 − p)``. This is what the
  book's weighted regression of ``Y`` on ``A`` with weights ``1/f(A|X)`` estimates (What If, §12.2–12.3).
* ``ipw-ht`` — unnormalised (Horvitz–Thompson) weights: ``μ₁ = mean(w A Y / p)``,
  ``μ₀ = mean(w (1 − A) Y / (1 − p))`` (What If, Technical Point 12.1).
* ``standardisation`` — the parametric g-formula: ``μ_a = mean(w m(a, X))``, each unit's outcome predicted with
  its treatment set to ``a`` (What If, §13.2–13.3).
* ``dr`` — augmented IPW (doubly robust; Robins, Rotnitzky & Zhao 1994; Bang & Robins 2005):
  ``μ₁ = mean(w [m(1, X) + A (Y − m(1, X)) / p])`` and likewise ``μ₀`` with ``1 − A``, ``1 − p`` and ``m(0, X)``;
  consistent when either model is right.

``ATE = μ₁ − μ₀``. Standard errors come from the influence function of the whole estimator, i.e. the
M-estimation sandwich of the stacked equations (logit score, least-squares normal equations, the mean): with
``l_i`` the linear representation of the logit coefficients and ``r_i`` that of the outcome regression,
``ψ_i = φ_i − μ + G_β' l_i + G_γ' r_i`` (``G`` the derivatives of the mean of ``φ`` with respect to the nuisance
coefficients), ``se = sqrt(Σ ψ²) / n`` and a normal interval. Unlike the book's robust (GEE) interval for IP
weighting, which treats the weights as known and is conservative, the estimation of the propensity score is
accounted for; the book's bootstrap intervals target the same quantity.

Covariates enter the models as given, plus ``categorical`` ones expanded to indicators (lowest level as the
reference) and ``squared`` ones with their squares; ``interactions`` adds ``A × covariate`` terms to the
outcome model (the book's chapter 13 model interacts quitting with smoking intensity).

Two periods (``time_col`` with exactly two values, ``id_col`` naming the unit): the outcome is the change
``Y_post − Y_pre`` and treatment and covariates are taken from the earlier period, so the ATE is that of the
change (the NHEFS weight gain ``wt82_71`` is such a change, stored as one column).

Units with a missing outcome are left out (counted in ``notes``; the book restricts NHEFS to the 1,566 with a
1982 weight this way); missing treatment or covariates are an error. No propensity trimming is done; the
smallest and largest fitted propensity are reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from som_models.estimators._numerics import NotEstimable, inv_spd, logit, wls
from som_models.estimators.panel import check_columns
from som_models.estimators.results import ESTIMATES_SCHEMA, ci_label, notes_lines, tidy_lines, z_value
from som_models.results_base import MAX_ROWS, ResultDisplay, fmt, render_summary

ATE_METHODS = ("ipw", "ipw-ht", "standardisation", "dr")

_METHOD_TEXT = {
    "ipw": "inverse probability weighting, normalised (Hájek) weights",
    "ipw-ht": "inverse probability weighting, unnormalised (Horvitz–Thompson) weights",
    "standardisation": "standardisation (parametric g-formula, outcome regression)",
    "dr": "augmented inverse probability weighting (doubly robust)",
}


@dataclass(frozen=True, eq=False, repr=False)
class AteResult(ResultDisplay):
    """The ATE of one outcome with its influence function, the potential-outcome means and the model terms.

    Result protocol (:mod:`som_models.results_base`): ``to_polars()`` is one row in ``ESTIMATES_SCHEMA`` with
    estimand ``ate``; ``summary()`` prints the method, the models, the means and the estimate.
    """

    outcome: str
    method: str
    estimate: float
    se: float
    #: estimated means of the potential outcomes under treatment and under no treatment
    mean_treated: float
    mean_control: float
    n_treated: int
    n_control: int
    #: per-unit influence function ψ (ATE̅ − ATE ≈ mean(ψ)); units in the order of the data used
    influence: np.ndarray = field(repr=False)
    ps_terms: tuple[str, ...] = ()
    outcome_terms: tuple[str, ...] = ()
    alpha: float = 0.05
    #: change between two periods (True) or a cross-section (False)
    two_period: bool = False
    notes: Mapping[str, object] = field(default_factory=dict)

    @property
    def ci(self) -> tuple[float, float]:
        """Normal confidence interval ``estimate ± z_{1−α/2} se``."""
        z = z_value(self.alpha)
        return self.estimate - z * self.se, self.estimate + z * self.se

    def _repr_fields(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "method": self.method, "n": self.n_treated + self.n_control,
                "ate": self.estimate, "se": self.se}

    def to_polars(self) -> pl.DataFrame:
        """One ``ate`` row: estimate, SE, interval, treated and untreated units."""
        lo, hi = self.ci
        row = {"outcome": self.outcome, "estimand": "ate", "group": None, "time": None, "event_time": None,
               "estimate": self.estimate, "se": self.se, "ci_low": lo, "ci_high": hi,
               "n_treated": self.n_treated, "n_control": self.n_control}
        return pl.DataFrame([row], schema=ESTIMATES_SCHEMA)

    def summary(self, *, max_rows: int | None = MAX_ROWS) -> str:
        """Method, models, units, potential-outcome means and the ATE with its interval."""
        info: list[tuple[str, Any]] = [
            ("Estimand", "average treatment effect E[Y¹] − E[Y⁰]" + (" of the change between two periods"
                                                                   if self.two_period else "")),
            ("Method", _METHOD_TEXT.get(self.method, self.method)),
            ("Units", f"{fmt(self.n_treated)} treated, {fmt(self.n_control)} untreated"),
        ]
        if self.ps_terms:
            info.append(("Propensity model", "logit on " + _terms_text(self.ps_terms)))
        if self.outcome_terms:
            info.append(("Outcome model", "least squares on " + _terms_text(self.outcome_terms)))
        info += [("Mean under treatment", fmt(self.mean_treated)), ("Mean without treatment", fmt(self.mean_control)),
                 ("Standard errors", "influence function incl. nuisance estimation (M-estimation sandwich)"),
                 ("Intervals", f"pointwise {ci_label(self.alpha)}")]
        body = tidy_lines(self.to_polars(), self.alpha, max_rows=max_rows)
        return render_summary("Average treatment effect", info, body, notes_lines(self.notes))


def _terms_text(terms: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(terms[:limit])
    return shown + (f" … ({len(terms) - limit} more)" if len(terms) > limit else "")


def ate(
    data: pl.DataFrame,
    *,
    outcome: str,
    treatment: str,
    covariates: Sequence[str] = (),
    method: str = "ipw",
    categorical: Sequence[str] = (),
    squared: Sequence[str] = (),
    interactions: Sequence[str] = (),
    weight_col: str | None = None,
    id_col: str | None = None,
    time_col: str | None = None,
    alpha: float = 0.05,
) -> AteResult:
    """ATE of ``treatment`` (0/1) on ``outcome`` by ``method`` (see the module docstring for the formulas).

    Example (Hernán & Robins, What If, chapter 12, NHEFS)::

        ate(nhefs, outcome="wt82_71", treatment="qsmk", method="ipw",
            covariates=["sex", "race", "age", "education", "smokeintensity", "smokeyrs", "exercise",
                        "active", "wt71"],
            categorical=["education", "exercise", "active"],
            squared=["age", "smokeintensity", "smokeyrs", "wt71"])
    """
    if method not in ATE_METHODS:
        raise ValueError(f"method must be one of {', '.join(ATE_METHODS)} (got {method!r})")
    z_value(alpha)
    covariates = list(covariates)
    for name, extra in (("categorical", categorical), ("squared", squared), ("interactions", interactions)):
        unknown = [c for c in extra if c not in covariates]
        if unknown:
            raise ValueError(f"{name} columns must be among the covariates (not: {', '.join(unknown)})")
    if interactions and method in ("ipw", "ipw-ht"):
        raise ValueError(f"interactions belong to the outcome model, which method {method!r} does not fit")
    if (id_col is None) != (time_col is None):
        raise ValueError("two periods need both id_col and time_col (or neither for a cross-section)")
    weights = [weight_col] if weight_col else []
    numeric = [outcome, treatment, *weights, *[c for c in covariates if c not in categorical]]
    panel_cols = [id_col, time_col] if id_col and time_col else []
    check_columns(data, [outcome, treatment, *covariates, *weights, *panel_cols],
                  numeric=numeric + ([time_col] if time_col else []))
    notes: dict[str, object] = {}
    frame = _two_period(data, outcome, treatment, covariates, weights, id_col, time_col, notes) \
        if id_col is not None and time_col else data.select(outcome, treatment, *covariates, *weights)

    y_all = frame.get_column(outcome).cast(pl.Float64)
    missing = y_all.is_null() | y_all.is_nan()
    n_missing = int(missing.sum())
    if n_missing:
        notes["units_missing_outcome_left_out"] = n_missing
        frame = frame.filter(~missing)
    if frame.height == 0:
        raise ValueError(f"column {outcome!r} has no non-missing values")
    for c in [treatment, *covariates, *weights]:
        bad = frame.get_column(c).is_null()
        if frame.schema[c].is_float():
            bad = bad | frame.get_column(c).is_nan()
        if bad.any():
            rows = np.flatnonzero(bad.to_numpy())
            raise ValueError(f"column {c!r} has missing values in {rows.shape[0]} rows with an outcome "
                             f"(first rows: {', '.join(str(int(r)) for r in rows[:5])})")
    a = frame.get_column(treatment).cast(pl.Float64).to_numpy()
    if not np.isin(a, (0.0, 1.0)).all():
        raise ValueError(f"column {treatment!r} must be 0/1 (found {sorted(set(a.tolist()))[:5]})")
    n1 = int(a.sum())
    n0 = int(a.shape[0] - n1)
    if n1 == 0 or n0 == 0:
        raise ValueError(f"column {treatment!r} needs both treated (1) and untreated (0) units")
    y = frame.get_column(outcome).cast(pl.Float64).to_numpy()
    w = np.ones(a.shape[0])
    if weight_col:
        w = frame.get_column(weight_col).cast(pl.Float64).to_numpy()
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"column {weight_col!r} must hold non-negative weights, not all zero")
        w = w / w.mean()
    x, ps_terms = _design(frame, covariates, categorical, squared)

    est = _Estimator(x=x, a=a, y=y, w=w, notes=notes)
    outcome_terms: tuple[str, ...] = ()
    if method in ("ipw", "ipw-ht", "dr"):
        est.fit_propensity()
    if method in ("standardisation", "dr"):
        inter = np.column_stack([frame.get_column(c).cast(pl.Float64).to_numpy() for c in interactions]) \
            if interactions else np.zeros((a.shape[0], 0))
        outcome_terms = (*ps_terms, treatment, *[f"{treatment}×{c}" for c in interactions])
        est.fit_outcome(inter)
    mu1, mu0, psi1, psi0 = {"ipw": est.hajek, "ipw-ht": est.horvitz_thompson,
                            "standardisation": est.standardisation, "dr": est.aipw}[method]()
    psi = psi1 - psi0
    n = psi.shape[0]
    return AteResult(outcome=outcome, method=method, estimate=float(mu1 - mu0), se=float(np.sqrt(psi @ psi) / n),
                     mean_treated=float(mu1), mean_control=float(mu0), n_treated=n1, n_control=n0, influence=psi,
                     ps_terms=ps_terms if method != "standardisation" else (), outcome_terms=outcome_terms,
                     alpha=alpha, two_period=time_col is not None, notes=notes)


def _two_period(data: pl.DataFrame, outcome: str, treatment: str, covariates: list[str], weights: list[str],
                id_col: str, time_col: str, notes: dict[str, object]) -> pl.DataFrame:
    """One row per unit: the outcome change post − pre, treatment, covariates and weights from the pre period."""
    periods = sorted(data.get_column(time_col).drop_nulls().unique().to_list())
    if len(periods) != 2:
        raise ValueError(f"column {time_col!r} must hold exactly two periods for a two-period ATE "
                         f"(found {len(periods)})")
    dup = int(data.select(id_col, time_col).is_duplicated().sum())
    if dup:
        raise ValueError(f"{dup} rows repeat an ({id_col}, {time_col}) pair; one row per unit and period is needed")
    pre, post = periods
    a = data.filter(pl.col(time_col) == pre).select(id_col, treatment, *covariates, *weights,
                                                     pl.col(outcome).cast(pl.Float64).alias("_y0"))
    b = data.filter(pl.col(time_col) == post).select(id_col, pl.col(outcome).cast(pl.Float64).alias("_y1"))
    wide = a.join(b, on=id_col, how="inner")
    one_period = a.height + b.height - 2 * wide.height
    if one_period:
        notes["units_observed_in_one_period_left_out"] = one_period
    return wide.select((pl.col("_y1") - pl.col("_y0")).alias(outcome), treatment, *covariates, *weights)


def _design(frame: pl.DataFrame, covariates: list[str], categorical: Sequence[str],
            squared: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Intercept, covariates (categorical ones as indicators, lowest level the reference), then squares."""
    cols = [np.ones(frame.height)]
    names = ["(intercept)"]
    for c in covariates:
        if c in categorical:
            s = frame.get_column(c)
            levels = sorted(s.unique().to_list())
            for level in levels[1:]:
                cols.append((s == level).cast(pl.Float64).to_numpy())
                names.append(f"{c}={level}")
        else:
            cols.append(frame.get_column(c).cast(pl.Float64).to_numpy())
            names.append(c)
    for c in squared:
        if c in categorical:
            raise ValueError(f"covariate {c!r} cannot be both categorical and squared")
        cols.append(frame.get_column(c).cast(pl.Float64).to_numpy() ** 2)
        names.append(f"{c}²")
    return np.column_stack(cols), tuple(names)


@dataclass
class _Estimator:
    """Nuisance fits and the four estimators' potential-outcome means with their influence functions."""

    x: np.ndarray
    a: np.ndarray
    y: np.ndarray
    w: np.ndarray
    notes: dict[str, object]
    p: np.ndarray | None = None
    ps_bread: np.ndarray | None = None  # (X' diag(w p (1 − p)) X / n)⁻¹
    z1: np.ndarray | None = None
    z0: np.ndarray | None = None
    m1: np.ndarray | None = None
    m0: np.ndarray | None = None
    or_resid_w: np.ndarray | None = None  # w (Y − Zγ)
    z: np.ndarray | None = None
    or_bread: np.ndarray | None = None  # (Z' diag(w) Z / n)⁻¹

    @property
    def n(self) -> int:
        return self.a.shape[0]

    def fit_propensity(self) -> None:
        """Logistic regression of A on X; the fitted probabilities must lie strictly inside (0, 1)."""
        _, p, converged = logit(self.x, self.a, self.w)
        if not converged:
            self.notes["propensity_not_converged"] = "the logit did not converge (separation?)"
        if not (np.all(p > 0) and np.all(p < 1)):
            raise NotEstimable("propensity score of 0 or 1: positivity fails for some units (separation)")
        self.p = p
        info = self.x.T @ (self.x * (self.w * p * (1 - p))[:, None]) / self.n
        self.ps_bread = inv_spd(info, "propensity score")
        self.notes["propensity_range"] = f"{p.min():.4g} – {p.max():.4g}"

    def fit_outcome(self, inter: np.ndarray) -> None:
        """Least squares of Y on (X, A, A·X_int) with weights w; predictions with A set to 1 and to 0."""
        ones, zeros = np.ones((self.n, 1)), np.zeros((self.n, 1))
        self.z = np.column_stack([self.x, self.a, self.a[:, None] * inter])
        self.z1 = np.column_stack([self.x, ones, inter])
        self.z0 = np.column_stack([self.x, zeros, 0 * inter])
        gamma = wls(self.z, self.y, self.w, "outcome regression")
        self.m1, self.m0 = self.z1 @ gamma, self.z0 @ gamma
        self.or_resid_w = self.w * (self.y - self.z @ gamma)
        self.or_bread = inv_spd(self.z.T @ (self.z * self.w[:, None]) / self.n, "outcome regression")

    def _ps_term(self, g: np.ndarray) -> np.ndarray:
        """``G' l_i`` with ``l_i = (X'WPX/n)⁻¹ x_i w_i (A_i − p_i)`` the logit's linear representation."""
        assert self.p is not None and self.ps_bread is not None
        return (self.x @ (self.ps_bread @ g)) * self.w * (self.a - self.p)

    def _or_term(self, g: np.ndarray) -> np.ndarray:
        """``G' r_i`` with ``r_i = (Z'WZ/n)⁻¹ z_i w_i (Y_i − z_i'γ)`` the regression's linear representation."""
        assert self.z is not None and self.or_bread is not None and self.or_resid_w is not None
        return (self.z @ (self.or_bread @ g)) * self.or_resid_w

    def _mean_x(self, v: np.ndarray, m: np.ndarray) -> np.ndarray:
        return m.T @ v / self.n

    def hajek(self):
        a, y, w, p = self.a, self.y, self.w, self.p
        h1, h0 = w * a / p, w * (1 - a) / (1 - p)
        mu1, mu0 = np.sum(h1 * y) / np.sum(h1), np.sum(h0 * y) / np.sum(h0)
        # d h1/dβ = −h1 (1 − p) x ;  d h0/dβ = h0 p x
        g1 = -self._mean_x(h1 * (y - mu1) * (1 - p), self.x)
        g0 = self._mean_x(h0 * (y - mu0) * p, self.x)
        psi1 = (h1 * (y - mu1) + self._ps_term(g1)) / h1.mean()
        psi0 = (h0 * (y - mu0) + self._ps_term(g0)) / h0.mean()
        return mu1, mu0, psi1, psi0

    def horvitz_thompson(self):
        a, y, w, p = self.a, self.y, self.w, self.p
        t1, t0 = w * a * y / p, w * (1 - a) * y / (1 - p)
        mu1, mu0 = t1.mean(), t0.mean()
        g1 = -self._mean_x(t1 * (1 - p), self.x)
        g0 = self._mean_x(t0 * p, self.x)
        return mu1, mu0, t1 - mu1 + self._ps_term(g1), t0 - mu0 + self._ps_term(g0)

    def standardisation(self):
        w = self.w
        s1, s0 = w * self.m1, w * self.m0
        mu1, mu0 = s1.mean(), s0.mean()
        psi1 = s1 - mu1 + self._or_term(self._mean_x(w, self.z1))
        psi0 = s0 - mu0 + self._or_term(self._mean_x(w, self.z0))
        return mu1, mu0, psi1, psi0

    def aipw(self):
        a, y, w, p, m1, m0 = self.a, self.y, self.w, self.p, self.m1, self.m0
        phi1 = w * (m1 + a * (y - m1) / p)
        phi0 = w * (m0 + (1 - a) * (y - m0) / (1 - p))
        mu1, mu0 = phi1.mean(), phi0.mean()
        gb1 = -self._mean_x(w * a * (y - m1) * (1 - p) / p, self.x)
        gb0 = self._mean_x(w * (1 - a) * (y - m0) * p / (1 - p), self.x)
        gg1 = self._mean_x(w * (1 - a / p), self.z1)
        gg0 = self._mean_x(w * (1 - (1 - a) / (1 - p)), self.z0)
        psi1 = phi1 - mu1 + self._ps_term(gb1) + self._or_term(gg1)
        psi0 = phi0 - mu0 + self._ps_term(gb0) + self._or_term(gg0)
        return mu1, mu0, psi1, psi0


__all__ = ["ATE_METHODS", "AteResult", "ate"]
