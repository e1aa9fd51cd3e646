"""Duration outcomes: Kaplan–Meier curves and the Cox proportional-hazards model (time to an event).

Many consequences are times to an event (first conviction after the intervention, exit from homelessness,
return to self-support). Rows are either one per person (``time``, ``event``: right-censored follow-up from
0) or person-period intervals in counting-process form ``(start, stop]`` with the event flag on the interval
in which it happens (Andersen & Gill 1982) — the form that carries **time-varying covariates** and delayed
entry. Times need not be integers; ties are exact equality.

Kaplan–Meier (Kaplan & Meier 1958)
    At each distinct event time ``t_j`` with ``n_j`` persons at risk (``start < t_j ≤ stop``, case-weighted)
    and ``d_j`` events, ``Ŝ(t) = Π_{t_j ≤ t} (1 − d_j/n_j)``. Greenwood's variance of ``log Ŝ`` is
    ``σ²(t) = Σ_{t_j ≤ t} d_j / (n_j (n_j − d_j))``; the reported ``std_err`` is that of ``Ŝ``, ``Ŝ σ``.
    Pointwise intervals: ``conf_type="log"`` (the default, **as R survival's ``survfit``, whose default
    ``conf.type`` is ``"log"``**): ``Ŝ exp(±z σ)`` with the upper end cut at 1; ``"log-log"``:
    ``Ŝ^{exp(±z σ / log Ŝ)}`` (Kalbfleisch & Prentice 2002, §1.4); ``"plain"``: ``Ŝ ± z Ŝ σ`` cut to [0, 1].
    Median survival: the first event time with ``Ŝ ≤ 0.5`` (the midpoint to the next event time when the curve
    sits exactly at 0.5); its interval applies the same rule to the lower and upper pointwise curves
    (Brookmeyer & Crowley 1982 inversion, as ``survfit``); missing when a curve never reaches 0.5.

Cox model (Cox 1972)
    Hazard ``λ_s(t | x) = λ_{0s}(t) exp(x'β)`` with a baseline per stratum ``s``. At an event time with risk
    set ``R``, event set ``D`` (``d`` events), ``S0 = Σ_R w e^{η}``, ``S1 = Σ_R w e^{η} x``,
    ``S2 = Σ_R w e^{η} x x'`` and ``S0_D, S1_D, S2_D`` the same sums over ``D``, the log partial likelihood
    term is, for ties by **Efron** (1977) (the default, as ``coxph``):
    ``Σ_D w_i η_i − w̄_D Σ_{k=0}^{d−1} log(S0 − (k/d) S0_D)`` with ``w̄_D`` the mean case weight of the
    events; **Breslow** (1974) drops the ``(k/d)`` terms. Score ``U = Σ_D w x − w̄_D Σ_k x̄_k`` with
    ``x̄_k = (S1 − (k/d)S1_D)/(S0 − (k/d)S0_D)``; information ``I = w̄_D Σ_k [(S2 − (k/d)S2_D)/(…) − x̄_k x̄_k']``.
    Newton–Raphson from ``β = 0`` with step halving whenever the log likelihood falls; converged when its
    relative change is below ``tol``. Model-based variance ``I(β̂)⁻¹``.

    Robust (sandwich) variance (Lin & Wei 1989; clustered: Wei, Lin & Weissfeld 1989; R ``coxph(...,
    cluster = id)``): ``V_rob = I⁻¹ (Σ_c U_c U_c') I⁻¹`` with ``U_c`` the sum over a cluster's rows of the
    case-weighted score residuals ``w_i L_i``, ``L_i = Σ_t [dN_i(t) (x_i − x̄(t)) − Y_i(t) e^{η_i} (x_i − x̄(t))
    dΛ̂_0(t)]`` (Therneau & Grambsch 2000, §7.2), in the Efron form where an event at a tie of ``d`` takes
    ``1/d`` of each ``(x_i − x̄_k)`` and stays in the ``k``-th risk set with weight ``1 − k/d``. No small-sample
    factor, as ``coxph``. Person-period rows of one person are one cluster by default.

    Tests of ``β = 0``: likelihood ratio ``2(ℓ(β̂) − ℓ(0))``; Wald ``β̂' V⁻¹ β̂`` with the robust ``V`` when the
    fit is robust (as ``coxph``); score ``U(0)' I(0)⁻¹ U(0)`` (with one binary covariate and no ties the
    log-rank test), and with a robust fit the robust score test ``U(0)' (Σ_c U_c(0) U_c(0)')⁻¹ U(0)``. All
    χ² with ``p`` degrees of freedom.

References reproduced in ``tests/test_survival_reference.py`` (data and provenance in
``tests/reference/survival_r``): R survival's ``ovarian``, ``aml``, ``jasa1`` (Stanford heart transplant,
time-varying transplant status), ``bladder2`` (Andersen–Gill, clustered) and ``diabetic`` (Efron, clustered)
printouts in the package's ``tests/*.Rout.save`` files.

:func:`duration_effects` wraps both for a randomised or matched comparison (arm 1 vs 0): the (adjusted) log
hazard ratio of the arm and its hazard ratio, Kaplan–Meier survival by arm at whole time units and the
difference in survival, as rows of the project's estimates table (``ESTIMATES_SCHEMA``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from som_models.estimators._numerics import NotEstimable, inv_spd
from som_models.estimators.results import ESTIMATES_SCHEMA, ci_label, notes_lines, tidy_lines, z_value
from som_models.lazy_scipy import stats
from som_models.results_base import MAX_ROWS, ResultDisplay, fmt, fmt_p, frame_lines, render_summary

TIES = ("efron", "breslow")
CONF_TYPES = ("log", "log-log", "plain")

KM_SCHEMA: dict[str, Any] = {
    "group": pl.Utf8, "time": pl.Float64, "n_risk": pl.Float64, "n_event": pl.Float64, "n_censor": pl.Float64,
    "survival": pl.Float64, "std_err": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64,
}
MEDIAN_SCHEMA: dict[str, Any] = {
    "group": pl.Utf8, "n": pl.Int64, "events": pl.Float64, "median": pl.Float64, "ci_low": pl.Float64,
    "ci_high": pl.Float64,
}
COX_SCHEMA: dict[str, Any] = {
    "term": pl.Utf8, "coef": pl.Float64, "exp_coef": pl.Float64, "se": pl.Float64, "robust_se": pl.Float64,
    "z": pl.Float64, "p_value": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64,
}


# ----------------------------------------------------------------------------------------------- input


def _rows_text(mask: np.ndarray) -> str:
    """``3 rows (e.g. rows 4, 9, 12)`` for a boolean mask over the frame's rows (0-based row numbers)."""
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(int(i)) for i in idx[:5])
    return f"{idx.size} row{'s' if idx.size != 1 else ''} (e.g. row {shown})"


