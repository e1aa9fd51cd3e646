"""Outcome variance components for planning: the person-level and between-cluster autocovariances of an outcome.

The planned precision of a difference-in-differences estimator is a quadratic form in the covariance of a
person's outcomes over the years. The model here is *stationary in lags*: with ``Y_it`` the outcome of person
``i`` in year ``t`` and ``k(i)`` the person's cluster (the spec's ``assigned_by``, e.g. the municipality)::

    Cov(Y_is, Y_it)            = γ(|s − t|)          (total, persons of any cluster)
    Cov(Y_is, Y_jt), i ≠ j ∈ k = γ_b(|s − t|)        (between-cluster part: two persons of the same cluster)

so ``γ = γ_w + γ_b`` and the intra-cluster correlation of a linear contrast ``a`` of a person's years is
``ρ(a) = aᵀΓ_b a / aᵀΓ a``; the design effect of ``m`` persons per cluster is ``1 + (m − 1) ρ(a)`` (Kish 1965;
Donner & Klar 2000, ch. 5). With one ICC for every lag this is the familiar ``1 + (m − 1)ρ``; here ρ is allowed to
differ by lag (a cluster-year shock raises the ICC of a one-year change more than that of a level).

**Estimation from a baseline panel** (:func:`estimate_components`): only untreated person-years are used (every
year of never-treated persons; the years before the start of treated persons). Outcomes are centred by year.
``γ(k)`` is the mean over year pairs ``(t, t + k)`` of the cross-person covariance of ``Y_t`` and ``Y_{t+k}``
(persons observed in both years). With a cluster column, ``C(k)`` is the same covariance of the *cluster-year
means* (clusters weighted equally) and, since ``Cov(ȳ_ks, ȳ_kt) = γ_b + γ_w / m_k``, the method-of-moments
estimate is ``γ_b(k) = (C(k) − γ(k)/m̃) / (1 − 1/m̃)`` with ``m̃`` the harmonic mean of the cluster sizes (the
one-way ANOVA estimator of Donner & Klar 2000, §3.3, lag by lag). Lags beyond the panel's span keep the last
estimated value (stated in ``notes``).

**Default** (no panel): :func:`default_components` reads ``assets/knowledge/outcome_variances.yaml`` — figures
measured on the simulated demo world, marked there as illustrative placeholders, not register figures. A plan
built on them says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl


@dataclass(frozen=True)
class VarianceComponents:
    """``gamma[k]`` = γ(k), ``gamma_between[k]`` = γ_b(k) for lags ``k = 0 … len − 1`` (see the module docstring)."""

    outcome: str
    gamma: tuple[float, ...]
    gamma_between: tuple[float, ...]
    persons: int
    clusters: int | None
    source: str
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.gamma or not (self.gamma[0] >= 0):
            raise ValueError(f"{self.outcome}: the variance γ(0) must be a non-negative number, got {self.gamma[:1]}")
        if len(self.gamma_between) != len(self.gamma):
            raise ValueError(f"{self.outcome}: gamma and gamma_between must have the same number of lags")

    def _lag(self, values: tuple[float, ...], k: np.ndarray) -> np.ndarray:
        arr = np.asarray(values, dtype=float)
        return arr[np.minimum(k, len(arr) - 1)]

    def matrices(self, years: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(Γ, Γ_b)`` over ``years`` (Toeplitz in the lag; lags past the estimated ones keep the last value)."""
        y = np.asarray(list(years), dtype=int)
        lag = np.abs(y[:, None] - y[None, :])
        return self._lag(self.gamma, lag), self._lag(self.gamma_between, lag)

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "gamma": list(self.gamma), "gamma_between": list(self.gamma_between),
                "persons": self.persons, "clusters": self.clusters, "source": self.source, "notes": list(self.notes)}


def _untreated(panel: pl.DataFrame, treatments: pl.DataFrame | None) -> pl.DataFrame:
    if treatments is None or treatments.is_empty():
        return panel
    starts = (treatments.filter(pl.col("start_year").is_not_null())
              .group_by("person_id").agg(pl.col("start_year").min().alias("_start")))
    joined = panel.join(starts, on="person_id", how="left")
    return joined.filter(pl.col("_start").is_null() | (pl.col("year") < pl.col("_start"))).drop("_start")


def _lag_cov(wide: np.ndarray, max_lag: int) -> list[float]:
    """Mean over year pairs of the cross-row covariance at each lag (rows with both years observed)."""
    out = []
    T = wide.shape[1]
    for k in range(max_lag + 1):
        covs, weights = [], []
        for t in range(T - k):
            a, b = wide[:, t], wide[:, t + k]
            ok = np.isfinite(a) & np.isfinite(b)
            n = int(ok.sum())
            if n < 3:
                continue
            covs.append(float(np.cov(a[ok], b[ok])[0, 1]))
            weights.append(n)
        out.append(float(np.average(covs, weights=weights)) if covs else float("nan"))
    return out


