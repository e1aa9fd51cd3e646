"""A matched comparison group drawn from the population, then staggered DiD on the matched sample.

For each treated cohort ``g`` (first treated period) the candidates are the never-treated units. Features are
measured in the pre-period: covariates in period ``g − 1`` and the outcome in periods ``g − 1, …, g − L``
(``pre_periods = L``). Two ways to match:

* ``method="exact"`` — exact matching on the ``exact`` columns: units are stratified on their values; strata
  without both treated and comparison units are dropped; a comparison unit in stratum ``s`` gets weight
  ``n_T,s / n_C,s`` so the weighted comparison group has the treated units' distribution over strata
  (coarsened exact matching weights, Iacus, King & Porro 2012, without coarsening).
* ``method="nearest"`` — nearest-neighbour matching on the logit of a propensity score fitted by logistic
  regression of cohort membership on the features (Rosenbaum & Rubin 1983), ``ratio`` neighbours per treated
  unit, within a caliper of ``caliper`` standard deviations of the logit score (0.2 by default, Austin 2011),
  with or without replacement (without: greedy, treated units in random order from ``seed``). If ``exact``
  columns are also given, neighbours must share them. Each match of a treated unit with ``m`` neighbours gives
  each neighbour weight ``1/m``; a comparison unit's weight is the sum over its matches. Treated units
  without a neighbour inside the caliper are dropped (counted).

Balance: for each feature the standardised mean difference (:mod:`som_models.estimators.balance`) before (all
candidates) and after matching (weighted means), with the *pre-matching* standard deviations in both
denominators so the two are comparable (Stuart 2010, *Stat. Sci.* 25(1)); |SMD| < 0.1 is the usual target.

:func:`matched_att_gt` then runs the ATT(g, t) estimator of each cohort on its matched sample (with the match
weights as unit weights) and stacks the cells into one result whose influence functions live on the union of
units (a comparison unit matched to several cohorts is one person, so standard errors cluster by person). The
standard errors treat the matched sample as given (they ignore the uncertainty of the matching step).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from som_models.estimators._influence import PermutedInfluence, StackedSource, StreamedInfluence
from som_models.estimators._numerics import NotEstimable, logit
from som_models.estimators.balance import smd
from som_models.estimators.panel import build_panel, check_columns
from som_models.estimators.results import AttCell, DidResult, notes_lines, stored
from som_models.estimators.staggered_did import att_gt
from som_models.results_base import MAX_ROWS, ResultDisplay, frame_lines, render_summary

BALANCE_SCHEMA = {"group": pl.Int64, "feature": pl.Utf8, "mean_treated": pl.Float64, "mean_control_before": pl.Float64,
                  "mean_control_after": pl.Float64, "smd_before": pl.Float64, "smd_after": pl.Float64}


@dataclass(frozen=True, eq=False, repr=False)
class MatchResult(ResultDisplay):
    """Matched units per cohort (``group, unit, role, weight``), the balance table and notes.

    Result protocol (:mod:`som_models.results_base`): ``to_polars()`` is the balance table (standardised mean
    differences before and after matching, per cohort and feature); ``summary()`` adds the matched counts.
    """

    weights: pl.DataFrame
    balance: pl.DataFrame
    method: str
    notes: Mapping[str, object] = field(default_factory=dict)

    def _counts(self) -> pl.DataFrame:
        """Per cohort: matched treated units, distinct comparison units and their total weight."""
        return (self.weights.group_by("group")
                .agg((pl.col("role") == "treated").sum().alias("treated"),
                     (pl.col("role") == "control").sum().alias("controls"),
                     pl.col("weight").filter(pl.col("role") == "control").sum().alias("control_weight"))
                .sort("group"))

    def max_abs_smd(self) -> float | None:
        """The largest |standardised mean difference| after matching over cohorts and features (None if none)."""
        v = self.balance.get_column("smd_after").abs().max()
        if v is None:
            return None
        if not isinstance(v, (int, float)):
            raise TypeError(f"balance column 'smd_after' must be numeric (max is {type(v).__name__})")
        return float(v)

    def _repr_fields(self) -> dict[str, Any]:
        roles = self.weights.get_column("role")
        return {"method": self.method, "cohorts": self.weights.get_column("group").n_unique(),
                "treated": int((roles == "treated").sum()),
                "controls": self.weights.filter(pl.col("role") == "control").get_column("unit").n_unique(),
                "max_abs_smd_after": self.max_abs_smd()}

    def to_polars(self) -> pl.DataFrame:
        """The balance table: ``group, feature, mean_treated, mean_control_before, mean_control_after, smd_before,
        smd_after``."""
        return self.balance

    def summary(self, *, max_rows: int | None = MAX_ROWS) -> str:
        """Matching method, matched units per cohort, covariate balance before and after matching."""
        how = {"nearest": "nearest neighbour on the logit propensity score", "exact": "exact matching on strata"}
        counts = self._counts()
        info = [("Method", how.get(self.method, self.method)),
                ("Cohorts", counts.height),
                ("Treated units matched", int(counts.get_column("treated").sum())),
                ("Comparison units", self.weights.filter(pl.col("role") == "control").get_column("unit").n_unique()),
                ("Max |SMD| after", self.max_abs_smd())]
        body = frame_lines(counts, labels={"control_weight": "control weight"}, max_rows=max_rows)
        body += [""] + frame_lines(self.balance, labels={"mean_control_before": "control before",
                                                         "mean_control_after": "control after"}, max_rows=max_rows)
        footer = ["SMD = (mean treated − mean control) / pooled pre-matching SD; |SMD| < 0.1 is the usual target.",
                  "Standard errors of the matched ATT(g,t) treat the matched sample as given."]
        footer += notes_lines(self.notes)
        return render_summary("Matched comparison group", info, body, footer)


def _features(panel, cols_cov: list[str], outcome_lags: int, g: int, rows: np.ndarray) -> tuple[np.ndarray, list[str]]:
    pidx = {int(p): k for k, p in enumerate(panel.periods)}
    base = g - 1
    if base not in pidx:
        raise ValueError(f"cohort {g}: period {base} (the pre-period) is not in the data")
    feats, names = [], []
    for c in cols_cov:
        v = panel.covariates[c]
        feats.append(v[rows] if v.ndim == 1 else v[rows, pidx[base]])
        names.append(c)
    for lag in range(1, outcome_lags + 1):
        p = g - lag
        if p not in pidx:
            raise ValueError(f"cohort {g}: outcome in period {p} is not in the data (pre_periods={outcome_lags})")
        feats.append(panel.y[rows, pidx[p]])
        names.append(f"outcome[g-{lag}]")
    return (np.column_stack(feats) if feats else np.zeros((rows.shape[0], 0))), names


def match_comparison(
    data: pl.DataFrame,
    *,
    outcome: str,
    id_col: str,
    time_col: str,
    group_col: str,
    covariates: list[str] | tuple[str, ...] = (),
    exact: list[str] | tuple[str, ...] = (),
    pre_periods: int = 1,
    method: str = "nearest",
    ratio: int = 1,
    caliper: float | None = 0.2,
    replace: bool = True,
    seed: int = 0,
) -> MatchResult:
    """Match never-treated comparison units to each treated cohort (see the module docstring)."""
    if method not in ("nearest", "exact"):
        raise ValueError(f"method must be 'nearest' or 'exact' (got {method!r})")
    if method == "exact" and not exact:
        raise ValueError("exact matching needs the columns to match on (exact=[...])")
    if ratio < 1:
        raise ValueError(f"ratio must be at least 1 (got {ratio})")
    if caliper is not None and caliper <= 0:
        raise ValueError(f"caliper must be positive (got {caliper})")
    check_columns(data, [*covariates, *exact], numeric=[*covariates, *exact])
    all_cov = list(dict.fromkeys([*covariates, *exact]))
    panel = build_panel(data, outcome=outcome, id_col=id_col, time_col=time_col, group_col=group_col,
                        covariates=all_cov)
    if 0 not in panel.blocks:
        raise ValueError(f"matching needs never-treated units ({group_col!r} = 0 or missing) to draw the comparison group from")
    rng = np.random.default_rng(seed)
    pool = np.arange(*panel.blocks[0])
    out_rows, bal_rows = [], []
    notes: dict[str, object] = {}
    for g in sorted(k for k in panel.blocks if k > 0):
        treated = np.arange(*panel.blocks[g])
        feat_cols = list(covariates) if method == "nearest" else list(exact)
        lags = pre_periods if method == "nearest" else 0
        xt, names = _features(panel, feat_cols, lags, g, treated)
        xc, _ = _features(panel, feat_cols, lags, g, pool)
        ok_t = ~np.isnan(xt).any(axis=1)
        ok_c = ~np.isnan(xc).any(axis=1)
        if (~ok_t).any():
            notes[f"cohort {g}: treated units without pre-period data"] = int((~ok_t).sum())
        t_idx, c_idx, xt, xc = treated[ok_t], pool[ok_c], xt[ok_t], xc[ok_c]
        ex_t = _strata(panel, exact, g, t_idx)
        ex_c = _strata(panel, exact, g, c_idx)
        if method == "exact":
            if ex_t is None or ex_c is None:
                raise ValueError("exact matching needs the columns to match on (exact=[...])")
            w_t, w_c = _exact_weights(ex_t, ex_c)
        else:
            if not names:
                raise ValueError("nearest-neighbour matching needs covariates or pre_periods ≥ 1")
            x = np.column_stack([np.ones(len(t_idx) + len(c_idx)), np.vstack([xt, xc])])
            keep = [0] + [j for j in range(1, x.shape[1]) if np.ptp(x[:, j]) > 0]
            d = np.concatenate([np.ones(len(t_idx)), np.zeros(len(c_idx))])
            try:
                _, ps, _ = logit(x[:, keep], d)
            except NotEstimable as exc:
                notes[f"cohort {g}: not matched"] = str(exc)
                continue
            ps = np.clip(ps, 1e-12, 1 - 1e-12)
            score = np.log(ps / (1 - ps))
            width = None if caliper is None else caliper * float(np.std(score, ddof=1))
            w_t, w_c = _nearest(score[: len(t_idx)], score[len(t_idx):], ex_t, ex_c, ratio, width, replace, rng)
        dropped = int(np.sum(w_t == 0))
        if dropped:
            notes[f"cohort {g}: treated units without a match"] = dropped
        for units, wts, role in ((t_idx, w_t, "treated"), (c_idx, w_c, "control")):
            sel = wts > 0
            out_rows.append(pl.DataFrame({"group": np.full(int(sel.sum()), g, dtype=np.int64),
                                          "unit_index": units[sel].astype(np.int64), "role": [role] * int(sel.sum()),
                                          "weight": wts[sel].astype(float)}))
        all_names = names if method == "nearest" else list(exact)
        for j, name in enumerate(all_names):
            a, b = xt[:, j], xc[:, j]
            mb = float(np.average(b, weights=w_c)) if w_c.sum() > 0 else float("nan")
            bal_rows.append({"group": g, "feature": name, "mean_treated": float(a.mean()), "mean_control_before": float(b.mean()),
                             "mean_control_after": mb, "smd_before": smd(a, b),
                             "smd_after": smd(a, b, treated_weights=w_t, control_weights=w_c)})
    if not out_rows:
        raise ValueError("no cohort could be matched")
    weights = pl.concat(out_rows)
    ids = panel.unit_ids.gather(weights.get_column("unit_index").to_numpy())
    weights = weights.with_columns(ids.alias("unit")).select("group", "unit", "role", "weight")
    return MatchResult(weights=weights, balance=pl.DataFrame(bal_rows, schema=BALANCE_SCHEMA), method=method, notes=notes)


def _strata(panel, exact, g, rows) -> np.ndarray | None:
    if not exact:
        return None
    pidx = {int(p): k for k, p in enumerate(panel.periods)}
    cols = []
    for c in exact:
        v = panel.covariates[c]
        cols.append(v[rows] if v.ndim == 1 else v[rows, pidx[g - 1]])
    _, inv = np.unique(np.column_stack(cols), axis=0, return_inverse=True)
    return inv.reshape(-1)


def _exact_weights(st: np.ndarray, sc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    size = int(max(st.max(initial=-1), sc.max(initial=-1))) + 1
    nt = np.bincount(st, minlength=size)
    nc = np.bincount(sc, minlength=size)
    w_t = (nc[st] > 0).astype(float)
    w_c = np.where(nt[sc] > 0, nt[sc] / np.maximum(nc[sc], 1), 0.0)
    return w_t, w_c


def _nearest(st_score, sc_score, ex_t, ex_c, ratio, width, replace, rng) -> tuple[np.ndarray, np.ndarray]:
    w_t = np.zeros(st_score.shape[0])
    w_c = np.zeros(sc_score.shape[0])
    strata_t = np.zeros(st_score.shape[0], dtype=np.int64) if ex_t is None else ex_t
    strata_c = np.zeros(sc_score.shape[0], dtype=np.int64) if ex_c is None else ex_c
    for s in np.unique(strata_t):
        ti = np.flatnonzero(strata_t == s)
        ci = np.flatnonzero(strata_c == s)
        if ci.size == 0:
            continue
        order = np.argsort(sc_score[ci], kind="stable")
        cs = sc_score[ci][order]
        cidx = ci[order]
        if replace:
            k = min(ratio, cs.size)
            pos = np.searchsorted(cs, st_score[ti])
            # candidate window of k on each side, pick the k closest
            offs = np.arange(-k, k)
            cand = np.clip(pos[:, None] + offs[None, :], 0, cs.size - 1)
            dist = np.abs(cs[cand] - st_score[ti][:, None])
            dist = np.where(np.diff(np.c_[cand, np.full(len(ti), -1)], axis=1) == 0, np.inf, dist)  # de-duplicate clipped
            best = np.argsort(dist, axis=1, kind="stable")[:, :k]
            chosen = np.take_along_axis(cand, best, axis=1)
            cdist = np.take_along_axis(dist, best, axis=1)
            ok = np.isfinite(cdist) & (cdist <= (np.inf if width is None else width))
            m = ok.sum(axis=1)
            w_t[ti] = (m > 0).astype(float)
            share = np.where(m[:, None] > 0, ok / np.maximum(m[:, None], 1), 0.0)
            np.add.at(w_c, cidx[chosen].ravel(), share.ravel())
        else:
            used = np.zeros(cs.size, dtype=bool)
            for t in rng.permutation(ti):
                pos = int(np.searchsorted(cs, st_score[t]))
                picks: list[int] = []
                lo, hi = pos - 1, pos
                while len(picks) < ratio:
                    while lo >= 0 and used[lo]:
                        lo -= 1
                    while hi < cs.size and used[hi]:
                        hi += 1
                    dl = abs(st_score[t] - cs[lo]) if lo >= 0 else np.inf
                    dh = abs(cs[hi] - st_score[t]) if hi < cs.size else np.inf
                    pick, pick_dist = (lo, dl) if dl <= dh else (hi, dh)
                    if not np.isfinite(pick_dist) or (width is not None and pick_dist > width):
                        break
                    picks.append(pick)
                    used[pick] = True
                if picks:
                    w_t[t] = 1.0
                    w_c[cidx[picks]] += 1.0 / len(picks)
    return w_t, w_c


def matched_att_gt(
    data: pl.DataFrame,
    match: MatchResult,
    *,
    outcome: str,
    id_col: str,
    time_col: str,
    group_col: str,
    base_period: str = "varying",
    covariates: list[str] | tuple[str, ...] = (),
    method: str | None = None,
) -> DidResult:
    """ATT(g, t) of each cohort against its matched comparison units (weighted), stacked into one result.

    The stacked influence functions live on the union of the cohorts' units (in the order of ``match.weights``):
    cohort ``g``'s columns are ``(n_union / n_g) ψ^g`` on its units, 0 elsewhere. They are kept as moments
    (:class:`~som_models.estimators._influence.StreamedInfluence` over the union sorted into group blocks, one
    chunk of units at a time, each cohort's rows read from its own structured influence functions); the dense
    units × cells matrix is built only on request (the bootstrap, ``DidResult.influence``)."""
    check_columns(data, [outcome, id_col, time_col, group_col])
    union_ids = match.weights.get_column("unit").unique(maintain_order=True)
    n_union = union_ids.len()
    pos_of = pl.DataFrame({id_col: union_ids, "_pos": np.arange(n_union)})
    cells: list[AttCell] = []
    notes: dict[str, object] = {"design": f"matched comparison group ({match.method})", **dict(match.notes)}
    unit_groups = np.zeros(n_union, dtype=np.int64)
    parts: list[tuple[Any, np.ndarray, float]] = []
    treated_pos: list[np.ndarray] = []
    cohorts: list[int] = []
    keep = list(dict.fromkeys([id_col, time_col, outcome, *covariates]))
    for g in sorted(match.weights.get_column("group").unique().to_list()):
        mw = match.weights.filter(pl.col("group") == g).select(pl.col("unit").alias(id_col), pl.col("role"),
                                                               pl.col("weight").alias("_mw"))
        # the cohort's rows gathered by position, then joined: a filter or join on the whole frame as read (many
        # buffers per column) raised the peak by about the frame's size
        # (only the columns the cohort's estimate reads: each cohort's frame lives as long as the result)
        rows_in = data.get_column(id_col).is_in(mw.get_column(id_col).implode()).arg_true()
        sub = (data.select(keep).gather(rows_in).join(mw, on=id_col, how="inner", maintain_order="left")
               .with_columns(pl.when(pl.col("role") == "treated").then(pl.lit(g)).otherwise(pl.lit(0)).alias("_g"))
               .drop("role"))
        cohort = build_panel(sub, outcome=outcome, id_col=id_col, time_col=time_col, group_col="_g",
                             covariates=covariates, weight_col="_mw")
        res = att_gt(sub, outcome=outcome, id_col=id_col, time_col=time_col, group_col="_g", control="never",
                     base_period=base_period, covariates=covariates, method=method, weight_col="_mw", panel=cohort)
        rows = pl.DataFrame({id_col: cohort.unit_ids}).join(pos_of, on=id_col, how="left").get_column("_pos").to_numpy()
        cells.extend(res.cells)
        parts.append((stored(res, "influence"), rows, n_union / res.n_units))
        treated_pos.append(rows[res.unit_groups == g])
        cohorts.append(int(g))
        unit_groups[treated_pos[-1]] = g
        if res.notes.get("skipped_cells"):
            notes[f"cohort {g}: skipped cells"] = res.notes["skipped_cells"]
    shares = {g: float(np.mean(unit_groups == g)) for g in sorted(set(unit_groups.tolist()) - {0})}
    return DidResult(outcome=outcome, cells=tuple(cells), influence=_stacked(parts, treated_pos, cohorts, union_ids),
                     unit_groups=unit_groups, group_shares=shares, n_units=n_union, control="matched",
                     base_period=base_period, method=method or ("dr" if covariates else "unconditional"),
                     covariates=tuple(covariates), notes=notes)


def _stacked(parts: list[tuple[Any, np.ndarray, float]], treated_pos: list[np.ndarray], cohorts: list[int],
             union_ids: pl.Series):
    """The cohorts' influence functions side by side on the union (see :func:`matched_att_gt`).

    The union is evaluated in an internal order — each cohort's treated units (in the cohort's order), then every
    other unit by id — in which every cohort's rows increase (its panel holds its treated units, then its
    comparison units by id), so a chunk of union rows is one run of each cohort's rows; the group blocks are
    contiguous for the group-share terms of the aggregations. Should a cohort's rows not increase in that order,
    the dense matrix is built instead (one units × cells array, filled cohort by cohort)."""
    n = union_ids.len()
    taken = np.zeros(n, dtype=bool)
    for t in treated_pos:
        taken[t] = True
    others = np.flatnonzero(~taken)
    others = others[union_ids.gather(others).arg_sort().to_numpy()]
    perm = np.concatenate([*treated_pos, others]).astype(np.int64)
    inverse = np.empty(n, dtype=np.int64)
    inverse[perm] = np.arange(n)
    internal = [(infl, inverse[rows], scale) for infl, rows, scale in parts]
    if perm.shape[0] == n and all(r.shape[0] < 2 or bool(np.all(r[1:] > r[:-1])) for _, r, _ in internal):
        bounds = np.cumsum([0, *(t.shape[0] for t in treated_pos), others.shape[0]])
        groups = [*cohorts, 0]
        spans = [(int(bounds[k]), int(bounds[k + 1])) for k in range(len(groups))]
        inner = StreamedInfluence.accumulate(StackedSource(internal, n), spans, groups, None)
        return PermutedInfluence.wrap(inner, perm)
    k = sum(int(infl.shape[1]) for infl, _, _ in parts)
    psi = np.zeros((n, k), order="F")
    off = 0
    for infl, rows, scale in parts:
        dense = infl.materialise() if hasattr(infl, "materialise") else np.asarray(infl)
        psi[rows, off:off + dense.shape[1]] = scale * dense
        off += dense.shape[1]
    psi.setflags(write=False)
    return psi