def _numeric(data: pl.DataFrame, col: str, what: str) -> np.ndarray:
    """Column ``col`` as float64; ValueError naming the column and the rows when missing, non-numeric or NaN."""
    if col not in data.columns:
        raise ValueError(f"{what}: column {col!r} not found; columns are {data.columns}")
    dtype = data.schema[col]
    if not (dtype.is_numeric() or dtype == pl.Boolean):
        raise ValueError(f"{what}: column {col!r} must be numeric (it is {dtype})")
    values = data.get_column(col).cast(pl.Float64).to_numpy().astype(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"{what}: column {col!r} is missing or not finite in {_rows_text(bad)}")
    return values


def _codes(data: pl.DataFrame, col: str, what: str) -> tuple[np.ndarray, list[Any]]:
    """Integer codes of a grouping column (order of first appearance sorted) and its levels."""
    if col not in data.columns:
        raise ValueError(f"{what}: column {col!r} not found; columns are {data.columns}")
    s = data.get_column(col)
    if s.null_count():
        raise ValueError(f"{what}: column {col!r} is missing in {_rows_text(s.is_null().to_numpy())}")
    levels = s.unique().sort().to_list()
    lookup = {v: k for k, v in enumerate(levels)}
    return np.array([lookup[v] for v in s.to_list()], dtype=np.int64), levels


@dataclass(frozen=True)
class _Spells:
    """Validated follow-up: ``(start, stop]`` (start = −inf for one row per person), event 0/1, weights."""

    start: np.ndarray
    stop: np.ndarray
    event: np.ndarray
    weight: np.ndarray


def _spells(data: pl.DataFrame, *, time_col: str, event_col: str, start_col: str | None,
            weight_col: str | None, what: str) -> _Spells:
    if data.height == 0:
        raise ValueError(f"{what}: the data have no rows")
    stop = _numeric(data, time_col, what)
    event = _numeric(data, event_col, what)
    bad = ~np.isin(event, (0.0, 1.0))
    if bad.any():
        raise ValueError(f"{what}: column {event_col!r} must be 0 (censored) or 1 (event); not so in {_rows_text(bad)}")
    if start_col is None:
        neg = stop < 0
        if neg.any():
            raise ValueError(f"{what}: column {time_col!r} is negative in {_rows_text(neg)}")
        start = np.full_like(stop, -np.inf)
    else:
        start = _numeric(data, start_col, what)
        bad = stop <= start
        if bad.any():
            raise ValueError(f"{what}: column {time_col!r} must exceed {start_col!r} (intervals (start, stop]); "
                             f"not so in {_rows_text(bad)}")
    if weight_col is None:
        weight = np.ones_like(stop)
    else:
        weight = _numeric(data, weight_col, what)
        bad = weight <= 0
        if bad.any():
            raise ValueError(f"{what}: column {weight_col!r} must be positive; not so in {_rows_text(bad)}")
    return _Spells(start=start, stop=stop, event=event.astype(bool), weight=weight)


def _check_overlaps(data: pl.DataFrame, id_col: str, start: np.ndarray, stop: np.ndarray, what: str) -> None:
    """ValueError when two person-period intervals of one person overlap (counting-process data)."""
    ids, _ = _codes(data, id_col, what)
    order = np.lexsort((start, ids))
    same = ids[order][1:] == ids[order][:-1]
    overlap = same & (start[order][1:] < stop[order][:-1])
    if overlap.any():
        rows = np.zeros(len(ids), dtype=bool)
        rows[order[1:][overlap]] = True
        raise ValueError(f"{what}: intervals of one {id_col!r} overlap in {_rows_text(rows)}")


# ------------------------------------------------------------------------------------------ Kaplan–Meier


