"""Small numerical building blocks shared by the estimators: logistic regression (Newton/IRLS), inverse
probability tilting, weighted least squares and heteroskedasticity-robust (HC0–HC3) covariance matrices.

All functions work on dense numpy arrays (rows = observations). They raise :class:`NotEstimable` when the
design is degenerate (collinear columns, no variation), so callers can flag a cell instead of crashing.

Sources: logistic regression by Newton–Raphson / IRLS (McCullagh & Nelder 1989, ch. 4); inverse probability
tilting (Graham, Pinto & Egel 2012, *Rev. Econ. Stud.* 79(3)); HC covariance estimators (White 1980;
MacKinnon & White 1985; Long & Ervin 2000, *Am. Stat.* 54(3)).
"""

from __future__ import annotations

import numpy as np
from scipy import linalg
from scipy.special import expit


class NotEstimable(ValueError):
    """The data do not identify the model (collinear covariates, a group without variation, …)."""


def _solve_spd(a: np.ndarray, b: np.ndarray, what: str) -> np.ndarray:
    """Solve ``a x = b`` for a symmetric positive definite ``a``; NotEstimable if (near) singular."""
    scale = np.sqrt(np.clip(np.diag(a), 1e-300, None))
    a_s = a / np.outer(scale, scale)
    try:
        cho = linalg.cho_factor(a_s, check_finite=False)
    except linalg.LinAlgError:
        raise NotEstimable(f"{what}: the design matrix is singular (collinear or constant covariates)") from None
    if np.linalg.cond(a_s) > 1e12:
        raise NotEstimable(f"{what}: the design matrix is numerically singular (collinear covariates)")
    b_s = b / (scale if b.ndim == 1 else scale[:, None])
    x = linalg.cho_solve(cho, b_s, check_finite=False)
    return x / (scale if x.ndim == 1 else scale[:, None])


def inv_spd(a: np.ndarray, what: str = "inverse") -> np.ndarray:
    """Inverse of a symmetric positive definite matrix (NotEstimable if singular)."""
    return _solve_spd(a, np.eye(a.shape[0]), what)


def wls(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, what: str = "regression") -> np.ndarray:
    """Weighted least squares coefficients ``β = (X'WX)⁻¹ X'Wy``."""
    xw = x if w is None else x * w[:, None]
    return _solve_spd(xw.T @ x, xw.T @ y, what)


