"""Group-time average treatment effects for staggered adoption (Callaway & Sant'Anna 2021), unconditional.

For a group ``g`` (units first treated in period ``g``) and a period ``t``, with base period ``b``
(``b = g − 1`` for post-treatment cells; ``b = t − 1`` for pre-treatment cells under the *varying* base
period, ``b = g − 1`` under the *universal* one)::

    ATT(g, t) = E[Y_t − Y_b | G = g] − E[Y_t − Y_b | C]

where ``C`` is the never-treated units (``control="never"``) or the units not yet treated by
``max(t, b)`` (``control="notyet"``). Units must be observed in both ``t`` and ``b``.

Inference uses the influence function of each cell over all ``n`` units
(``ATT̂ − ATT ≈ (1/n) Σ_i ψ_i``)::

    ψ_i = (n / n_g) D_i (ΔY_i − μ_g) − (n / n_C) C_i (ΔY_i − μ_C),      Var(ATT̂) = Σ_i ψ_i² / n²

which clusters by unit (person). Aggregations (simple, dynamic/event, group, calendar) weight cells by the
group shares ``p_g = n_g / n`` and add the influence of estimating those weights, as in the R package
``did`` (Callaway & Sant'Anna, ``aggte``). The pre-trend test is the Wald statistic on the pre-treatment
cells, ``W = θ' V⁻¹ θ ~ χ²(k)`` with ``V = Ψ'Ψ / n²``.

Reference: Callaway, B. and Sant'Anna, P. H. C. (2021), "Difference-in-Differences with multiple time
periods", *Journal of Econometrics* 225(2), 200–230.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

from som_models.estimators.results import AggregateEffect, AttCell, DidResult, PreTrendTest


def att_gt(
    data: pl.DataFrame,
    *,
    outcome: str,
    id_col: str,
    time_col: str,
    group_col: str,
    control: str = "never",
    base_period: str = "varying",
) -> DidResult:
    """Estimate every ATT(g, t) of one outcome; ``group_col`` is the first treated period (0/null = never)."""
    if control not in ("never", "notyet"):
        raise ValueError(f"control must be 'never' or 'notyet' (got {control!r})")
    if base_period not in ("varying", "universal"):
        raise ValueError(f"base_period must be 'varying' or 'universal' (got {base_period!r})")
    for col in (outcome, id_col, time_col, group_col):
        if col not in data.columns:
            raise ValueError(f"column {col!r} not found; columns are {data.columns}")

    wide = _wide(data, outcome=outcome, id_col=id_col, time_col=time_col, group_col=group_col)
    y, periods, groups_of_unit = wide.y, wide.periods, wide.group
    n = y.shape[0]
    treated_groups = sorted(int(g) for g in np.unique(groups_of_unit) if g > 0 and g > periods[0])
    period_index = {int(p): k for k, p in enumerate(periods)}

    cells: list[AttCell] = []
    influence: list[np.ndarray] = []
    for g in treated_groups:
        for t in periods:
            t = int(t)
            if t >= g:
                b = g - 1
            elif base_period == "varying":
                b = t - 1
            else:
                b = g - 1
                if t == b:
                    continue
            if b not in period_index or t not in period_index:
                continue
            treat = groups_of_unit == g
            if control == "never":
                ctrl = groups_of_unit == 0
            else:
                ctrl = (groups_of_unit == 0) | (groups_of_unit > max(t, b))
                ctrl &= groups_of_unit != g
            dy = y[:, period_index[t]] - y[:, period_index[b]]
            seen = ~np.isnan(dy)
            treat &= seen
            ctrl &= seen
            n_g, n_c = int(treat.sum()), int(ctrl.sum())
            if n_g == 0 or n_c == 0:
                continue
            mu_g = dy[treat].mean()
            mu_c = dy[ctrl].mean()
            psi = np.zeros(n)
            psi[treat] = (n / n_g) * (dy[treat] - mu_g)
            psi[ctrl] -= (n / n_c) * (dy[ctrl] - mu_c)
            est = float(mu_g - mu_c)
            se = float(np.sqrt(np.sum(psi**2)) / n)
            cells.append(AttCell(group=g, time=t, event_time=t - g, estimate=est, se=se, n_treated=n_g, n_control=n_c))
            influence.append(psi)

    psi_matrix = np.column_stack(influence) if influence else np.zeros((n, 0))
    psi_matrix.setflags(write=False)
    shares = {g: float(np.mean(groups_of_unit == g)) for g in treated_groups}
    return DidResult(
        outcome=outcome,
        cells=tuple(cells),
        influence=psi_matrix,
        unit_groups=wide.group,
        group_shares=shares,
        n_units=n,
        control=control,
        base_period=base_period,
    )


@dataclass(frozen=True)
class _Wide:
    y: np.ndarray
    periods: np.ndarray
    group: np.ndarray


def _wide(data: pl.DataFrame, *, outcome: str, id_col: str, time_col: str, group_col: str) -> _Wide:
    """Units × periods outcome matrix (NaN where a unit is not observed) and each unit's group."""
    df = data.select(
        pl.col(id_col).alias("_id"),
        pl.col(time_col).cast(pl.Int64).alias("_t"),
        pl.col(group_col).cast(pl.Int64).fill_null(0).alias("_g"),
        pl.col(outcome).cast(pl.Float64).alias("_y"),
    ).filter(pl.col("_y").is_not_null() & pl.col("_y").is_not_nan())
    dup = df.group_by("_id", "_t").len().filter(pl.col("len") > 1)
    if dup.height:
        raise ValueError(f"{dup.height} (id, time) pairs occur more than once; the panel must have one row per unit and period")
    groups = df.group_by("_id").agg(pl.col("_g").n_unique().alias("k"), pl.col("_g").first())
    if groups.filter(pl.col("k") > 1).height:
        raise ValueError(f"column {group_col!r} must be constant within each unit")
    periods = np.sort(df.get_column("_t").unique().to_numpy())
    ids = groups.sort("_id")
    unit_index = {u: k for k, u in enumerate(ids.get_column("_id").to_list())}
    y = np.full((len(unit_index), len(periods)), np.nan)
    rows = np.fromiter((unit_index[u] for u in df.get_column("_id").to_list()), dtype=np.int64, count=df.height)
    cols = np.searchsorted(periods, df.get_column("_t").to_numpy())
    y[rows, cols] = df.get_column("_y").to_numpy()
    return _Wide(y=y, periods=periods, group=ids.get_column("_g").to_numpy())