@dataclass(frozen=True, eq=False, repr=False)
class KaplanMeierResult(ResultDisplay):
    """Kaplan–Meier curves (one per group) with Greenwood SEs, pointwise intervals and median survival.

    ``table`` has one row per group and distinct time (event or censoring) in :data:`KM_SCHEMA`; ``medians``
    one row per group in :data:`MEDIAN_SCHEMA`. Result protocol: ``to_polars()`` is ``table``.
    """

    table: pl.DataFrame
    medians: pl.DataFrame
    conf_type: str
    alpha: float = 0.05
    group_col: str | None = None
    notes: Mapping[str, object] = field(default_factory=dict)

    def _repr_fields(self) -> dict[str, Any]:
        m = self.medians
        return {"groups": m.height, "n": int(m.get_column("n").sum()), "events": float(m.get_column("events").sum()),
                "median": tuple(m.get_column("median").to_list())}

    def to_polars(self) -> pl.DataFrame:
        """All rows of the curves (event and censoring times)."""
        return self.table

    def survival_at(self, times: Sequence[float], group: str | None = None) -> pl.DataFrame:
        """The curve of ``group`` (the only one when None) evaluated at ``times`` (right-continuous step
        function): time, n_risk (persons at risk at that time), survival, std_err, ci_low, ci_high."""
        groups = self.medians.get_column("group").to_list()
        if group is None:
            if len(groups) != 1:
                raise ValueError(f"name the group: the result has groups {groups}")
            group = groups[0]
        if group not in groups:
            raise ValueError(f"group {group!r} not in the result (groups {groups})")
        curve = self.table.filter(pl.col("group") == group)
        t = curve.get_column("time").to_numpy()
        out = []
        for x in times:
            k = int(np.searchsorted(t, x, side="right")) - 1  # last row with time ≤ x
            later = np.flatnonzero(t >= x)
            at_risk = float(curve.get_column("n_risk")[int(later[0])]) if later.size else 0.0
            if k < 0:
                out.append((float(x), at_risk, 1.0, 0.0, 1.0, 1.0))
            else:
                row = curve.row(k, named=True)
                out.append((float(x), at_risk, row["survival"], row["std_err"], row["ci_low"], row["ci_high"]))
        return pl.DataFrame(out, schema={"time": pl.Float64, "n_risk": pl.Float64, "survival": pl.Float64,
                                         "std_err": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64},
                            orient="row")

    def summary(self, *, max_rows: int | None = MAX_ROWS) -> str:
        """Medians by group, then the event-time rows of the curves."""
        label = ci_label(self.alpha)
        body = ["Median survival:"]
        body += frame_lines(self.medians, labels={"ci_low": f"{label} low", "ci_high": "high"}, max_rows=max_rows)
        body += ["", "Survival at event times:"]
        events = self.table.filter(pl.col("n_event") > 0).drop("n_censor")
        body += frame_lines(events, ci=("ci_low", "ci_high"), ci_label=label, max_rows=max_rows)
        info = [("Estimator", "Kaplan–Meier, Greenwood variance"), ("Groups", self.group_col or "one curve"),
                ("Intervals", f"pointwise {label}, {self.conf_type} transform")]
        return render_summary("Kaplan–Meier survival", info, body, notes_lines(self.notes))


def _km_curve(start: np.ndarray, stop: np.ndarray, event: np.ndarray, weight: np.ndarray,
              z: float, conf_type: str) -> dict[str, np.ndarray]:
    """One Kaplan–Meier curve at the distinct stop times (see module docstring)."""
    times = np.unique(stop)
    w_stop = np.concatenate([[0.0], np.cumsum(weight[np.argsort(stop, kind="stable")][::-1])])[::-1]
    stop_sorted = np.sort(stop)
    start_sorted = np.sort(start)
    w_start = np.concatenate([[0.0], np.cumsum(weight[np.argsort(start, kind="stable")][::-1])])[::-1]
    n_risk = w_stop[np.searchsorted(stop_sorted, times, "left")] - w_start[np.searchsorted(start_sorted, times, "left")]
    pos = np.searchsorted(times, stop)
    n_event = np.bincount(pos, weights=weight * event, minlength=times.size)
    n_censor = np.bincount(pos, weights=weight * ~event, minlength=times.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - n_event / n_risk)
        terms = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
        sigma = np.sqrt(np.cumsum(terms))
        sigma[surv <= 0] = np.nan
        std_err = surv * sigma
        if conf_type == "log":
            lo, hi = surv * np.exp(-z * sigma), np.minimum(surv * np.exp(z * sigma), 1.0)
        elif conf_type == "log-log":
            log_s = np.log(surv)
            lo, hi = surv ** np.exp(-z * sigma / log_s), surv ** np.exp(z * sigma / log_s)
            at_one = surv >= 1.0
            lo[at_one], hi[at_one] = 1.0, 1.0
        else:
            lo, hi = np.clip(surv - z * std_err, 0, 1), np.clip(surv + z * std_err, 0, 1)
    zero_var = sigma == 0  # before the first event: the curve is 1 with no uncertainty
    lo[zero_var], hi[zero_var] = surv[zero_var], surv[zero_var]
    return {"time": times, "n_risk": n_risk, "n_event": n_event, "n_censor": n_censor, "survival": surv,
            "std_err": std_err, "ci_low": lo, "ci_high": hi}


def _first_below(times: np.ndarray, curve: np.ndarray, p: float = 0.5, eps: float = 1e-10) -> float:
    """First time the step curve (values at ``times``) is ≤ p; the midpoint to the next drop when it equals p."""
    ok = np.isfinite(curve)
    hit = np.flatnonzero(ok & (curve <= p + eps))
    if hit.size == 0:
        return float("nan")
    j = int(hit[0])
    if abs(curve[j] - p) <= eps:
        later = np.flatnonzero(ok[j + 1:] & (curve[j + 1:] < curve[j] - eps))
        if later.size:
            return 0.5 * (times[j] + times[j + 1 + int(later[0])])
    return float(times[j])


