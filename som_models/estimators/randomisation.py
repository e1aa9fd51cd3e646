"""Randomisation inference for an assumption tested on a roll-out by cluster (e.g. by municipality).

With very few treated clusters (≤ 5) no large-sample test is trustworthy: cluster-robust standard errors and the
wild cluster bootstrap both rest on the clusters as the units of information. What stays valid is Fisher's
randomisation inference over the assignment itself (Fisher 1935; for staggered roll-outs Abadie, Athey, Imbens &
Wooldridge 2020): if the adoption times were assigned to clusters at random, every permutation of them was as
likely as the one observed, and under a *sharp* null — every person's effect is known — the outcomes under any
other assignment can be computed, so the p-value is the share of assignments whose statistic is at least as
extreme as the observed one (:func:`som_models.estimators.bootstrap.rollout_randomisation_test`).

**Sharp null of an assumption.** The assumption fixes the effect at the tested event times ``E``: ``a_e`` (the
implied path, success rate × profile). At the other post-treatment event times (course years, years beyond the
tested ones) the effect is a nuisance; it is set to the estimated event-time effect ``θ̂_e`` (a plug-in, stated in
the result). Persons' outcomes without the intervention are then ``Y⁰_it = Y_it − h(t − g_i)`` for treated persons
(``t ≥ g_i``), with ``h(e) = a_e`` on ``E``, ``θ̂_e`` elsewhere after the start, 0 before. Under an assignment ``π``
(adoption time per cluster) ``Y^π_it = Y⁰_it + h(t − π_c(i))``.

**Statistic** (the evaluation's level test): the mean over ``E`` of the event-time ATTs minus the mean assumption,
``T(π) = mean_E ATT^π(e) − mean_E a_e``. ``ATT^π(e)`` is the unconditional staggered estimator on cluster means:
for each cohort ``g`` of ``π`` with ``t = g + e`` observed and base ``b`` = the last observed period before ``g``,
``ATT(g, t) = Σ_{c: π_c = g} w_c ΔȲ_c / Σ w_c − Σ_{c ∈ C} w_c ΔȲ_c / Σ w_c`` with ``ΔȲ_c = Ȳ_ct − Ȳ_cb`` (cluster
means, ``w_c`` the cluster's persons; ``C`` the never-treated clusters, or with ``control = "notyet"`` also those
adopting after ``t``), and ``ATT(e) = Σ_g W_g ATT(g, g + e) / Σ_g W_g`` (``W_g`` = persons in cohort ``g``). On a
balanced panel in which everyone in a cluster shares its adoption time this equals the person-level estimator.
Any statistic gives a valid test; this one is the verdict's.

**Tests.** Refutation: two-sided, ``p = #{π: |T(π)| ≥ |T_obs|} / N``. Equivalence within ``±δ`` (``δ`` on the
mean; TOST, Schuirmann 1987): the sharp nulls shifted to ``a_e + δ`` and ``a_e − δ``, one-sided
``p₊ = P(T₊(π) ≤ T₊,obs)`` and ``p₋ = P(T₋(π) ≥ T₋,obs)``, ``p_TOST = max(p₊, p₋)``. All ``N = G! / Π m_k!``
distinct assignments are enumerated when ``N ≤ max_exact`` (exact); otherwise ``draws`` random permutations give
the valid (not exact) ``(1 + #) / (1 + B)``.

Requirement: every person of a cluster has the cluster's adoption time (cluster-level assignment, everybody
treated from adoption — the intention-to-treat contrast of a roll-out). When adoption varies within clusters
there is no assignment to permute and :class:`RolloutNotPermutable` says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from som_models.estimators.bootstrap import rollout_randomisation_test

CONTROLS = ("never", "notyet")


class RolloutNotPermutable(ValueError):
    """The data do not describe a roll-out whose assignment can be permuted (the message says why)."""


@dataclass(frozen=True)
class RolloutInference:
    """Randomisation inference for one assumption (see the module docstring).

    ``statistic`` = ``T_obs`` (realised mean minus assumed mean over ``event_times``); ``p_value`` two-sided;
    ``tost_p`` the equivalence p-value within ``±margin`` (None without a margin); ``assignments`` the number of
    distinct assignments, ``draws`` how many were evaluated, ``exact`` whether all were; ``clusters`` /
    ``treated_clusters`` the clusters and those adopting; ``nuisance`` the plug-in effects at untested times."""

    statistic: float
    p_value: float
    tost_p: float | None
    assignments: int
    draws: int
    exact: bool
    clusters: int
    treated_clusters: int
    event_times: tuple[int, ...]
    margin: float
    nuisance: Mapping[int, float]

    def describe(self) -> str:
        how = (f"all {self.assignments:,} assignments (exact)" if self.exact
               else f"{self.draws:,} random assignments of {self.assignments:,} (Monte Carlo)")
        return (f"randomisation inference over the roll-out of {self.treated_clusters} of {self.clusters} clusters, "
                f"{how}")


def _cluster_means(data: pl.DataFrame, value: str, cluster_col: str, time_col: str, periods: list[int],
                   clusters: list) -> np.ndarray:
    """Cluster × period means of ``value`` (NaN where a cluster has nobody observed in a period)."""
    means = data.group_by(cluster_col, time_col).agg(pl.col(value).mean().alias("_m"))
    out = np.full((len(clusters), len(periods)), np.nan)
    ci = {c: i for i, c in enumerate(clusters)}
    ti = {t: j for j, t in enumerate(periods)}
    for c, t, m in means.iter_rows():
        if m is not None:
            out[ci[c], ti[int(t)]] = float(m)
    return out


class _Statistic:
    """``T(π)`` on the cluster means of one sharp null (see the module docstring)."""

    def __init__(self, y0: np.ndarray, weights: np.ndarray, periods: list[int], effect: Mapping[int, float],
                 tested: tuple[int, ...], control: str) -> None:
        self.y0, self.w, self.periods, self.effect, self.tested, self.control = y0, weights, periods, effect, tested, control
        self.period_index = {t: j for j, t in enumerate(periods)}
        self.assumed_mean = float(np.mean([effect[e] for e in tested]))

    def outcomes(self, adoption: np.ndarray) -> np.ndarray:
        e = np.asarray(self.periods)[None, :] - adoption[:, None]
        on = (adoption[:, None] > 0) & (e >= 0)
        span = int(e.max()) + 1 if on.any() else 1
        lookup = np.array([self.effect.get(k, 0.0) for k in range(max(span, 1))])
        return self.y0 + np.where(on, lookup[np.clip(e, 0, span - 1)], 0.0)

    def _base(self, g: int) -> int | None:
        """The last observed period before ``g`` (the staggered estimators' base period of post-treatment cells)."""
        return max((p for p in self.periods if p < g), default=None)

    def __call__(self, adoption: np.ndarray) -> float:
        y = self.outcomes(adoption)
        cohorts = np.unique(adoption[adoption > 0])
        atts = []
        for e in self.tested:
            num = den = 0.0
            for g in cohorts:
                t = int(g) + e
                base = self._base(int(g))
                if t not in self.period_index or base is None:
                    continue
                d = y[:, self.period_index[t]] - y[:, self.period_index[base]]
                treated = (adoption == g) & np.isfinite(d)
                ctrl = ((adoption == 0) | ((adoption > t) if self.control == "notyet" else False)) & np.isfinite(d)
                wt, wc = self.w[treated], self.w[ctrl]
                if wt.sum() <= 0 or wc.sum() <= 0:
                    continue
                att = float(wt @ d[treated] / wt.sum() - wc @ d[ctrl] / wc.sum())
                num += wt.sum() * att
                den += wt.sum()
            if den > 0:
                atts.append(num / den)
        if len(atts) != len(self.tested):
            return float("nan")
        return float(np.mean(atts)) - self.assumed_mean


def rollout_path_inference(data: pl.DataFrame, *, outcome: str, id_col: str, time_col: str, group_col: str,
                           cluster_col: str, path: Mapping[int, float], nuisance: Mapping[int, float] | None = None,
                           control: str = "never", margin: float = 0.0, draws: int = 9999, seed: int = 20_211,
                           max_exact: int = 20_000) -> RolloutInference:
    """Randomisation inference for the assumed effect ``path`` (event time → effect, the tested times) of a
    roll-out by ``cluster_col`` (see the module docstring). ``group_col`` is each person's adoption time (0 or null
    = never); ``nuisance`` the effect assumed at untested post-treatment event times (default 0); ``margin`` the
    equivalence margin ``δ`` on the mean (0 = no equivalence test)."""
    if control not in CONTROLS:
        raise ValueError(f"control must be one of {', '.join(CONTROLS)} (got {control!r})")
    if not path:
        raise ValueError("path: no tested event time")
    for col in (outcome, id_col, time_col, group_col, cluster_col):
        if col not in data.columns:
            raise ValueError(f"column {col!r} not in the data (has {', '.join(data.columns)})")
    df = data.select(id_col, time_col, cluster_col, pl.col(group_col).fill_null(0).cast(pl.Int64).alias("_g"),
                     pl.col(outcome).cast(pl.Float64).alias("_y")).drop_nulls(["_y"])
    per_cluster = df.group_by(cluster_col).agg(pl.col("_g").n_unique().alias("_k"), pl.col("_g").first().alias("_g"),
                                               pl.col(id_col).n_unique().alias("_n")).sort(cluster_col)
    mixed = per_cluster.filter(pl.col("_k") > 1)
    if mixed.height:
        raise RolloutNotPermutable(
            f"randomisation inference over the roll-out needs everybody in a cluster ({cluster_col}) to share the "
            f"cluster's adoption time, but {mixed.height} of {per_cluster.height} clusters mix persons with different "
            "first-treatment periods (or treated and untreated persons): there is no cluster assignment to permute")
    clusters = per_cluster.get_column(cluster_col).to_list()
    adoption = per_cluster.get_column("_g").to_numpy().astype(np.int64)
    treated = int((adoption > 0).sum())
    if treated == 0 or treated == len(clusters):
        raise RolloutNotPermutable("randomisation inference needs treated and untreated clusters")
    weights = per_cluster.get_column("_n").to_numpy().astype(float)
    periods = sorted(int(t) for t in df.get_column(time_col).unique().to_list())
    tested = tuple(sorted(int(e) for e in path))
    nuisance = {int(e): float(v) for e, v in (nuisance or {}).items() if int(e) >= 0 and int(e) not in path}

    def test(shift: float):
        effect = {**nuisance, **{int(e): float(a) + shift for e, a in path.items()}}
        e_obs = df.get_column(time_col).cast(pl.Int64) - df.get_column("_g")
        h = np.where((df.get_column("_g").to_numpy() > 0) & (e_obs.to_numpy() >= 0),
                     np.array([effect.get(int(k), 0.0) for k in e_obs.to_numpy()]), 0.0)
        y0 = df.with_columns((pl.col("_y") - pl.Series(h)).alias("_y0"))
        stat = _Statistic(_cluster_means(y0, "_y0", cluster_col, time_col, periods, clusters), weights, periods,
                          effect, tested, control)
        if not np.isfinite(stat(adoption)):
            raise RolloutNotPermutable(f"{outcome}: the tested event times {list(tested)} cannot all be estimated "
                                       "from the clusters' means (a period or its base is not observed)")
        return rollout_randomisation_test(stat, adoption, max_exact=max_exact, draws=draws, seed=seed)

    main = test(0.0)
    tost = None
    if margin > 0:
        upper, lower = test(margin), test(-margin)
        tost = max(upper.p_less, lower.p_greater)
    return RolloutInference(statistic=main.statistic, p_value=main.p_value, tost_p=tost, assignments=main.assignments,
                            draws=main.draws, exact=main.exact, clusters=len(clusters), treated_clusters=treated,
                            event_times=tested, margin=float(margin), nuisance=nuisance)