def _weight_influence(keep: list[int], groups_of_cells: list[int], result: DidResult) -> np.ndarray:
    """Influence of estimating the group-share weights (units × kept cells), as in R ``did``'s ``wif``."""
    g_unit = result.unit_groups
    pg = np.array([result.group_shares[groups_of_cells[k]] for k in keep])
    total = pg.sum()
    ind = np.column_stack([(g_unit == groups_of_cells[k]).astype(float) for k in keep])
    dev = ind - pg[None, :]
    return dev / total - np.outer(dev.sum(axis=1), pg / total**2)


def _weighted(result: DidResult, keep: list[int]) -> tuple[float, np.ndarray]:
    """Group-share-weighted average of the kept cells and its influence function."""
    cells = result.cells
    groups = [c.group for c in cells]
    pg = np.array([result.group_shares[groups[k]] for k in keep])
    w = pg / pg.sum()
    att = np.array([cells[k].estimate for k in keep])
    psi = result.influence[:, keep] @ w + _weight_influence(keep, groups, result) @ att
    return float(w @ att), psi


def _finish(result: DidResult, kind: str, levels: list[tuple[int, float, np.ndarray, int, int]], overall: tuple[float, np.ndarray]) -> AggregateEffect:
    n = result.n_units
    est = {lvl: e for lvl, e, _, _, _ in levels}
    se = {lvl: float(np.sqrt(np.sum(p**2)) / n) for lvl, _, p, _, _ in levels}
    counts = {lvl: (nt, nc) for lvl, _, _, nt, nc in levels}
    return AggregateEffect(
        outcome=result.outcome,
        kind=kind,
        estimates=est,
        ses=se,
        counts=counts,
        overall=overall[0],
        overall_se=float(np.sqrt(np.sum(overall[1] ** 2)) / n),
        influence={lvl: p for lvl, _, p, _, _ in levels},
    )