def kaplan_meier(data: pl.DataFrame, *, time_col: str, event_col: str, group_col: str | None = None,
                 start_col: str | None = None, weight_col: str | None = None, conf_type: str = "log",
                 alpha: float = 0.05) -> KaplanMeierResult:
    """Kaplan–Meier curves of ``time_col``/``event_col`` by ``group_col`` (see module docstring).

    ``start_col`` gives counting-process intervals ``(start, stop]`` (delayed entry, person-period rows);
    ``weight_col`` case weights. ``conf_type``: ``log`` (R ``survfit``'s default), ``log-log`` or ``plain``.
    """
    what = "kaplan_meier"
    if conf_type not in CONF_TYPES:
        raise ValueError(f"{what}: conf_type must be one of {CONF_TYPES} (got {conf_type!r})")
    z = z_value(alpha)
    sp = _spells(data, time_col=time_col, event_col=event_col, start_col=start_col, weight_col=weight_col, what=what)
    if group_col is None:
        codes, levels = np.zeros(data.height, dtype=np.int64), ["all"]
    else:
        codes, levels = _codes(data, group_col, what)
    frames, medians = [], []
    for k, level in enumerate(levels):
        m = codes == k
        c = _km_curve(sp.start[m], sp.stop[m], sp.event[m], sp.weight[m], z, conf_type)
        frames.append(pl.DataFrame({"group": [str(level)] * c["time"].size, **c}, schema=KM_SCHEMA))
        ev = c["n_event"] > 0
        t_ev = c["time"][ev]
        medians.append({"group": str(level), "n": int(m.sum()), "events": float(c["n_event"].sum()),
                        "median": _first_below(t_ev, c["survival"][ev]),
                        "ci_low": _first_below(t_ev, c["ci_low"][ev]),
                        "ci_high": _first_below(t_ev, c["ci_high"][ev])})
    return KaplanMeierResult(table=pl.concat(frames), medians=pl.DataFrame(medians, schema=MEDIAN_SCHEMA),
                             conf_type=conf_type, alpha=alpha, group_col=group_col)


# -------------------------------------------------------------------------------------------- Cox model


@dataclass(frozen=True)
class _RiskSets:
    """Everything about the risk sets that does not depend on β (times as integer ranks, strata offset)."""

    start: np.ndarray         # rank of start (−1 for right-censored rows), offset by stratum
    stop: np.ndarray          # rank of stop, offset by stratum
    event: np.ndarray         # bool
    weight: np.ndarray
    stop_order: np.ndarray
    start_order: np.ndarray
    stop_pos: np.ndarray      # per event time: first position in stop-sorted rows with stop ≥ τ
    start_pos: np.ndarray     # per event time: first position in start-sorted rows with start ≥ τ
    tau: np.ndarray           # event times (ranks, offset), ascending
    death_time: np.ndarray    # per event row: index into tau
    deaths: np.ndarray        # event rows
    n_deaths: np.ndarray      # d per event time
    mean_w: np.ndarray        # mean case weight of the events per event time
    rep: np.ndarray           # expanded Efron rows: event-time index
    frac: np.ndarray          # expanded Efron rows: k/d (0 for Breslow)
    lo: np.ndarray            # per row: first event time index with τ > start
    hi: np.ndarray            # per row: first event time index with τ > stop


def _risk_sets(sp: _Spells, strata: np.ndarray, ties: str) -> _RiskSets:
    values = np.concatenate([sp.stop, sp.start[np.isfinite(sp.start)]])
    uniq = np.unique(values)
    span = uniq.size + 2
    start = np.where(np.isfinite(sp.start), np.searchsorted(uniq, sp.start), -1) + strata * span
    stop = np.searchsorted(uniq, sp.stop) + strata * span
    stop_order = np.argsort(stop, kind="stable")
    start_order = np.argsort(start, kind="stable")
    deaths = np.flatnonzero(sp.event)
    tau, death_time, n_deaths = np.unique(stop[deaths], return_inverse=True, return_counts=True)
    mean_w = np.bincount(death_time, weights=sp.weight[deaths], minlength=tau.size) / n_deaths
    rep = np.repeat(np.arange(tau.size), n_deaths)
    k = np.arange(rep.size) - np.repeat(np.cumsum(n_deaths) - n_deaths, n_deaths)
    frac = k / n_deaths[rep] if ties == "efron" else np.zeros(rep.size)
    return _RiskSets(start=start, stop=stop, event=sp.event, weight=sp.weight, stop_order=stop_order,
                     start_order=start_order, stop_pos=np.searchsorted(stop[stop_order], tau, "left"),
                     start_pos=np.searchsorted(start[start_order], tau, "left"), tau=tau, death_time=death_time,
                     deaths=deaths, n_deaths=n_deaths, mean_w=mean_w, rep=rep, frac=frac,
                     lo=np.searchsorted(tau, start, "right"), hi=np.searchsorted(tau, stop, "right"))


def _at_risk(rs: _RiskSets, v: np.ndarray) -> np.ndarray:
    """``Σ_{start < τ ≤ stop} v`` at every event time ``τ`` (v: rows × …)."""
    def tail(order: np.ndarray, pos: np.ndarray) -> np.ndarray:
        cs = np.cumsum(v[order][::-1], axis=0)[::-1]
        cs = np.concatenate([cs, np.zeros((1,) + v.shape[1:])], axis=0)
        return cs[pos]
    return tail(rs.stop_order, rs.stop_pos) - tail(rs.start_order, rs.start_pos)


