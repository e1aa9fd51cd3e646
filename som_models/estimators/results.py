"""Immutable result objects of the realised-effect estimators and the tidy estimates table (DESIGN §3.3).

:class:`DidResult` (all ATT(g, t) cells of one outcome) and :class:`AggregateEffect` (an aggregation of them)
follow the result protocol of :mod:`som_models.results_base`: ``summary()``, ``to_polars()`` (rows in
:data:`ESTIMATES_SCHEMA`) and a one-line ``repr``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from som_models.lazy_scipy import stats
from som_models.results_base import MAX_ROWS, ResultDisplay, fmt, fmt_ci, fmt_p, frame_lines, render_summary

#: Column order and types of the tidy estimates table.
ESTIMATES_SCHEMA: dict[str, Any] = {
    "outcome": pl.Utf8,
    "estimand": pl.Utf8,
    "group": pl.Int64,
    "time": pl.Int64,
    "event_time": pl.Int64,
    "estimate": pl.Float64,
    "se": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "n_treated": pl.Int64,
    "n_control": pl.Int64,
}


@dataclass(frozen=True)
class AttCell:
    """One group-time average treatment effect ATT(g, t)."""

    group: int
    time: int
    event_time: int
    estimate: float
    se: float
    n_treated: int
    n_control: int
    #: warnings about this cell, e.g. ``small_group`` (fewer treated units than the minimum cell size),
    #: ``ps_not_converged`` or ``ps_trimmed:N`` (N comparison units with propensity ≥ 0.995 got weight 0)
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class PreTrendTest:
    """Wald test of zero pre-treatment effects: ``statistic`` ~ χ²(df) under parallel pre-trends; with standard
    errors clustered by ``clusters`` clusters the p-value is the Hotelling-corrected ``F(df, clusters − df)``
    (:func:`wald_p_value`)."""

    statistic: float
    df: int
    p_value: float
    clusters: int | None = None


class _Deferrable:
    """Data descriptor for an array field that an estimator may store in a structured, deferred form.

    Reading the attribute always gives the plain numpy array: a stored object with a ``materialise()`` method (e.g.
    the unconditional estimator's block-structured influence functions) is materialised on first access and the
    array cached alongside it (``result.__dict__``), so the structured form stays available to the estimators.
    """

    _MISSING = object()

    def __init__(self, name: str, default: object = _MISSING):
        self.name = name
        self.cache = f"_{name}_materialised"
        self.default = default

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = obj.__dict__.get(self.name, self.default)
        if value is self._MISSING:
            raise AttributeError(self.name)
        if hasattr(value, "materialise"):
            cached = obj.__dict__.get(self.cache)
            if cached is None:
                cached = value.materialise()
                obj.__dict__[self.cache] = cached
            return cached
        return value

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.name] = value
        obj.__dict__.pop(self.cache, None)


def stored(obj: object, name: str):
    """The value stored for a deferrable field (structured form or array), without materialising it."""
    return obj.__dict__.get(name)


#: What the ``method`` of a :class:`DidResult` means, for summaries.
METHOD_LABELS = {
    "unconditional": "difference of mean outcome changes (no covariates)",
    "reg": "outcome regression (Heckman, Ichimura & Todd 1997)",
    "ipw": "inverse probability weighting (Abadie 2005)",
    "dr": "doubly robust (Sant'Anna & Zhao 2020)",
    "dr-imp": "improved doubly robust (Sant'Anna & Zhao 2020)",
}
#: Estimand of the tidy table for each aggregation kind, and the column that holds its level.
AGGREGATION_ESTIMANDS = {"dynamic": ("event", "event_time"), "group": ("group", "group"),
                         "calendar": ("calendar", "time"), "simple": ("overall", None)}
_CONTROL_LABELS = {"never": "never treated", "notyet": "not yet treated",
                   "matched": "matched comparison units"}
_TABLE_LABELS = {"event_time": "e", "n_treated": "n_treated", "n_control": "n_control"}


def ci_label(alpha: float) -> str:
    """``95 % CI`` for ``alpha = 0.05``."""
    return f"{100 * (1 - alpha):g} % CI"


def tidy_lines(table: pl.DataFrame, alpha: float, *, drop: tuple[str, ...] = (), max_rows: int | None = MAX_ROWS,
                extra: tuple[str, ...] = ()) -> list[str]:
    """Text table of tidy estimates rows: identifying columns that hold a value, estimate, se, CI, counts."""
    cols = [c for c in ("outcome", "estimand", "group", "time", "event_time") if c not in drop]
    cols += ["estimate", "se", "ci_low", "ci_high", *extra, "n_treated", "n_control"]
    return frame_lines(table.select(cols), labels=_TABLE_LABELS, ci=("ci_low", "ci_high"), ci_label=ci_label(alpha),
                       drop_empty=("group", "time", "event_time"), max_rows=max_rows)


def pretrend_line(outcome: str, test: PreTrendTest) -> str:
    """``outcome: χ²(df) = W, p = …`` (or that there are no pre-treatment cells)."""
    if not test.df:
        return f"{outcome}: no pre-treatment cells to test"
    return f"{outcome}: χ²({test.df}) = {test.statistic:.2f}, p = {fmt_p(test.p_value)}"


def notes_lines(notes: Mapping[str, object], limit: int = 8) -> list[str]:
    """``Notes:`` and one indented ``key: value`` line per note (at most ``limit``); nothing without notes."""
    items = list(notes.items())
    out = [f"  {k}: {v}" for k, v in items[:limit]]
    if len(items) > limit:
        out.append(f"  … {len(items) - limit} more notes")
    return (["Notes:"] + out) if out else []


@dataclass(frozen=True, eq=False, repr=False)
class DidResult(ResultDisplay):
    """All ATT(g, t) cells of one outcome with their unit-level influence functions (units × cells).

    ``influence`` is the dense units × cells matrix; ``att_gt`` keeps it in structured form (per-block moments for
    the unconditional estimator on a balanced panel, moments accumulated in chunks of persons otherwise; see
    :mod:`som_models.estimators._influence`) and builds the matrix on first access (then caches it).
    """

    outcome: str
    cells: tuple[AttCell, ...]
    influence: np.ndarray = field(repr=False)
    unit_groups: np.ndarray
    group_shares: Mapping[int, float]
    n_units: int
    control: str
    base_period: str
    #: ``unconditional`` (no covariates) or ``reg`` / ``ipw`` / ``dr`` / ``dr-imp`` (see ``drdid``)
    method: str = "unconditional"
    covariates: tuple[str, ...] = ()
    #: unit weights (normalised to mean 1) used for the group shares; None = equal weights
    unit_weights: np.ndarray | None = field(default=None, repr=False)
    #: how the data were handled: dropped rows/units, unbalanced panel, skipped cells and why
    notes: Mapping[str, object] = field(default_factory=dict)
    #: column the standard errors are clustered by (None = the unit) and each unit's cluster code (0 … G − 1)
    cluster: str | None = None
    clusters: np.ndarray | None = field(default=None, repr=False)

    def _repr_fields(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "cells": len(self.cells), "groups": len(self.group_shares),
                "units": self.n_units, "control": self.control, "method": self.method}

    def to_polars(self, *, alpha: float = 0.05) -> pl.DataFrame:
        """One ``att_gt`` row per cell (DESIGN §3.3 schema), pointwise intervals ``estimate ± z_{1−α/2} se``."""
        return effects_table(self, {}, alpha=alpha)

    def summary(self, *, alpha: float = 0.05, max_rows: int | None = MAX_ROWS) -> str:
        """Design, sizes, every ATT(g, t) cell with SE and interval, the pre-trend Wald test, flags and notes."""
        from som_models.estimators.staggered_did import pretrend_test

        flagged = [c for c in self.cells if c.flags]
        footer = ["Pre-trend test (all t < g cells zero): " + pretrend_line(self.outcome, pretrend_test(self))]
        if flagged:
            footer.append(f"Flagged cells: {len(flagged)} (" + "; ".join(
                f"g={c.group} t={c.time}: {', '.join(c.flags)}" for c in flagged[:4])
                + ("; …" if len(flagged) > 4 else "") + ")")
        footer += notes_lines(self.notes)
        info = [("Outcome", self.outcome),
                ("Estimator", "group-time ATT(g,t), Callaway & Sant'Anna (2021); "
                 + METHOD_LABELS.get(self.method, self.method)),
                ("Comparison", _CONTROL_LABELS.get(self.control, self.control)),
                ("Base period", self.base_period),
                ("Covariates", ", ".join(self.covariates) or "none"),
                ("Units", self.n_units),
                ("Cohorts", ", ".join(f"{g} ({100 * s:.1f} %)" for g, s in self.group_shares.items())),
                ("Cells", len(self.cells)),
                ("Inference", f"influence-function SEs clustered by {self.cluster or 'unit'}; pointwise {ci_label(alpha)}")]
        body = tidy_lines(self.to_polars(alpha=alpha), alpha, drop=("outcome", "estimand"), max_rows=max_rows)
        return render_summary(f"ATT(g,t) — {self.outcome}", info, body, footer)


DidResult.influence = _Deferrable("influence")  # type: ignore[assignment]


@dataclass(frozen=True, eq=False, repr=False)
class AggregateEffect(ResultDisplay):
    """An aggregation of ATT(g, t): estimates by level (event time, group or period) and overall."""

    outcome: str
    kind: str
    estimates: Mapping[int, float]
    ses: Mapping[int, float]
    counts: Mapping[int, tuple[int, int]]
    overall: float
    overall_se: float
    #: influence function of each level over the units (may be computed on first lookup)
    influence: Mapping[int, np.ndarray] = field(repr=False, default_factory=dict)
    #: influence function of ``overall`` over the units (for the bootstrap and for combining outcomes; may be
    #: computed on first access)
    overall_influence: np.ndarray | None = field(default=None, repr=False)

    def _repr_fields(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "kind": self.kind, "levels": len(self.estimates),
                "overall": self.overall, "se": self.overall_se}

    def to_polars(self, *, alpha: float = 0.05) -> pl.DataFrame:
        """One row per level (estimand ``event`` / ``group`` / ``calendar``, the level in ``event_time`` /
        ``group`` / ``time``) and the ``overall`` row, DESIGN §3.3 schema, intervals ``estimate ± z_{1−α/2} se``.

        The overall row's person counts are left empty: the aggregation alone does not record them (the tidy
        table of :func:`effects_table` takes them from the cells).
        """
        z = z_value(alpha)
        estimand, column = AGGREGATION_ESTIMANDS.get(self.kind, (self.kind, None))
        rows = []
        for lvl, est in self.estimates.items():
            se = self.ses[lvl]
            nt, nc = self.counts[lvl]
            row = {"outcome": self.outcome, "estimand": estimand, "group": None, "time": None, "event_time": None,
                   "estimate": est, "se": se, "ci_low": est - z * se, "ci_high": est + z * se,
                   "n_treated": nt, "n_control": nc}
            if column is not None:
                row[column] = lvl
            rows.append(row)
        rows.append({"outcome": self.outcome, "estimand": "overall", "group": None, "time": None, "event_time": None,
                     "estimate": self.overall, "se": self.overall_se, "ci_low": self.overall - z * self.overall_se,
                     "ci_high": self.overall + z * self.overall_se, "n_treated": None, "n_control": None})
        return pl.DataFrame(rows, schema=ESTIMATES_SCHEMA)

    def summary(self, *, alpha: float = 0.05, max_rows: int | None = MAX_ROWS) -> str:
        """The aggregation, each level's effect with SE and interval, and the overall effect."""
        what = {"dynamic": "by event time e = t − g (event study)", "group": "by treatment cohort g",
                "calendar": "by calendar period t", "simple": "weighted mean of all post-treatment cells"}
        z = z_value(alpha)
        lo, hi = self.overall - z * self.overall_se, self.overall + z * self.overall_se
        info = [("Outcome", self.outcome), ("Aggregation", f"{self.kind}: {what.get(self.kind, self.kind)}"),
                ("Levels", len(self.estimates))]
        body = tidy_lines(self.to_polars(alpha=alpha), alpha, drop=("outcome",), max_rows=max_rows)
        footer = [f"Overall: {fmt(self.overall)} (se {fmt(self.overall_se)}), {ci_label(alpha)} {fmt_ci(lo, hi)}"]
        return render_summary(f"Aggregated ATT — {self.outcome} ({self.kind})", info, body, footer)