def estimate_components(panel: pl.DataFrame, outcomes: Iterable[str], *, treatments: pl.DataFrame | None = None,
                        cluster: str | None = None, source: str = "baseline panel") -> dict[str, VarianceComponents]:
    """Variance components of each outcome from the untreated person-years of ``panel`` (module docstring).

    ``panel`` has ``person_id``, ``year`` and the outcome columns (and ``cluster`` when given: a person's cluster is
    the one of their first panel year); ``treatments`` (``person_id``, ``start_year``) marks treated years, which
    are left out. Raises ``ValueError`` naming the missing column or an outcome without variation."""
    outcomes = list(outcomes)
    need = ["person_id", "year", *outcomes, *([cluster] if cluster else [])]
    missing = [c for c in need if c not in panel.columns]
    if missing:
        raise ValueError(f"baseline panel: missing column(s) {', '.join(missing)} (has {', '.join(panel.columns)})")
    data = _untreated(panel.select(need), treatments)
    years = sorted(data.get_column("year").unique().to_list())
    if len(years) < 2:
        raise ValueError(f"baseline panel: {len(years)} untreated year(s); at least 2 are needed for the variance of a "
                         "change")
    persons = data.get_column("person_id").unique().sort()
    index = {p: i for i, p in enumerate(persons.to_list())}
    rows = np.array([index[p] for p in data.get_column("person_id").to_list()])
    cols = np.searchsorted(np.asarray(years), data.get_column("year").to_numpy())
    cluster_of = None
    if cluster:
        first = data.sort("year").group_by("person_id", maintain_order=True).agg(pl.col(cluster).first())
        cl_map = dict(zip(first.get_column("person_id").to_list(), first.get_column(cluster).to_list(), strict=True))
        labels = np.array([str(cl_map[p]) for p in persons.to_list()])
        _, cluster_of = np.unique(labels, return_inverse=True)
    out = {}
    max_lag = len(years) - 1
    for outcome in outcomes:
        wide = np.full((len(persons), len(years)), np.nan)
        wide[rows, cols] = data.get_column(outcome).cast(pl.Float64).to_numpy()
        gamma = _lag_cov(wide, max_lag)
        if not (gamma[0] > 0):
            raise ValueError(f"baseline panel: outcome {outcome!r} has no variation among untreated persons; its "
                             "precision cannot be planned from this panel")
        notes = [f"γ(k) for lags beyond {max_lag} keep γ({max_lag})"]
        between = [0.0] * len(gamma)
        n_clusters = None
        if cluster_of is not None:
            n_clusters = int(cluster_of.max()) + 1
            sizes = np.bincount(cluster_of, minlength=n_clusters).astype(float)
            means = np.full((n_clusters, len(years)), np.nan)
            for t in range(len(years)):
                ok = np.isfinite(wide[:, t])
                s = np.bincount(cluster_of[ok], weights=wide[ok, t], minlength=n_clusters)
                c = np.bincount(cluster_of[ok], minlength=n_clusters)
                means[:, t] = np.where(c > 0, s / np.maximum(c, 1), np.nan)
            m_h = float(len(sizes) / np.sum(1.0 / sizes))
            cm = _lag_cov(means, max_lag)
            if m_h > 1 and n_clusters >= 3:
                between = [float(max(0.0, (c - g / m_h) / (1 - 1 / m_h))) if np.isfinite(c) else 0.0
                           for c, g in zip(cm, gamma, strict=True)]
                notes.append(f"between-cluster part from {n_clusters} clusters by {cluster} (harmonic mean size "
                             f"{m_h:.1f}), ANOVA moment estimator, negative values set to 0")
            else:
                notes.append(f"too few clusters or persons per cluster ({n_clusters}, harmonic size {m_h:.1f}) to "
                             "estimate a between-cluster part; taken as 0")
        out[outcome] = VarianceComponents(outcome, tuple(float(g) for g in gamma), tuple(between), len(persons),
                                          n_clusters, source, tuple(notes))
    return out


DEFAULTS_FILE = "outcome_variances.yaml"


def _defaults_path() -> Path:
    from som_reference import asset

    return asset("knowledge", DEFAULTS_FILE)


def default_components(outcomes: Iterable[str], target_group: str | None = None,
                       path: Path | None = None) -> dict[str, VarianceComponents]:
    """Variance components from the knowledge base's stated defaults (``assets/knowledge/outcome_variances.yaml``);
    ``ValueError`` naming the outcomes it has no figure for."""
    from som_reference.strict_yaml import load_yaml

    p = path or _defaults_path()
    doc = load_yaml(p)
    entries: Mapping[str, Any] = doc.get("outcomes", {})
    out, missing = {}, []
    for outcome in outcomes:
        e = entries.get(outcome)
        if e is None:
            missing.append(outcome)
            continue
        out[outcome] = VarianceComponents(
            outcome, tuple(float(x) for x in e["gamma"]), tuple(float(x) for x in e["gamma_between"]),
            int(e.get("persons", 0)), e.get("clusters"),
            f"knowledge-base default ({p.name}: {e.get('status', doc.get('status', 'unstated'))}; {e.get('source', '')})",
            ("not measured on this intervention's data: a stated default",))
    if missing:
        raise ValueError(f"{p.name} has no variance figures for {', '.join(missing)}; give a baseline panel "
                         "(--baseline or --delivery)")
    return out