def _at_deaths(rs: _RiskSets, v: np.ndarray) -> np.ndarray:
    out = np.zeros((rs.tau.size,) + v.shape[1:])
    np.add.at(out, rs.death_time, v[rs.deaths])
    return out


@dataclass(frozen=True)
class _Fit:
    loglik: float
    score: np.ndarray
    info: np.ndarray
    xbar: np.ndarray   # expanded rows × p
    haz: np.ndarray    # expanded rows: hazard increment w̄_D / den


def _evaluate(rs: _RiskSets, x: np.ndarray, beta: np.ndarray, *, second: bool = True) -> _Fit:
    """Log partial likelihood, score and information at ``beta`` (module docstring formulas)."""
    eta = x @ beta
    risk = rs.weight * np.exp(eta)
    s0 = _at_risk(rs, risk)
    s1 = _at_risk(rs, risk[:, None] * x)
    d0 = _at_deaths(rs, risk)
    d1 = _at_deaths(rs, risk[:, None] * x)
    r, f = rs.rep, rs.frac
    den = s0[r] - f * d0[r]
    xbar = (s1[r] - f[:, None] * d1[r]) / den[:, None]
    c = rs.mean_w[r]
    w_d = rs.weight[rs.deaths]
    loglik = float(w_d @ eta[rs.deaths] - c @ np.log(den))
    score = w_d @ x[rs.deaths] - c @ xbar
    info = np.zeros((x.shape[1], x.shape[1]))
    if second:
        xx = x[:, :, None] * x[:, None, :]
        s2 = _at_risk(rs, risk[:, None, None] * xx)
        d2 = _at_deaths(rs, risk[:, None, None] * xx)
        m2 = (s2[r] - f[:, None, None] * d2[r]) / den[:, None, None]
        info = np.einsum("k,kij->ij", c, m2 - xbar[:, :, None] * xbar[:, None, :])
    return _Fit(loglik=loglik, score=score, info=info, xbar=xbar, haz=c / den)


def _score_residuals(rs: _RiskSets, x: np.ndarray, beta: np.ndarray, fit: _Fit) -> np.ndarray:
    """Per-row score residuals ``L_i`` (rows × p; Efron form, module docstring); ``Σ w_i L_i = U(β)``."""
    m, p = rs.tau.size, x.shape[1]
    e = np.exp(x @ beta)
    h, f, r = fit.haz, rs.frac, rs.rep
    haz_t = np.bincount(r, weights=h, minlength=m)
    xhaz_t = np.zeros((m, p))
    np.add.at(xhaz_t, r, h[:, None] * fit.xbar)
    cum_h = np.concatenate([[0.0], np.cumsum(haz_t)])
    cum_xh = np.concatenate([np.zeros((1, p)), np.cumsum(xhaz_t, axis=0)])
    d_h = cum_h[rs.hi] - cum_h[rs.lo]
    d_xh = cum_xh[rs.hi] - cum_xh[rs.lo]
    resid = -e[:, None] * (x * d_h[:, None] - d_xh)
    # events: + mean_k (x − x̄_k), and back the (k/d) part of the hazard they were charged at their own time
    mean_xbar = np.zeros((m, p))
    np.add.at(mean_xbar, r, fit.xbar)
    mean_xbar /= rs.n_deaths[:, None]
    hf_t = np.bincount(r, weights=h * f, minlength=m)
    xhf_t = np.zeros((m, p))
    np.add.at(xhf_t, r, (h * f)[:, None] * fit.xbar)
    dd, t = rs.deaths, rs.death_time
    resid[dd] += x[dd] - mean_xbar[t] + e[dd, None] * (x[dd] * hf_t[t, None] - xhf_t[t])
    return resid


