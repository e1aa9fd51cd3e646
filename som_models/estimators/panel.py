"""From a long person-period frame to the units × periods matrices the estimators work on.

``build_panel`` validates the input (every problem is a ``ValueError`` naming the column), then builds, with
vectorised numpy (no Python loop over units): the outcome matrix ``y`` (units × periods, NaN where a unit has
no row or a missing outcome), each unit's group (first treated period, 0 = never treated), time-invariant
covariates as vectors and time-varying ones as matrices, and optional unit weights. Units are sorted by group
(treated groups ascending, never-treated last), so every group is a contiguous block of rows and each 2×2
comparison is a few slices.

Rules (as R ``did``): units already treated in the first period are dropped (no pre-period); units first
treated after the last period count as never treated; rows with a missing outcome are dropped (the unit stays
for the periods it has). Unbalanced panels are kept: each 2×2 comparison uses the units observed in both of
its periods. Everything dropped or recoded is counted in ``Panel.notes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

NEVER_KEY = np.iinfo(np.int64).max


def check_columns(data: pl.DataFrame, columns: list[str], *, numeric: list[str] = ()) -> None:
    """ValueError naming the first missing column, or the first non-numeric one among ``numeric``."""
    for col in columns:
        if col not in data.columns:
            raise ValueError(f"column {col!r} not found; columns are {data.columns}")
    for col in numeric:
        dtype = data.schema[col]
        if not (dtype.is_numeric() or dtype == pl.Boolean):
            raise ValueError(f"column {col!r} must be numeric (it is {dtype}); recode it before estimating")


@dataclass(frozen=True, eq=False)
class Panel:
    """Units × periods view of one outcome (rows sorted by group; never-treated units last)."""

    y: np.ndarray
    periods: np.ndarray
    group: np.ndarray
    unit_ids: pl.Series
    covariates: dict[str, np.ndarray]
    weights: np.ndarray | None
    balanced: bool
    blocks: dict[int, tuple[int, int]]
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    def covariate_matrix(self, rows: np.ndarray | slice, period_index: int) -> np.ndarray:
        """Intercept plus every covariate at ``period_index`` for the given rows."""
        cols = [np.ones(self.y[rows, 0].shape[0])]
        for v in self.covariates.values():
            cols.append(v[rows] if v.ndim == 1 else v[rows, period_index])
        return np.column_stack(cols)

    @property
    def time_invariant_covariates(self) -> bool:
        return all(v.ndim == 1 for v in self.covariates.values())


def build_panel(
    data: pl.DataFrame,
    *,
    outcome: str,
    id_col: str,
    time_col: str,
    group_col: str,
    covariates: list[str] | tuple[str, ...] = (),
    weight_col: str | None = None,
) -> Panel:
    """Validate a long frame and build the :class:`Panel` of one outcome (see the module docstring)."""
    if isinstance(data, pl.LazyFrame):
        data = data.collect()
    extra = [weight_col] if weight_col else []
    check_columns(data, [outcome, id_col, time_col, group_col, *covariates, *extra],
                  numeric=[outcome, time_col, group_col, *covariates, *extra])
    for col in (id_col, time_col):
        nulls = data.get_column(col).null_count()
        if nulls:
            raise ValueError(f"column {col!r} has {nulls} missing values; every row needs a unit and a period")
    if len(set(covariates)) != len(covariates):
        raise ValueError("a covariate is listed twice")
    for c in covariates:
        if c in (outcome, id_col, time_col, group_col):
            raise ValueError(f"covariate {c!r} is also the outcome, id, time or group column")
    notes: dict[str, object] = {"rows_in": data.height}

    t_dtype = data.schema[time_col]
    t_series = data.get_column(time_col)
    if t_dtype.is_float() and (t_series != t_series.round(0)).any():
        raise ValueError(f"column {time_col!r} must hold whole periods (e.g. years)")
    t_rows = t_series.cast(pl.Int64).to_numpy()
    g_series = data.get_column(group_col)
    if g_series.dtype.is_integer() and g_series.null_count() == 0:
        g_rows = g_series.cast(pl.Int64).to_numpy()
    else:
        g_rows = g_series.cast(pl.Float64).to_numpy()  # null -> NaN
        g_rows = np.where(np.isfinite(g_rows), g_rows, 0.0)
        if (g_rows != np.round(g_rows)).any():
            raise ValueError(f"column {group_col!r} must hold the first treated period (a whole number; 0 = never treated)")
        g_rows = g_rows.astype(np.int64)
    y_rows = data.get_column(outcome).cast(pl.Float64).to_numpy()
    id_series = data.get_column(id_col)
    if id_series.dtype.is_integer():
        id_rows = id_series.to_numpy()
    else:
        id_rows = id_series.rank("dense").cast(pl.Int64).to_numpy()
    missing_y = np.isnan(y_rows)
    row_sel = None
    if missing_y.any():
        notes["rows_missing_outcome_dropped"] = int(missing_y.sum())
        row_sel = np.flatnonzero(~missing_y)
        if row_sel.size == 0:
            raise ValueError(f"column {outcome!r} has no non-missing values")
    del missing_y
    if row_sel is not None:
        id_rows, t_rows, g_rows, y_rows = id_rows[row_sel], t_rows[row_sel], g_rows[row_sel], y_rows[row_sel]
    d_id = np.diff(id_rows)
    ordered = bool(np.all((d_id > 0) | ((d_id == 0) & (np.diff(t_rows) > 0))))
    if not ordered:
        perm = np.lexsort((t_rows, id_rows))
        row_sel = perm if row_sel is None else row_sel[perm]
        id_rows, t_rows, g_rows, y_rows = id_rows[perm], t_rows[perm], g_rows[perm], y_rows[perm]
        d_id = np.diff(id_rows)
        dups = int(np.sum((d_id == 0) & (np.diff(t_rows) == 0)))
        if dups:
            raise ValueError(f"{dups} ({id_col}, {time_col}) pairs occur more than once; the panel must have one row "
                             "per unit and period")
    new_unit = np.empty(id_rows.shape[0], dtype=bool)
    new_unit[0] = True
    np.not_equal(d_id, 0, out=new_unit[1:])
    del d_id, id_rows
    starts = np.flatnonzero(new_unit)
    codes = np.cumsum(new_unit, dtype=np.int64) - 1
    del new_unit
    t_min, t_max = int(t_rows.min()), int(t_rows.max())
    if t_max - t_min < 100_000:
        present = np.bincount(t_rows - t_min, minlength=t_max - t_min + 1) > 0
        periods = np.flatnonzero(present).astype(np.int64) + t_min
        lut = np.full(t_max - t_min + 1, -1, dtype=np.int32)
        lut[periods - t_min] = np.arange(len(periods), dtype=np.int32)
        pidx = lut[t_rows - t_min]
    else:
        periods = np.sort(pl.Series(t_rows).unique().to_numpy())
        pidx = np.searchsorted(periods, t_rows).astype(np.int32)
    del t_rows

    g_unit = g_rows[starts]
    change = np.flatnonzero(g_rows[1:] != g_rows[:-1]) + 1
    change = change[codes[change] == codes[change - 1]]
    if change.size:
        varying = int(np.unique(codes[change]).size)
        raise ValueError(f"column {group_col!r} must be constant within each unit (it varies for {varying} units); "
                         "a treatment that switches off is not staggered adoption")
    del g_rows
    if (g_unit < 0).any():
        raise ValueError(f"column {group_col!r} has negative values; use the first treated period, 0 = never treated")
    early = (g_unit > 0) & (g_unit <= periods[0])
    late = g_unit > periods[-1]
    if early.any():
        notes["units_treated_in_first_period_dropped"] = int(early.sum())
    if late.any():
        notes["units_treated_after_last_period_as_never_treated"] = int(late.sum())
        g_unit = np.where(late, 0, g_unit)
    key = np.where(g_unit == 0, NEVER_KEY, g_unit)
    order = np.argsort(key, kind="stable")
    order = order[~early[order]]
    n = order.shape[0]
    if n == 0:
        raise ValueError("no units left after dropping those treated in the first period")
    n_t = len(periods)
    complete = (not early.any()) and len(starts) * n_t == codes.shape[0]
    if complete:
        y_c = y_rows.reshape(len(starts), n_t)
        y = np.empty((n, n_t), order="F")
        for j in range(n_t):
            np.take(y_c[:, j], order, out=y[:, j])
        row_code = pidx_k = keep_rows = None
    else:
        new_code = np.full(len(starts), -1, dtype=np.int64)
        new_code[order] = np.arange(n)
        row_code = new_code[codes]
        keep_rows = row_code >= 0
        if keep_rows.all():
            keep_rows = None
            pidx_k = pidx
        else:
            row_code, pidx_k = row_code[keep_rows], pidx[keep_rows]
        y = np.full((n, n_t), np.nan, order="F")
        y[row_code, pidx_k] = y_rows if keep_rows is None else y_rows[keep_rows]
    del y_rows

    def rows_of(col: str) -> np.ndarray:
        v = data.get_column(col).cast(pl.Float64).to_numpy()
        return v if row_sel is None else v[row_sel]

    def to_units(v: np.ndarray, name: str, kind: str) -> np.ndarray:
        """Per-unit vector if constant within units, else a units × periods matrix."""
        first = v[starts][order]
        if complete:
            same = np.array_equal(v.reshape(len(starts), n_t)[order], np.repeat(first[:, None], n_t, axis=1))
        else:
            vk = v if keep_rows is None else v[keep_rows]
            same = np.array_equal(vk, first[row_code])
        if same:
            return first
        if kind == "weight":
            raise ValueError(f"weight column {name!r} must be constant within each unit")
        if complete:
            m = np.empty((n, n_t), order="F")
            v_c = v.reshape(len(starts), n_t)
            for j in range(n_t):
                np.take(v_c[:, j], order, out=m[:, j])
        else:
            m = np.full((n, n_t), np.nan, order="F")
            m[row_code, pidx_k] = v if keep_rows is None else v[keep_rows]
        return m

    cov: dict[str, np.ndarray] = {}
    for c in covariates:
        v = rows_of(c)
        if np.isnan(v).any():
            raise ValueError(f"covariate {c!r} has {int(np.isnan(v).sum())} missing values; impute or drop them first")
        if np.max(v) == np.min(v):
            raise ValueError(f"covariate {c!r} is constant; it cannot be used as a covariate")
        cov[c] = to_units(v, c, "covariate")
    weights = None
    if weight_col:
        v = rows_of(weight_col)
        if np.isnan(v).any() or (v < 0).any():
            raise ValueError(f"weight column {weight_col!r} must be non-negative and not missing")
        weights = to_units(v, weight_col, "weight")
    group = g_unit[order]
    src_rows = starts[order] if row_sel is None else row_sel[starts[order]]
    unit_ids = id_series.gather(src_rows).alias(id_col)
    blocks: dict[int, tuple[int, int]] = {}
    sorted_key = np.where(group == 0, NEVER_KEY, group)
    for g in np.unique(group):
        k = NEVER_KEY if g == 0 else g
        blocks[int(g)] = (int(np.searchsorted(sorted_key, k, "left")), int(np.searchsorted(sorted_key, k, "right")))
    balanced = not np.isnan(y).any()
    notes["units"] = n
    notes["balanced"] = balanced
    if not balanced:
        notes["unbalanced_panel"] = ("kept: each ATT(g,t) uses the units observed in both of its periods "
                                     f"({int(np.isnan(y).sum())} unit-periods missing)")
    return Panel(y=y, periods=periods, group=group, unit_ids=unit_ids, covariates=cov, weights=weights,
                 balanced=balanced, blocks=blocks, notes=notes)


def first_treatment_period(data: pl.DataFrame, *, id_col: str, time_col: str, treat_col: str,
                           name: str = "first_treat") -> pl.DataFrame:
    """Add ``name`` = each unit's first period with ``treat_col`` = 1 (0 if never), from a 0/1 treatment indicator.

    Staggered adoption needs an absorbing treatment: a unit that is treated and later untreated is refused
    (ValueError naming how many units switch off and one of them), not silently recoded.
    """
    check_columns(data, [id_col, time_col, treat_col], numeric=[time_col, treat_col])
    d = data.select(id_col, pl.col(time_col).cast(pl.Int64).alias("_t"), pl.col(treat_col).cast(pl.Float64).alias("_d"))
    if d.get_column("_d").null_count():
        raise ValueError(f"column {treat_col!r} has missing values")
    vals = set(d.get_column("_d").unique().to_list())
    if not vals <= {0.0, 1.0}:
        raise ValueError(f"column {treat_col!r} must be a 0/1 treatment indicator (found {sorted(vals)[:5]})")
    per = (d.sort(id_col, "_t")
           .group_by(id_col, maintain_order=True)
           .agg((pl.col("_d").diff() < 0).any().alias("_off"),
                pl.col("_t").filter(pl.col("_d") == 1).min().alias(name)))
    off = per.filter(pl.col("_off"))
    if off.height:
        raise ValueError(f"column {treat_col!r}: treatment switches off for {off.height} units (e.g. {id_col} = "
                         f"{off.get_column(id_col)[0]}); staggered adoption needs treatment that stays on once started")
    per = per.select(id_col, pl.col(name).fill_null(0))
    return data.join(per, on=id_col, how="left")