AggregateEffect.overall_influence = _Deferrable("overall_influence", default=None)  # type: ignore[assignment]


def z_value(alpha: float) -> float:
    """Two-sided normal critical value z_{1−α/2}."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1) (got {alpha})")
    return float(stats.norm.ppf(1 - alpha / 2))


def cluster_df(clusters: int | None) -> int | None:
    """Degrees of freedom of a cluster-robust t statistic, ``G − 1`` for ``G`` clusters (None when the standard
    errors are not clustered above the unit, or with fewer than two clusters).

    With ``G`` clusters the cluster-robust variance is a sum of ``G`` outer products; comparing ``θ̂ / se`` with
    ``t(G − 1)`` instead of the normal is the usual small-sample reference (Bester, Conley & Hansen 2011; Stata's
    and R fixest's default for clustered SEs). It matters below ≈ 50 clusters: with 30 municipalities the 95 %
    critical value is 2.045, not 1.960."""
    return None if clusters is None or clusters < 2 else int(clusters) - 1


def result_df(result: DidResult) -> int | None:
    """:func:`cluster_df` of an ATT(g,t) result: ``G − 1`` when its standard errors are clustered above the unit."""
    clusters = result.clusters
    return None if clusters is None or not clusters.size else cluster_df(int(clusters.max()) + 1)


def critical_value(alpha: float, df: int | None = None) -> float:
    """Two-sided critical value: ``t_{df, 1−α/2}`` when ``df`` is given (clustered inference, :func:`cluster_df`),
    else the normal ``z_{1−α/2}``."""
    if df is None:
        return z_value(alpha)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1) (got {alpha})")
    return float(stats.t.ppf(1 - alpha / 2, df))


def two_sided_p(stat: float, df: int | None = None) -> float:
    """``P(|T| ≥ |stat|)`` for ``T ~ t(df)`` (``df`` given) or ``N(0, 1)``."""
    if df is None:
        return float(2 * stats.norm.sf(abs(stat)))
    return float(2 * stats.t.sf(abs(stat), df))


def upper_p(stat: float, df: int | None = None) -> float:
    """``P(T ≥ stat)`` for ``T ~ t(df)`` (``df`` given) or ``N(0, 1)`` — one-sided, as in the equivalence tests."""
    return float(stats.norm.sf(stat) if df is None else stats.t.sf(stat, df))


def wald_p_value(w: float, q: int, clusters: int | None = None) -> float:
    """p-value of a Wald statistic ``W = θ̂' V̂⁻¹ θ̂`` on ``q`` restrictions.

    Unclustered (``clusters`` None): ``χ²(q)``. With a cluster-robust ``V̂`` from ``G`` clusters, ``W`` is Hotelling's
    ``T²`` in the cluster sums and ``F = W (G − q) / (q (G − 1)) ~ F(q, G − q)`` (Hotelling 1931; the correction
    Cameron & Miller 2015 §VI recommend for joint tests with few clusters). ``χ²(q)`` over-rejects when ``q`` is not
    small next to ``G`` — e.g. a pre-trend test on 20 cells from 30 municipalities. ``q ≥ G`` cannot be tested (NaN).
    """
    if q <= 0 or not np.isfinite(w):
        return float("nan")
    if clusters is None:
        return float(stats.chi2.sf(w, q))
    if q >= clusters:
        return float("nan")
    f = w * (clusters - q) / (q * (clusters - 1))
    return float(stats.f.sf(f, q, clusters - q))


def effects_table(
    result: DidResult,
    aggregates: Mapping[str, AggregateEffect],
    *,
    alpha: float = 0.05,
    bootstrap: Mapping[str, Any] | None = None,
) -> pl.DataFrame:
    """All estimands of one outcome in the tidy schema: ``att_gt`` cells, ``event`` (from ``aggregates["dynamic"]``),
    ``group`` and ``calendar`` levels, and one ``overall`` row (the dynamic aggregation's overall effect, i.e. the
    mean of the post-treatment event-time effects).

    Without ``bootstrap`` the intervals are pointwise, ``estimate ± z_{1−α/2} se`` — with standard errors clustered
    above the unit (``G`` clusters) ``estimate ± t_{G−1, 1−α/2} se`` (:func:`cluster_df`). With ``bootstrap`` (a
    mapping ``"cells"`` / ``"dynamic"`` / ``"group"`` / ``"calendar"`` / ``"overall"`` → ``BootstrapInference``)
    the ``se`` column is the bootstrap SE and ``ci_low``/``ci_high`` the simultaneous band of that family.
    """
    z = critical_value(alpha, result_df(result))
    boot = dict(bootstrap or {})

    def band(family: str, label: Any, est: float, se: float) -> tuple[float, float, float]:
        b = boot.get(family)
        if b is not None and label in b.labels:
            k = b.labels.index(label)
            s = float(b.se[k])
            return s, est - b.crit * s, est + b.crit * s
        return se, est - z * se, est + z * se

    rows: list[dict[str, Any]] = []
    for c in result.cells:
        se, lo, hi = band("cells", (c.group, c.time), c.estimate, c.se)
        rows.append({"outcome": result.outcome, "estimand": "att_gt", "group": c.group, "time": c.time,
                     "event_time": c.event_time, "estimate": c.estimate, "se": se, "ci_low": lo, "ci_high": hi,
                     "n_treated": c.n_treated, "n_control": c.n_control})
    spec = (("dynamic", "event", "event_time"), ("group", "group", "group"), ("calendar", "calendar", "time"))
    for kind, estimand, column in spec:
        agg = aggregates.get(kind)
        if agg is None:
            continue
        for lvl, est in agg.estimates.items():
            se, lo, hi = band(kind, lvl, est, agg.ses[lvl])
            nt, nc = agg.counts[lvl]
            row: dict[str, Any] = {"outcome": result.outcome, "estimand": estimand, "group": None, "time": None,
                                   "event_time": None, "estimate": est, "se": se, "ci_low": lo, "ci_high": hi,
                                   "n_treated": nt, "n_control": nc}
            row[column] = lvl
            rows.append(row)
    dyn = aggregates.get("dynamic")
    if dyn is not None:
        se, lo, hi = band("overall", "overall", dyn.overall, dyn.overall_se)
        rows.append({"outcome": result.outcome, "estimand": "overall", "group": None, "time": None,
                     "event_time": None, "estimate": dyn.overall, "se": se, "ci_low": lo, "ci_high": hi,
                     "n_treated": sum({c.group: c.n_treated for c in result.cells if c.time == c.group}.values())
                     or max((c.n_treated for c in result.cells), default=0),
                     "n_control": max((c.n_control for c in result.cells), default=0)})
    return pl.DataFrame(rows, schema=ESTIMATES_SCHEMA)