@dataclass(frozen=True, eq=False, repr=False)
class CoxResult(ResultDisplay):
    """A fitted Cox proportional-hazards model (see module docstring).

    ``var`` is the variance used for ``se``/tests (robust when ``robust``), ``var_model`` the model-based
    ``I(β̂)⁻¹``. ``tests`` maps ``likelihood_ratio``, ``wald``, ``score`` (and ``robust_score``) to
    ``(statistic, df, p)``. Result protocol: ``to_polars()`` is the coefficient table (:data:`COX_SCHEMA`).
    """

    terms: tuple[str, ...]
    coef: np.ndarray
    var: np.ndarray
    var_model: np.ndarray
    robust: bool
    loglik: tuple[float, float]
    tests: Mapping[str, tuple[float, int, float]]
    n: int
    n_events: float
    n_clusters: int
    n_strata: int
    ties: str
    iterations: int
    converged: bool
    counting_process: bool
    alpha: float = 0.05
    #: robust fits: each cluster's summed dfbeta ``D_c = U_c I(β̂)⁻¹`` (n_clusters × p, clusters in sorted order
    #: of ``cluster_col``), so that ``var = Σ_c D_c' D_c`` — the clusters' scores of a few-cluster bootstrap
    cluster_dfbeta: np.ndarray | None = None

    @property
    def se(self) -> np.ndarray:
        """Standard errors used for inference (robust when the fit is robust)."""
        return np.sqrt(np.diag(self.var))

    @property
    def se_model(self) -> np.ndarray:
        """Model-based standard errors ``sqrt(diag I(β̂)⁻¹)``."""
        return np.sqrt(np.diag(self.var_model))

    def _repr_fields(self) -> dict[str, Any]:
        return {"terms": self.terms, "n": self.n, "events": self.n_events, "ties": self.ties,
                "robust": self.robust, "coef": tuple(float(b) for b in self.coef[:4])}

    def to_polars(self) -> pl.DataFrame:
        """One row per term: coef, exp(coef), model SE, robust SE (null unless robust), z, p and the CI of coef."""
        z = z_value(self.alpha)
        se = self.se
        stat = self.coef / se
        return pl.DataFrame({
            "term": list(self.terms), "coef": self.coef, "exp_coef": np.exp(self.coef), "se": self.se_model,
            "robust_se": se if self.robust else [None] * len(self.terms), "z": stat,
            "p_value": 2 * stats.norm.sf(np.abs(stat)), "ci_low": self.coef - z * se, "ci_high": self.coef + z * se,
        }, schema=COX_SCHEMA)

    def summary(self, *, max_rows: int | None = MAX_ROWS) -> str:
        """Data, ties, variance; the coefficient table; the three tests."""
        info = [("Data", "counting process (start, stop]" if self.counting_process else "one row per person"),
                ("Rows / events", f"{self.n} / {fmt(self.n_events)}"), ("Strata", self.n_strata),
                ("Ties", "Efron" if self.ties == "efron" else "Breslow"),
                ("Standard errors", f"robust (sandwich), {self.n_clusters} clusters" if self.robust else "model-based"),
                ("Converged", f"{'yes' if self.converged else 'NO'} ({self.iterations} iterations)")]
        body = frame_lines(self.to_polars(), ci=("ci_low", "ci_high"), ci_label=f"{ci_label(self.alpha)} (coef)",
                           drop_empty=("robust_se",), max_rows=max_rows)
        names = {"likelihood_ratio": "Likelihood ratio", "wald": "Wald" + (" (robust)" if self.robust else ""),
                 "score": "Score (log-rank)", "robust_score": "Robust score"}
        footer = [f"{names[k]}: χ²({df}) = {fmt(s)}, p = {fmt_p(p)}" for k, (s, df, p) in self.tests.items()]
        footer.append(f"Log partial likelihood: {fmt(self.loglik[0])} (β = 0), {fmt(self.loglik[1])} (fit)")
        return render_summary("Cox proportional hazards", info, body, footer)


def _chi2(stat: float, df: int) -> tuple[float, int, float]:
    return (float(stat), int(df), float(stats.chi2.sf(stat, df)))


def cox_ph(data: pl.DataFrame, *, time_col: str, event_col: str, covariates: Sequence[str],
           start_col: str | None = None, strata_col: str | None = None, weight_col: str | None = None,
           cluster_col: str | None = None, robust: bool | None = None, ties: str = "efron",
           alpha: float = 0.05, max_iter: int = 50, tol: float = 1e-12) -> CoxResult:
    """Fit a Cox model by Newton–Raphson (see module docstring).

    ``start_col`` switches to counting-process rows ``(start, time]`` (time-varying covariates); ``strata_col``
    gives each stratum its own baseline hazard; ``weight_col`` case weights; ``cluster_col`` the clusters of the
    robust variance (default, when ``robust``: every row its own cluster). ``robust`` defaults to True when a
    ``cluster_col`` is given.
    """
    what = "cox_ph"
    if ties not in TIES:
        raise ValueError(f"{what}: ties must be one of {TIES} (got {ties!r})")
    covariates = list(covariates)
    if not covariates:
        raise ValueError(f"{what}: name at least one covariate")
    sp = _spells(data, time_col=time_col, event_col=event_col, start_col=start_col, weight_col=weight_col, what=what)
    x = np.column_stack([_numeric(data, c, what) for c in covariates])
    if not sp.event.any():
        raise ValueError(f"{what}: column {event_col!r} has no events")
    strata = _codes(data, strata_col, what)[0] if strata_col else np.zeros(data.height, dtype=np.int64)
    robust = (cluster_col is not None) if robust is None else robust
    cluster = _codes(data, cluster_col, what)[0] if cluster_col else np.arange(data.height)
    if start_col is not None and cluster_col is not None:
        _check_overlaps(data, cluster_col, sp.start, sp.stop, what)
    x = x - (sp.weight @ x) / sp.weight.sum()  # centring changes nothing but the numerics
    const = np.flatnonzero(np.all(np.abs(x) < 1e-12 * (1 + np.abs(x).max()), axis=0))
    if const.size:
        raise ValueError(f"{what}: covariate {covariates[int(const[0])]!r} is constant")
    rs = _risk_sets(sp, strata, ties)
    beta = np.zeros(x.shape[1])
    fit0 = fit = _evaluate(rs, x, beta)
    converged, it = False, 0
    while it < max_iter:
        it += 1
        try:
            step = inv_spd(fit.info, "Cox information") @ fit.score
        except NotEstimable as exc:
            raise NotEstimable(f"{what}: {exc} (covariates {covariates})") from None
        new_beta = beta + step
        new = _evaluate(rs, x, new_beta)
        for _ in range(30):
            if np.isfinite(new.loglik) and new.loglik >= fit.loglik - 1e-12 * abs(fit.loglik):
                break
            step = step / 2
            new_beta = beta + step
            new = _evaluate(rs, x, new_beta)
        change = abs(new.loglik - fit.loglik)
        beta, fit = new_beta, new
        if change <= tol * (abs(fit.loglik) + tol) and np.max(np.abs(step)) < 1e-6:
            converged = True
            break
    var_model = inv_spd(fit.info, "Cox information")
    p = len(covariates)
    tests = {"likelihood_ratio": _chi2(2 * (fit.loglik - fit0.loglik), p)}
    var = var_model
    dfbeta = None
    if robust:
        n_cl = int(cluster.max()) + 1
        u = np.zeros((n_cl, p))
        np.add.at(u, cluster, sp.weight[:, None] * _score_residuals(rs, x, beta, fit))
        dfbeta = u @ var_model
        var = dfbeta.T @ dfbeta
    tests["wald"] = _chi2(float(beta @ inv_spd(var, "Wald test") @ beta), p)
    tests["score"] = _chi2(float(fit0.score @ inv_spd(fit0.info, "score test") @ fit0.score), p)
    if robust:
        u0 = np.zeros((n_cl, p))
        np.add.at(u0, cluster, sp.weight[:, None] * _score_residuals(rs, x, np.zeros(p), fit0))
        tests["robust_score"] = _chi2(float(fit0.score @ inv_spd(u0.T @ u0, "robust score test") @ fit0.score), p)
    return CoxResult(terms=tuple(covariates), coef=beta, var=var, var_model=var_model, robust=bool(robust),
                     loglik=(fit0.loglik, fit.loglik), tests=tests, n=data.height,
                     n_events=float(sp.event.sum()), n_clusters=int(np.unique(cluster).size),
                     n_strata=int(np.unique(strata).size), ties=ties, iterations=it, converged=converged,
                     counting_process=start_col is not None, alpha=alpha, cluster_dfbeta=dfbeta)


