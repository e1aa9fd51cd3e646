"""One estimation dispatcher: the design block → the estimator, its inference and the tidy table.

Every way of estimating realised effects goes through :func:`estimate` — ``som estimate``, the evaluation
(``som evaluate`` on a delivery or a panel) and the Dagster graph — so the same settings give the same
numbers everywhere. The settings are an :class:`EstimationSettings` (the spec's / the command line's design
block):

* ``design="staggered"`` — Callaway & Sant'Anna (2021) group-time ATT(g, t) with a never-treated or
  not-yet-treated comparison group, ``varying`` or ``universal`` base period; with ``covariates`` the
  outcome-regression (``reg``), inverse-probability (``ipw``), doubly robust (``dr``, Sant'Anna & Zhao 2020,
  the default) or improved doubly robust (``dr-imp``) two-period estimator per cell.
* ``design="matched"`` — a comparison group matched from the never-treated population (exact and/or
  nearest-neighbour on the logit propensity score of pre-period outcomes and covariates), then ATT(g, t) per
  cohort against the matched units.
* ``design="rct"`` — randomised arms (``arm_col`` 0/1): difference in means (``dim``) or ANCOVA on the
  baseline outcome (``ancova``) by period since randomisation, HC2 standard errors.

For the DiD designs each outcome's cells are aggregated by event time (``dynamic``, and ``group`` /
``calendar`` when asked); the ``overall`` row is the mean of the event-time effects over
``min_e ≤ e`` (R ``did``'s ``aggte(type="dynamic", min_e=)``). Standard errors come from the units'
influence functions, clustered by unit or — ``cluster`` (staggered design) — by a column constant within unit
such as the municipality that assigns the treatment (``G/(G − 1) Σ_c S_c S_c' / n²``, see
:mod:`som_models.estimators.staggered_did`); ``bootstrap > 0`` replaces them by the multiplier bootstrap (one
weight per cluster) with simultaneous bands per estimand family (Callaway & Sant'Anna 2021, §4.1). The metadata
record the number of clusters and of treated clusters (units and treated units when not clustered).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from som_models.estimators.event_study import RealisedEffects
from som_models.estimators.results import effects_table

DESIGNS = ("staggered", "rct", "matched")
CONTROLS = ("never", "notyet")
BASE_PERIODS = ("varying", "universal")
DID_METHODS = ("reg", "ipw", "dr", "dr-imp", "ipw-ht")
RCT_METHODS = ("dim", "ancova")
BOOTSTRAP_WEIGHTS = ("mammen", "rademacher")
AGGREGATIONS = ("dynamic", "group", "calendar")

_DESIGN_TEXT = {
    "staggered": "staggered adoption, Callaway & Sant'Anna (2021) ATT(g,t)",
    "matched": "matched comparison group from the never-treated population, then ATT(g,t) per cohort",
}

Progress = Callable[[Iterable[str], str], Iterable[str]]


@dataclass(frozen=True)
class EstimationSettings:
    """The design block: which estimator, comparison, covariates and inference (see the module docstring).

    ``start`` (rct) is the randomisation period (an int) or the name of a column holding it per unit.
    ``min_e`` is the first event time of the ``overall`` mean (the course years are excluded by passing
    the course length). ``aggregations`` lists the DiD aggregations to tabulate (``dynamic`` always).
    """

    design: str = "staggered"
    control: str = "never"
    base_period: str = "varying"
    covariates: tuple[str, ...] = ()
    method: str | None = None
    alpha: float = 0.05
    bootstrap: int = 0
    bootstrap_weights: str = "mammen"
    seed: int = 0
    weight_col: str | None = None
    min_e: int | None = None
    aggregations: tuple[str, ...] = AGGREGATIONS
    #: column constant within unit to cluster the standard errors by (e.g. the municipality that assigns the
    #: treatment); None = the unit. Staggered design only.
    cluster: str | None = None
    # matched design
    match_on: tuple[str, ...] = ()
    exact: tuple[str, ...] = ()
    pre_periods: int = 1
    caliper: float = 0.2
    ratio: int = 1
    replace: bool = True
    # randomised design
    arm_col: str | None = None
    start: int | str | None = None

    def __post_init__(self) -> None:
        problems = settings_problems(self)
        if problems:
            raise ValueError(problems[0])


def settings_problems(s: EstimationSettings | Any, names: Mapping[str, str] | None = None) -> list[str]:
    """Every inconsistency of the settings ``s`` (any object with the fields of :class:`EstimationSettings`),
    as messages an analyst can act on; empty = valid.

    ``names`` gives the name the caller knows each setting by (``--method`` on the command line,
    ``design.method`` in a spec); unnamed settings appear under their field name.
    """
    n = {f: (names or {}).get(f, f) for f in EstimationSettings.__dataclass_fields__}
    out = []
    if s.design not in DESIGNS:
        out.append(f"{n['design']} must be {', '.join(DESIGNS)} (got {s.design!r})")
    if s.control not in CONTROLS:
        out.append(f"{n['control']} must be never or notyet (got {s.control!r})")
    if s.base_period not in BASE_PERIODS:
        out.append(f"{n['base_period']} must be varying or universal (got {s.base_period!r})")
    if not 0 < s.alpha < 1:
        out.append(f"{n['alpha']} must be between 0 and 1 (got {s.alpha})")
    if s.bootstrap < 0 or s.bootstrap == 1:
        out.append(f"{n['bootstrap']} must be 0 (off) or at least 2 draws (got {s.bootstrap})")
    if s.bootstrap_weights not in BOOTSTRAP_WEIGHTS:
        out.append(f"{n['bootstrap_weights']} must be mammen or rademacher (got {s.bootstrap_weights!r})")
    if any(a not in AGGREGATIONS for a in s.aggregations) or "dynamic" not in s.aggregations:
        out.append(f"{n['aggregations']} must include dynamic and be among {', '.join(AGGREGATIONS)}")
    if s.design == "rct":
        if s.method is not None and s.method not in RCT_METHODS:
            out.append(f"{n['method']} for the rct design must be dim or ancova (got {s.method!r})")
        if s.arm_col is None or s.start is None:
            out.append(f"the rct design needs {n['arm_col']} (a 0/1 arm column) and {n['start']} (the randomisation "
                       "period or its column)")
    elif s.design in DESIGNS:
        if s.method is not None and s.method not in DID_METHODS:
            out.append(f"{n['method']} must be one of {', '.join(DID_METHODS)} for the {s.design} design "
                       f"(got {s.method!r})")
        if s.method is not None and not s.covariates:
            out.append(f"{n['method']} {s.method} needs {n['covariates']} (without covariates the estimator is the "
                       "unconditional DiD)")
    cluster = getattr(s, "cluster", None)
    if cluster is not None and (not isinstance(cluster, str) or not cluster):
        out.append(f"{n['cluster']} must be a column name (got {cluster!r})")
    elif cluster is not None and s.design != "staggered":
        out.append(f"{n['cluster']} (clustered standard errors) is implemented for the staggered design only "
                   f"(got design {s.design!r})")
    if s.ratio < 1:
        out.append(f"{n['ratio']} must be at least 1 (got {s.ratio})")
    if s.pre_periods < 0:
        out.append(f"{n['pre_periods']} must not be negative (got {s.pre_periods})")
    if not s.caliper > 0:
        out.append(f"{n['caliper']} must be positive (got {s.caliper})")
    return out


def estimate(
    data: pl.DataFrame,
    *,
    outcomes: Iterable[str],
    id_col: str,
    time_col: str,
    group_col: str | None = None,
    settings: EstimationSettings = EstimationSettings(),
    progress: Progress | None = None,
) -> RealisedEffects:
    """Realised effects of every outcome under ``settings`` (DiD designs need ``group_col``: first treated
    period per unit, 0 or missing = never treated).

    Returns :class:`RealisedEffects`: the tidy table (DESIGN §3.3), the pre-trend test per outcome (DiD
    designs), the per-outcome estimator results, and metadata describing design, comparison, method,
    standard errors and intervals. ``progress`` wraps the loop over outcomes (e.g. a progress bar).
    """
    outcomes = list(outcomes)
    if not outcomes:
        raise ValueError("no outcome to estimate")
    missing = [c for c in (id_col, time_col, *outcomes) if c not in data.columns]
    if missing:
        raise ValueError(f"column(s) {', '.join(missing)} not in the data (has {', '.join(data.columns)})")
    if settings.cluster is not None and settings.cluster not in data.columns:
        raise ValueError(f"cluster column {settings.cluster!r} is not in the data (has {', '.join(data.columns)})")
    if settings.design == "rct":
        return _rct(data, outcomes, id_col, time_col, settings)
    if group_col is None or group_col not in data.columns:
        raise ValueError(f"the {settings.design} design needs the first-treatment period column "
                         f"({group_col!r} is not in the data)")
    return _did(data, outcomes, id_col, time_col, group_col, settings, progress)


def _did(data, outcomes, id_col, time_col, group_col, s: EstimationSettings, progress) -> RealisedEffects:
    from som_models.estimators.bootstrap import BootstrapInference, bootstrap_aggregate, bootstrap_cells
    from som_models.estimators.staggered_did import aggregate, att_gt, pretrend_test

    tables, pretrends, results, notes, boot_meta, balance = [], {}, {}, {}, {}, {}
    loop = outcomes if progress is None else progress(
        outcomes, f"Estimating ({s.bootstrap} bootstrap draws)" if s.bootstrap else "Estimating")
    covs = list(s.covariates)
    for y in loop:
        if s.design == "matched":
            from som_models.estimators.matching import match_comparison, matched_att_gt

            m = match_comparison(data, outcome=y, id_col=id_col, time_col=time_col, group_col=group_col,
                                 covariates=list(s.match_on), exact=list(s.exact), pre_periods=s.pre_periods,
                                 method="nearest" if (s.match_on or s.pre_periods) else "exact",
                                 ratio=s.ratio, caliper=s.caliper, replace=s.replace, seed=s.seed)
            res = matched_att_gt(data, m, outcome=y, id_col=id_col, time_col=time_col, group_col=group_col,
                                 base_period=s.base_period, covariates=covs, method=s.method)
            balance[y] = m.balance.to_dicts()
        else:
            res = att_gt(data, outcome=y, id_col=id_col, time_col=time_col, group_col=group_col, control=s.control,
                         base_period=s.base_period, covariates=covs, method=s.method, weight_col=s.weight_col,
                         cluster_col=s.cluster)
        aggs = {k: aggregate(res, k, min_e=s.min_e) if k == "dynamic" else aggregate(res, k) for k in s.aggregations}
        boot: dict[str, BootstrapInference | None] | None = None
        if s.bootstrap:
            kw = dict(draws=s.bootstrap, seed=s.seed, weights=s.bootstrap_weights, alpha=s.alpha,
                      cluster=res.clusters)
            boot = {"cells": bootstrap_cells(res, **kw)}
            for k, agg in aggs.items():
                by_level, overall = bootstrap_aggregate(agg, res.n_units, **kw)
                boot[k] = by_level
                if k == "dynamic":
                    boot["overall"] = overall
            boot_meta[y] = {k: {"critical_value": b.crit, "draws": b.draws} for k, b in boot.items() if b is not None}
        tables.append(effects_table(res, aggs, alpha=s.alpha, bootstrap=boot))
        pretrends[y] = pretrend_test(res)
        results[y] = res
        simple = aggregate(res, "simple")
        notes[y] = {**dict(res.notes), "simple_att": {"estimate": simple.overall, "se": simple.overall_se}}
        flagged = [f"({c.group},{c.time}): {', '.join(c.flags)}" for c in res.cells if c.flags]
        if flagged:
            notes[y]["flagged_cells"] = flagged
    method = results[outcomes[-1]].method
    clustering = {y: _clustering(r) for y, r in results.items()}
    level = s.cluster or "unit"
    meta: dict[str, Any] = {
        "design": _DESIGN_TEXT[s.design],
        "comparison_group": ({"never": "never treated", "notyet": "not yet treated"}[s.control]
                             if s.design == "staggered" else "matched never-treated units"),
        "base_period": s.base_period,
        "covariates": covs,
        "covariates_period": "base period of each ATT(g,t)" if covs else None,
        "method": method,
        "overall": f"mean of the event-time effects for e >= {s.min_e or 0} (dynamic aggregation)",
        "standard_errors": (f"multiplier bootstrap ({s.bootstrap_weights}), clustered by {level}" if s.bootstrap
                            else f"analytic influence function, clustered by {level}"
                            + (" (G/(G-1) small-sample factor)" if s.cluster else "")),
        "cluster": s.cluster,
        "clusters": clustering[outcomes[-1]]["clusters"],
        "treated_clusters": clustering[outcomes[-1]]["treated_clusters"],
        "intervals": "simultaneous (uniform) bands per estimand family" if s.bootstrap else "pointwise",
        "unbalanced_panels": "kept; each ATT(g,t) uses the units observed in both of its periods",
        "alpha": s.alpha,
        "pretrend_test": {y: {"statistic": p.statistic, "df": p.df, "p_value": p.p_value} for y, p in pretrends.items()},
        "notes": notes,
    }
    if s.bootstrap:
        meta["bootstrap"] = {"draws": s.bootstrap, "seed": s.seed, "weights": s.bootstrap_weights,
                             "critical_values": boot_meta}
    if balance:
        meta["balance"] = balance
    if len({(c["clusters"], c["treated_clusters"]) for c in clustering.values()}) > 1:
        meta["clusters_by_outcome"] = clustering
    return RealisedEffects(pl.concat(tables), pretrends, results, meta)


def _clustering(res) -> dict[str, int]:
    """Number of clusters (units when not clustered) and of clusters with a treated unit, of one result."""
    treated = res.unit_groups > 0
    codes = getattr(res, "clusters", None)
    if codes is None:
        return {"clusters": int(res.n_units), "treated_clusters": int(treated.sum())}
    return {"clusters": int(codes.max()) + 1 if codes.size else 0,
            "treated_clusters": int(np.unique(codes[treated]).size)}


def _rct(data, outcomes, id_col, time_col, s: EstimationSettings) -> RealisedEffects:
    from som_models.estimators.rct import rct_effects

    method = s.method or "dim"
    tables, results, details, notes = [], {}, {}, {}
    if s.arm_col is None or s.start is None:  # refused by settings_problems; kept for the type checker
        raise ValueError("the rct design needs an arm column and the randomisation period")
    arm_col, start = s.arm_col, s.start
    for y in outcomes:
        r = rct_effects(data, outcome=y, id_col=id_col, time_col=time_col, arm_col=arm_col, start=start,
                        method=method, covariates=list(s.covariates), alpha=s.alpha)
        tables.append(r.table)
        results[y] = r
        details[y] = r.details.to_dicts()
        notes[y] = dict(r.notes)
    meta: dict[str, Any] = {
        "design": "randomised: " + ("difference in means" if method == "dim" else "ANCOVA (baseline outcome at e = -1"
                                    + (", covariates" if s.covariates else "") + ")") + " by period since randomisation",
        "comparison_group": "control arm",
        "covariates": list(s.covariates),
        "method": method,
        "standard_errors": "HC2 robust (classical SEs in details)",
        "intervals": "pointwise",
        "overall": "mean of the effects at e >= 0; SE from per-person influence functions",
        "alpha": s.alpha,
        "pretrend_test": None,
        "details": details,
        "notes": notes,
    }
    return RealisedEffects(pl.concat(tables), {}, results, meta)


def settings_from(options: Mapping[str, Any]) -> EstimationSettings:
    """Settings from a plain mapping (a spec's design block or parsed command-line options); unknown keys are
    an error naming them, lists become tuples."""
    known = set(EstimationSettings.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown estimation setting(s): {', '.join(unknown)}")
    clean: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items() if v is not None}
    return EstimationSettings(**clean)


__all__ = ["EstimationSettings", "estimate", "settings_from", "settings_problems", "DESIGNS", "DID_METHODS", "RCT_METHODS"]