def aggregate(result: DidResult, kind: str, *, min_e: int | None = None, max_e: int | None = None) -> AggregateEffect:
    """Aggregate ATT(g, t) cells: ``simple``, ``dynamic`` (by event time), ``group`` or ``calendar``.

    * dynamic: ``θ(e) = Σ_g w_g ATT(g, g+e)``, ``w_g ∝ p_g`` over groups observed at ``e``; overall =
      the plain mean of ``θ(e)`` over ``e ≥ 0`` (restricted to ``min_e ≤ e ≤ max_e`` if given).
    * group: ``θ(g)`` = mean of ATT(g, t) over post periods; overall = ``Σ_g p_g θ(g) / Σ p_g``.
    * calendar: ``θ(t) = Σ_{g ≤ t} w_g ATT(g, t)``; overall = mean over t.
    * simple: ``Σ p_g ATT(g, t) / Σ p_g`` over all post cells.
    """
    cells = result.cells
    if not cells:
        raise ValueError(f"no ATT(g,t) cells for outcome {result.outcome!r}: no treated group with a comparison group")
    post = [k for k, c in enumerate(cells) if c.time >= c.group]
    if kind == "simple":
        val, psi = _weighted(result, post)
        return _finish(result, kind, [], (val, psi))
    if kind == "dynamic":
        levels = []
        for e in sorted({c.event_time for c in cells}):
            keep = [k for k, c in enumerate(cells) if c.event_time == e]
            val, psi = _weighted(result, keep)
            levels.append((e, val, psi, *_counts(cells, keep)))
        lo = 0 if min_e is None else max(0, min_e)
        window = [(e, v, p) for e, v, p, _, _ in levels if e >= lo and (max_e is None or e <= max_e)]
        if not window:
            raise ValueError(f"no event times in the window [{lo}, {max_e}] for outcome {result.outcome!r}")
        overall = (float(np.mean([v for _, v, _ in window])), np.mean([p for _, _, p in window], axis=0))
        return _finish(result, kind, levels, overall)
    if kind == "group":
        levels = []
        for g in sorted({c.group for c in cells}):
            keep = [k for k in post if cells[k].group == g]
            if not keep:
                continue
            val = float(np.mean([cells[k].estimate for k in keep]))
            psi = result.influence[:, keep].mean(axis=1)
            levels.append((g, val, psi, *_counts(cells, keep)))
        gs = [g for g, *_ in levels]
        pg = np.array([result.group_shares[g] for g in gs])
        w = pg / pg.sum()
        att = np.array([v for _, v, *_ in levels])
        ind = np.column_stack([(result.unit_groups == g).astype(float) for g in gs])
        dev = ind - pg[None, :]
        wif = dev / pg.sum() - np.outer(dev.sum(axis=1), pg / pg.sum() ** 2)
        psi_overall = np.column_stack([p for _, _, p, *_ in levels]) @ w + wif @ att
        return _finish(result, kind, levels, (float(w @ att), psi_overall))
    if kind == "calendar":
        levels = []
        for t in sorted({cells[k].time for k in post}):
            keep = [k for k in post if cells[k].time == t]
            val, psi = _weighted(result, keep)
            levels.append((t, val, psi, *_counts(cells, keep)))
        overall = (float(np.mean([v for _, v, *_ in levels])), np.mean([p for _, _, p, *_ in levels], axis=0))
        return _finish(result, kind, levels, overall)
    raise ValueError(f"unknown aggregation {kind!r}; use simple, dynamic, group or calendar")


def _counts(cells: tuple[AttCell, ...], keep: list[int]) -> tuple[int, int]:
    """Treated persons summed over the kept cells' groups (each group once); controls: the largest cell's."""
    by_group: dict[int, int] = {}
    for k in keep:
        by_group[cells[k].group] = max(by_group.get(cells[k].group, 0), cells[k].n_treated)
    return sum(by_group.values()), max(cells[k].n_control for k in keep)


def pretrend_test(result: DidResult) -> PreTrendTest:
    """Wald test that all pre-treatment ATT(g, t) (t < g) are zero, with the influence-function covariance."""
    pre = [k for k, c in enumerate(result.cells) if c.time < c.group]
    if not pre:
        return PreTrendTest(statistic=float("nan"), df=0, p_value=float("nan"))
    theta = np.array([result.cells[k].estimate for k in pre])
    psi = result.influence[:, pre]
    v = psi.T @ psi / result.n_units**2
    w = float(theta @ np.linalg.pinv(v) @ theta)
    df = int(np.linalg.matrix_rank(v))
    return PreTrendTest(statistic=w, df=df, p_value=float(stats.chi2.sf(w, df)))