# ------------------------------------------------------------------------------- for the evaluation path


@dataclass(frozen=True, eq=False, repr=False)
class DurationEffects(ResultDisplay):
    """Effect of the arm on a time to event, as rows of the estimates table (:data:`ESTIMATES_SCHEMA`).

    Estimands: ``log_hazard_ratio`` and ``hazard_ratio`` (Cox, arm 1 vs 0, adjusted for the covariates;
    the hazard ratio's SE by the delta method ``exp(β̂) se(β̂)``, its interval ``exp(β̂ ± z se)``); ``km`` —
    Kaplan–Meier survival of arm ``group`` (1 or 0) at ``event_time`` = whole time units since the start of
    follow-up; ``survival_difference`` — ``Ŝ_1(t) − Ŝ_0(t)`` with SE ``sqrt(se_1² + se_0²)`` (independent arms).
    ``n_treated`` / ``n_control``: persons per arm (for ``km`` rows: persons at risk at that time).
    """

    table: pl.DataFrame
    cox: CoxResult
    km: KaplanMeierResult
    outcome: str
    treatment_col: str
    alpha: float = 0.05
    notes: Mapping[str, object] = field(default_factory=dict)

    @property
    def hazard_ratio(self) -> float:
        """``exp(β̂)`` of the arm."""
        return float(np.exp(self.cox.coef[0]))

    def _repr_fields(self) -> dict[str, Any]:
        se = float(self.cox.se[0])
        return {"outcome": self.outcome, "hazard_ratio": self.hazard_ratio, "log_hr": float(self.cox.coef[0]),
                "se": se, "robust": self.cox.robust, "events": self.cox.n_events}

    def to_polars(self) -> pl.DataFrame:
        """The tidy table (hazard ratio rows first, then survival by arm and time, then differences)."""
        return self.table

    def summary(self, *, max_rows: int | None = MAX_ROWS) -> str:
        """Design, Cox model settings, the tidy rows, the Cox tests and medians by arm."""
        m = self.km.medians
        medians = [f"  arm {r['group']}: {fmt(r['median'])} (CI {fmt(r['ci_low'])} to {fmt(r['ci_high'])}), "
                   f"{r['n']} rows, {fmt(r['events'])} events" for r in m.iter_rows(named=True)]
        info = [("Outcome", f"time to {self.outcome}"), ("Comparison", f"{self.treatment_col} = 1 vs 0"),
                ("Model", f"Cox proportional hazards, {self.cox.ties.capitalize()} ties"
                          + (f", adjusted for {', '.join(self.cox.terms[1:])}" if len(self.cox.terms) > 1 else "")),
                ("Standard errors", f"robust, clustered ({self.cox.n_clusters} clusters)" if self.cox.robust
                 else "model-based"), ("Survival curves", f"Kaplan–Meier, {self.km.conf_type} intervals")]
        body = tidy_lines(self.table, self.alpha, drop=("time",), max_rows=max_rows)
        footer = [f"{k}: χ²({df}) = {fmt(s)}, p = {fmt_p(p)}" for k, (s, df, p) in self.cox.tests.items()]
        footer += ["Median time to event:", *medians]
        footer += notes_lines(self.notes)
        return render_summary("Duration outcome: hazard ratio and survival by arm", info, body, footer)


def _default_km_times(max_time: float, limit: int = 40) -> list[int]:
    top = int(math.floor(max_time))
    if top < 1:
        return []
    if top <= limit:
        return list(range(1, top + 1))
    return sorted({int(round(v)) for v in np.linspace(1, top, limit)})