def logit(x: np.ndarray, d: np.ndarray, w: np.ndarray | None = None, *, max_iter: int = 100,
          tol: float = 1e-10, start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
    """Maximum-likelihood logistic regression of ``d`` (0/1) on ``x`` with case weights ``w``.

    Newton–Raphson on ``ℓ(β) = Σ w [d x'β − log(1 + e^{x'β})]`` with step halving; the score is
    ``X'W(d − p)``, the information ``X' diag(w p (1−p)) X``. Returns ``(β, p, converged)``; non-convergence
    (e.g. perfect separation) is reported, not raised. Memory: ``x``, one temporary of its size (the information
    matrix) and two vectors of its length, reused across iterations.
    """
    n, k = x.shape
    w = np.ones(n) if w is None else w
    beta = np.zeros(k)
    # start from the intercept-only solution when the first column is constant
    p_bar = float(np.sum(w * d) / np.sum(w))
    if not 0 < p_bar < 1:
        raise NotEstimable("propensity score: all units are in one group")
    if start is not None and start.shape == (k,) and np.all(np.isfinite(start)):
        beta = start.copy()
    elif np.allclose(x[:, 0], x[0, 0]) and x[0, 0] != 0:
        beta[0] = np.log(p_bar / (1 - p_bar)) / x[0, 0]
    eta, tmp = np.empty(n), np.empty(n)

    def loglik(b: np.ndarray) -> float:
        # Σ w (d η − log(1 + e^η)), evaluated in place (the same operations as the expression)
        np.matmul(x, b, out=eta)
        np.logaddexp(0.0, eta, out=tmp)
        np.multiply(d, eta, out=eta)
        np.subtract(eta, tmp, out=eta)
        np.multiply(w, eta, out=eta)
        return float(np.sum(eta))

    ll = loglik(beta)
    converged = False
    for _ in range(max_iter):
        p = expit(np.matmul(x, beta, out=eta), out=eta)
        np.subtract(d, p, out=tmp)
        np.multiply(w, tmp, out=tmp)
        grad = x.T @ tmp                            # X' w (d − p)
        np.multiply(w, p, out=tmp)
        np.subtract(1, p, out=eta)
        np.multiply(tmp, eta, out=tmp)              # w p (1 − p)
        info = x.T @ (x * tmp[:, None])
        step = _solve_spd(info, grad, "propensity score")
        t = 1.0
        while True:
            new = beta + t * step
            ll_new = loglik(new)
            if ll_new >= ll - 1e-12 * abs(ll) or t < 1e-8:
                break
            t /= 2
        beta, ll_old, ll = new, ll, ll_new
        if np.max(np.abs(t * step)) < tol * (1 + np.max(np.abs(beta))) or abs(ll - ll_old) < tol * (abs(ll) + tol):
            converged = True
            break
    return beta, expit(np.matmul(x, beta, out=eta), out=eta), converged


def ipt(x: np.ndarray, d: np.ndarray, w: np.ndarray | None = None, *, start: np.ndarray | None = None,
        max_iter: int = 200, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray, bool]:
    """Inverse probability tilting propensity score (Graham, Pinto & Egel 2012), as in Sant'Anna & Zhao (2020).

    Minimises the convex loss ``L(γ) = −mean(w [d x'γ − (1 − d) e^{x'γ}])``, whose first-order condition
    ``mean(w d x) = mean(w (1 − d) e^{x'γ} x)`` makes the odds-weighted comparison units reproduce the treated
    units' covariate means exactly; ``p = expit(x'γ)``. Newton steps with backtracking, started at ``start``
    (the logit estimate). Returns ``(γ, p, converged)``.
    """
    n, k = x.shape
    w = np.ones(n) if w is None else w
    gamma = np.zeros(k) if start is None else start.copy()
    c = 1.0 - d
    eta, tmp = np.empty(n), np.empty(n)

    def loss(g: np.ndarray) -> float:
        # −mean(w (d η − c e^{min(η, 700)})), in place
        np.matmul(x, g, out=eta)
        np.minimum(eta, 700, out=tmp)
        np.exp(tmp, out=tmp)
        np.multiply(c, tmp, out=tmp)
        np.multiply(d, eta, out=eta)
        np.subtract(eta, tmp, out=eta)
        np.multiply(w, eta, out=eta)
        return float(-np.mean(eta))

    cur = loss(gamma)
    converged = False
    for _ in range(max_iter):
        np.matmul(x, gamma, out=eta)
        e = np.exp(np.minimum(eta, 700, out=eta), out=eta)
        np.multiply(c, e, out=tmp)
        np.subtract(d, tmp, out=tmp)
        np.multiply(w, tmp, out=tmp)
        grad = -(x.T @ tmp) / n                     # −X' w (d − c e) / n
        np.multiply(w, c, out=tmp)
        np.multiply(tmp, e, out=tmp)                # w c e
        hess = (x * tmp[:, None]).T @ x / n
        step = -_solve_spd(hess, grad, "propensity score (inverse probability tilting)")
        t = 1.0
        while True:
            new = gamma + t * step
            val = loss(new)
            if val <= cur + 1e-4 * t * float(grad @ step) or t < 1e-10:
                break
            t /= 2
        gamma, old, cur = new, cur, val
        if np.max(np.abs(t * step)) < tol * (1 + np.max(np.abs(gamma))) or abs(old - cur) < tol * (abs(cur) + tol):
            converged = True
            break
    return gamma, expit(np.matmul(x, gamma, out=eta), out=eta), converged


def ols_hc(x: np.ndarray, y: np.ndarray, kind: str = "HC2") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OLS coefficients with the classical and a heteroskedasticity-robust covariance matrix.

    Classical: ``s² (X'X)⁻¹`` with ``s² = e'e / (n − k)``. Robust ``(X'X)⁻¹ X' diag(ω) X (X'X)⁻¹`` with
    ``ω = e²`` (HC0), ``e² n/(n−k)`` (HC1), ``e²/(1−h)`` (HC2) or ``e²/(1−h)²`` (HC3), ``h`` the leverages.
    Returns ``(β, V_classical, V_robust)``.
    """
    n, k = x.shape
    if n <= k:
        raise NotEstimable(f"regression: {n} observations for {k} coefficients")
    xtx_inv = inv_spd(x.T @ x, "regression")
    beta = xtx_inv @ (x.T @ y)
    e = y - x @ beta
    v_classical = xtx_inv * float(e @ e) / (n - k)
    if kind == "HC0":
        omega = e**2
    elif kind == "HC1":
        omega = e**2 * n / (n - k)
    elif kind in ("HC2", "HC3"):
        h = np.einsum("ij,jk,ik->i", x, xtx_inv, x)
        h = np.minimum(h, 1 - 1e-12)
        omega = e**2 / (1 - h) if kind == "HC2" else e**2 / (1 - h) ** 2
    else:
        raise ValueError(f"robust covariance must be HC0, HC1, HC2 or HC3 (got {kind!r})")
    meat = (x * omega[:, None]).T @ x
    return beta, v_classical, xtx_inv @ meat @ xtx_inv