def duration_effects(data: pl.DataFrame, *, id_col: str, time_col: str, event_col: str,
                     arm_col: str | None = None, group_col: str | None = None, covariates: Sequence[str] = (),
                     robust: bool = True, ties: str = "efron", start_col: str | None = None,
                     strata_col: str | None = None, weight_col: str | None = None, cluster_col: str | None = None,
                     km_times: Sequence[int] | None = None, outcome: str | None = None,
                     conf_type: str = "log", alpha: float = 0.05) -> DurationEffects:
    """Hazard ratio and survival by arm for a randomised (``arm_col``) or matched (``group_col``: 1 = treated,
    0 = matched comparison, with matching weights in ``weight_col``) design; see :class:`DurationEffects`.

    One row per person (``time_col`` = follow-up from the start, ``event_col`` 1 = the event happened) or
    person-period rows ``(start_col, time_col]`` carrying time-varying ``covariates``. Robust SEs cluster by
    ``cluster_col`` (default ``id_col``). ``km_times``: whole time units at which the curves are reported
    (default 1, 2, … up to the longest follow-up, at most 40 points).
    """
    what = "duration_effects"
    if (arm_col is None) == (group_col is None):
        raise ValueError(f"{what}: give exactly one of arm_col (randomised) or group_col (matched)")
    treat: str = arm_col if arm_col is not None else str(group_col)
    arm = _numeric(data, treat, what)
    bad = ~np.isin(arm, (0.0, 1.0))
    if bad.any():
        raise ValueError(f"{what}: column {treat!r} must be 0 (control) or 1 (treated); not so in {_rows_text(bad)}")
    if np.unique(arm).size < 2:
        raise ValueError(f"{what}: column {treat!r} has only the value {int(arm[0])}; both arms are needed")
    ids, _ = _codes(data, id_col, what)
    first = np.full(int(ids.max()) + 1, -1.0)
    first[ids[::-1]] = arm[::-1]
    varies = first[ids] != arm
    if varies.any():
        raise ValueError(f"{what}: column {treat!r} must be constant within each {id_col!r}; not so in {_rows_text(varies)}")
    if start_col is None and ids.size != np.unique(ids).size:
        dup = np.zeros(ids.size, dtype=bool)
        _, first_pos = np.unique(ids, return_index=True)
        dup[np.setdiff1d(np.arange(ids.size), first_pos)] = True
        raise ValueError(f"{what}: column {id_col!r} repeats in {_rows_text(dup)}; person-period rows need start_col")
    if treat in covariates:
        raise ValueError(f"{what}: column {treat!r} is the arm; do not list it among the covariates")
    outcome = outcome or event_col
    cox = cox_ph(data, time_col=time_col, event_col=event_col, covariates=[treat, *covariates], start_col=start_col,
                 strata_col=strata_col, weight_col=weight_col, cluster_col=cluster_col or id_col, robust=robust,
                 ties=ties, alpha=alpha)
    km = kaplan_meier(data.with_columns(pl.col(treat).cast(pl.Int64).cast(pl.Utf8).alias("_arm")),
                      time_col=time_col, event_col=event_col, group_col="_arm", start_col=start_col,
                      weight_col=weight_col, conf_type=conf_type, alpha=alpha)
    z = z_value(alpha)
    persons = {a: int(np.unique(ids[arm == a]).size) for a in (0.0, 1.0)}
    b, se = float(cox.coef[0]), float(cox.se[0])
    base = {"outcome": outcome, "group": None, "time": None, "event_time": None,
            "n_treated": persons[1.0], "n_control": persons[0.0]}
    rows = [{**base, "estimand": "log_hazard_ratio", "estimate": b, "se": se, "ci_low": b - z * se,
             "ci_high": b + z * se},
            {**base, "estimand": "hazard_ratio", "estimate": math.exp(b), "se": math.exp(b) * se,
             "ci_low": math.exp(b - z * se), "ci_high": math.exp(b + z * se)}]
    times = list(km_times) if km_times is not None else _default_km_times(float(np.max(_numeric(data, time_col, what))))
    if any(int(t) != t for t in times):
        raise ValueError(f"{what}: km_times must be whole time units (got {times})")
    curves = {a: km.survival_at([float(t) for t in times], group=str(a)).to_dicts() for a in (1, 0)}
    diff_rows = []
    for k, t in enumerate(times):
        r1, r0 = curves[1][k], curves[0][k]
        at_risk = {"n_treated": int(round(r1["n_risk"])), "n_control": int(round(r0["n_risk"]))}
        for a, r in ((1, r1), (0, r0)):
            rows.append({**base, **at_risk, "estimand": "km", "group": a, "event_time": int(t),
                         "estimate": r["survival"], "se": r["std_err"], "ci_low": r["ci_low"], "ci_high": r["ci_high"]})
        d = r1["survival"] - r0["survival"]
        se_d = math.sqrt(r1["std_err"] ** 2 + r0["std_err"] ** 2)
        diff_rows.append({**base, **at_risk, "estimand": "survival_difference", "event_time": int(t), "estimate": d,
                          "se": se_d, "ci_low": d - z * se_d, "ci_high": d + z * se_d})
    notes: dict[str, object] = {}
    if not cox.converged:
        notes["cox"] = f"Newton–Raphson did not converge in {cox.iterations} iterations"
    return DurationEffects(table=pl.DataFrame(rows + diff_rows, schema=ESTIMATES_SCHEMA), cox=cox, km=km,
                           outcome=outcome, treatment_col=treat, alpha=alpha, notes=notes)
