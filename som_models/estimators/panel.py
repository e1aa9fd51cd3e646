"""From a long person-period frame to the units × periods matrices the estimators work on.

``build_panel`` validates the input (every problem is a ``ValueError`` naming the column), then builds, with
vectorised numpy (no Python loop over units): the outcome matrix ``y`` (units × periods, NaN where a unit has
no row or a missing outcome), each unit's group (first treated period, 0 = never treated), time-invariant
covariates as vectors and time-varying ones as matrices, and optional unit weights. Units are sorted by group
(treated groups ascending, never-treated last), so every group is a contiguous block of rows and each 2×2
comparison is a few slices.

Fast path: a frame already sorted by (id, period) with one row per unit and period, integer id/period/group
columns and no missing values (the usual register extract) is checked chunk by chunk on the frame's own Arrow
buffers — no full-length copies — and ``Panel.y`` is then only built when first accessed; the unconditional
estimator streams the unit rows straight from the buffers instead.

Rules (as R ``did``): units already treated in the first period are dropped (no pre-period); units first
treated after the last period count as never treated; rows with a missing outcome are dropped (the unit stays
for the periods it has). Unbalanced panels are kept: each 2×2 comparison uses the units observed in both of
its periods. Everything dropped or recoded is counted in ``Panel.notes``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import polars as pl

from som_models.estimators.results import _Deferrable, stored

NEVER_KEY = np.iinfo(np.int64).max


def check_columns(data: pl.DataFrame, columns: Sequence[str], *, numeric: Sequence[str] = ()) -> None:
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
    """Units × periods view of one outcome (rows sorted by group; never-treated units last).

    For a sorted rectangular frame ``y`` is built from the frame's buffers on first access (the unconditional
    estimator never needs it: it streams the unit rows).
    """

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
        return int(self.group.shape[0])

    def _unit_rows(self, chunk: int = 8192) -> Iterator[tuple[np.ndarray | slice, np.ndarray]]:
        """``(rows, values)`` pieces covering every unit once, ``values[m] = y[rows][m]`` (C-ordered float64): from the
        frame's buffers while ``y`` has not been built, else contiguous slices of ``y`` within one group block."""
        src = stored(self, "y")
        if isinstance(src, _RowSource) and stored(self, "_y_materialised") is None:
            yield from src.pieces(chunk)
            return
        y = self.y
        for s, e in sorted(self.blocks.values()):
            for r0 in range(s, e, chunk):
                rows = slice(r0, min(e, r0 + chunk))
                yield rows, np.ascontiguousarray(y[rows])

    def _row_source(self) -> _RowSource | None:
        """The frame's outcome buffers while ``y`` has not been built (a sorted rectangular frame), else None."""
        src = stored(self, "y")
        if isinstance(src, _RowSource) and stored(self, "_y_materialised") is None:
            return src
        return None

    def outcome_rows(self, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0 … r1 − 1`` of the units × periods outcome matrix (float64), read from the frame's buffers while
        ``y`` has not been built (so a covariate method never holds a second copy of the outcome), else a view of
        ``y``. The values are those of ``y`` exactly."""
        src = self._row_source()
        return self.y[r0:r1] if src is None else src.block(r0, r1)

    def outcome_change(self, slices: list[tuple[int, int]], ti: int, bi: int) -> np.ndarray:
        """``y[:, ti] − y[:, bi]`` over the row slices, concatenated (from the frame's buffers while ``y`` has not
        been built, see :meth:`outcome_rows`)."""
        src = self._row_source()
        if src is None:
            y = self.y
            parts = [y[s:e, ti] - y[s:e, bi] for s, e in slices]
        else:
            parts = [src.column(s, e, ti) - src.column(s, e, bi) for s, e in slices]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def covariate_matrix(self, rows: np.ndarray | slice, period_index: int) -> np.ndarray:
        """Intercept plus every covariate at ``period_index`` for the given rows (rows × (1 + covariates), C order,
        float64), filled column by column: no per-column copies besides the matrix itself."""
        m = self.group[rows].shape[0]
        out = np.empty((m, 1 + len(self.covariates)))
        out[:, 0] = 1.0
        for j, v in enumerate(self.covariates.values(), start=1):
            out[:, j] = v[rows] if v.ndim == 1 else v[rows, period_index]
        return out

    @property
    def time_invariant_covariates(self) -> bool:
        return all(v.ndim == 1 for v in self.covariates.values())


Panel.y = _Deferrable("y")  # type: ignore[assignment]


class _RowSource:
    """A column of a sorted rectangular long frame (unit ``u`` = rows ``k·u … k·u + k − 1``) seen as the units ×
    periods matrix, kept in the frame's own buffers; ``pos[u]`` is the unit's row in the panel (−1: dropped).
    ``materialise()`` (or ``np.asarray``) builds the matrix (Fortran order, float64); ``source[rows, t]`` (rows an
    index array or a slice, ``t`` a period index) gathers one period's values without building it — how the
    covariate methods read a time-varying covariate (``Panel.covariate_matrix``)."""

    ndim = 2
    dtype = np.dtype(np.float64)

    def __init__(self, series: pl.Series, pos: np.ndarray, n: int, k: int):
        self.series = series
        self.pos = pos
        self.n = n
        self.k = k

    @property
    def shape(self) -> tuple[int, int]:
        return self.n, self.k

    def __getitem__(self, key: tuple[np.ndarray | slice, int]) -> np.ndarray:
        rows, t = key
        if isinstance(rows, slice):
            r0, r1, step = rows.indices(self.n)
            if step == 1:
                return self.column(r0, r1, int(t))
            rows = np.arange(r0, r1, step)
        return self._gather(self._unit_of()[np.asarray(rows)] * self.k + int(t))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.materialise()
        return out if dtype is None else out.astype(dtype)

    def pieces(self, chunk: int = 16384) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(panel rows, values)`` of at most ``chunk`` units: each buffer's whole units, then the units split
        across buffers."""
        k, pos = self.k, self.pos
        all_kept = bool(self.n == pos.shape[0] - 1)
        split_rows, split_vals = [], []
        carry = np.empty(k)
        for start, v in _chunks(self.series, pl.Float64):
            size = v.shape[0]
            phase = start % k
            head = min((k - phase) % k, size)
            u = start // k
            if head:  # the rest of a unit begun in an earlier chunk
                carry[phase:phase + head] = v[:head]
                if phase + head == k and pos[u] >= 0:
                    split_rows.append(pos[u])
                    split_vals.append(carry.copy())
                u += 1
            whole = (size - head) // k
            for a in range(0, whole, chunk):
                b = min(whole, a + chunk)
                rows = pos[u + a:u + b]
                vals = v[head + a * k:head + b * k].reshape(b - a, k)
                if not all_kept:
                    keep = rows >= 0
                    rows, vals = rows[keep], vals[keep]
                yield rows, vals
            tail = size - head - whole * k
            if tail:  # the beginning of a unit that continues in the next chunk
                carry[:tail] = v[size - tail:]
        if split_rows:
            yield np.array(split_rows, dtype=np.int64), np.array(split_vals)

    def _unit_of(self) -> np.ndarray:
        """Frame unit of each panel row (the inverse of ``pos``), built on first use."""
        got = getattr(self, "_units", None)
        if got is None:
            kept = np.flatnonzero(self.pos[:-1] >= 0)
            got = np.empty(self.n, dtype=np.int64)
            got[self.pos[kept]] = kept
            self._units = got
        return got

    def _gather(self, index: np.ndarray) -> np.ndarray:
        v = self.series.gather(index)
        return (v if v.dtype == pl.Float64 else v.cast(pl.Float64)).to_numpy()

    def column(self, r0: int, r1: int, t: int) -> np.ndarray:
        """Panel rows ``r0 … r1 − 1`` of period ``t`` (float64), gathered from the frame's buffers."""
        return self._gather(self._unit_of()[r0:r1] * self.k + t)

    def block(self, r0: int, r1: int) -> np.ndarray:
        """Panel rows ``r0 … r1 − 1``, all periods (rows × periods, C order, float64), gathered from the buffers."""
        index = (self._unit_of()[r0:r1, None] * self.k + np.arange(self.k)).ravel()
        return self._gather(index).reshape(r1 - r0, self.k)

    def materialise(self) -> np.ndarray:
        """The units × periods outcome matrix (Fortran order)."""
        out = np.empty((self.n, self.k), order="F")
        for rows, vals in self.pieces():
            out[rows] = vals
        return out


class _SortedRows:
    """The row layout of a long frame sorted by (id, period) — one row per unit and period, no missing id, period,
    group or outcome, integer id/period/group columns — that is not rectangular (units enter and leave: births,
    deaths, emigration). Found by :meth:`scan` window by window of rows, so that the panel is built without the
    full-length index arrays (unit code and period index of every row) of the general layout: ``starts`` (first
    row of each unit), each unit's group and the observed periods are O(units + periods)."""

    #: rows per window
    WINDOW = 1 << 18

    def __init__(self, height: int, starts: np.ndarray, g_unit: np.ndarray, periods: np.ndarray, t_min: int,
                 time: pl.Series):
        self.height, self.starts, self.g_unit, self.periods, self.t_min, self.time = (height, starts, g_unit,
                                                                                     periods, t_min, time)
        self.lut = np.full(int(periods[-1]) - t_min + 1, -1, dtype=np.int32)
        self.lut[periods - t_min] = np.arange(len(periods), dtype=np.int32)

    @classmethod
    def scan(cls, data: pl.DataFrame, *, outcome: str, id_col: str, time_col: str, group_col: str):
        """The layout, or None when the frame is not of this kind (then the general layout is used)."""
        cols = [data.get_column(c) for c in (id_col, time_col, group_col, outcome)]
        ids, ts, gs, ys = cols
        m = data.height
        if m == 0 or not (ids.dtype.is_integer() and ts.dtype.is_integer() and gs.dtype.is_integer()):
            return None
        if any(c.null_count() for c in cols) or (ys.dtype.is_float() and ys.is_nan().any()):
            return None
        t_min, t_max = int(ts.min()), int(ts.max())  # type: ignore[arg-type]
        if t_max - t_min >= 100_000:
            return None
        present = np.zeros(t_max - t_min + 1, dtype=bool)
        starts, g_first = [], []
        prev_id = prev_t = prev_g = None
        for r0 in range(0, m, cls.WINDOW):
            i = ids.slice(r0, cls.WINDOW).to_numpy()
            t = ts.slice(r0, cls.WINDOW).to_numpy()
            g = gs.slice(r0, cls.WINDOW).to_numpy()
            new = np.empty(i.shape[0], dtype=bool)
            np.not_equal(i[1:], i[:-1], out=new[1:])
            new[0] = prev_id is None or i[0] != prev_id
            if (prev_id is not None and i[0] < prev_id) or np.any(i[1:] < i[:-1]):
                return None  # not sorted by id
            same = ~new
            step_t = np.empty(i.shape[0], dtype=bool)
            step_t[1:] = t[1:] > t[:-1]
            step_t[0] = prev_t is None or t[0] > prev_t
            if np.any(same & ~step_t):
                return None  # not sorted by period within a unit, or a (unit, period) twice
            g_same = np.empty(i.shape[0], dtype=bool)
            g_same[1:] = g[1:] == g[:-1]
            g_same[0] = prev_g is None or g[0] == prev_g
            if np.any(same & ~g_same):
                return None  # the general layout names the units whose group varies
            at = np.flatnonzero(new)
            starts.append(at + r0)
            g_first.append(g[at].astype(np.int64))
            present[t - t_min] = True
            prev_id, prev_t, prev_g = i[-1], t[-1], g[-1]
        periods = np.flatnonzero(present).astype(np.int64) + t_min
        return cls(m, np.concatenate(starts), np.concatenate(g_first), periods, t_min, ts)

    def _windows(self) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        """``(first row, last row + 1, unit of each row, period index of each row)`` window by window."""
        for r0 in range(0, self.height, self.WINDOW):
            t = self.time.slice(r0, self.WINDOW).to_numpy()
            r1 = r0 + t.shape[0]
            unit = np.searchsorted(self.starts, np.arange(r0, r1), "right") - 1
            yield r0, r1, unit, self.lut[t - self.t_min]

    def scatter(self, series: pl.Series, unit_pos: np.ndarray, n: int) -> np.ndarray:
        """The column as a units × periods matrix (Fortran order; NaN where a unit has no row), units in the
        panel's order (``unit_pos``: each unit's panel row, −1 = dropped)."""
        out = np.full((n, len(self.periods)), np.nan, order="F")
        for r0, r1, unit, pidx in self._windows():
            v = series.slice(r0, r1 - r0).cast(pl.Float64).to_numpy()
            row = unit_pos[unit]
            keep = row >= 0
            out[row[keep], pidx[keep]] = v[keep]
        return out

    def unit_values(self, series: pl.Series) -> np.ndarray | None:
        """Each unit's value (float64, units in frame order) if the column is constant within units, else None."""
        first = series.gather(self.starts).cast(pl.Float64).to_numpy()
        for r0, r1, unit, _ in self._windows():
            v = series.slice(r0, r1 - r0).cast(pl.Float64).to_numpy()
            if not np.array_equal(v, first[unit]):
                return None
        return first


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

    id_series = data.get_column(id_col)
    fast = _rectangular_frame(data, outcome=outcome, id_col=id_col, time_col=time_col, group_col=group_col)
    if fast is not None:
        # the usual register extract — sorted by (id, period), one row per unit and period, no missing values:
        # checked chunk by chunk on the frame's own buffers, no full-length copies; ``y`` is built on demand
        periods, g_unit, unit_first_ids = fast
        starts = codes = pidx = row_sel = y_rows = None  # unit u is rows k·u … k·u + k − 1
        layout = None
    elif (layout := _SortedRows.scan(data, outcome=outcome, id_col=id_col, time_col=time_col,
                                     group_col=group_col)) is not None:
        # sorted by (id, period), no missing values, but not one row per unit and period (births, deaths,
        # emigration): units, periods and groups found window by window, no full-length index arrays
        periods, g_unit, starts = layout.periods, layout.g_unit, layout.starts
        codes = pidx = row_sel = y_rows = None
    else:
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
                raise ValueError(f"column {group_col!r} must hold the first treated period (a whole number; "
                                 "0 = never treated)")
            g_rows = g_rows.astype(np.int64)
        y_rows = data.get_column(outcome).cast(pl.Float64).to_numpy()
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
        rect = _rectangular(id_rows, t_rows, g_rows) if row_sel is None else None
        if rect is not None:
            # sorted by (id, period), one row per unit and period, but not caught above (e.g. float periods)
            periods, g_unit = rect
            starts = codes = pidx = None
            del id_rows, t_rows, g_rows
        else:
            if row_sel is not None:
                id_rows, t_rows, g_rows, y_rows = id_rows[row_sel], t_rows[row_sel], g_rows[row_sel], y_rows[row_sel]
            periods, starts, codes, pidx, g_unit, y_rows, row_sel = _general_layout(
                id_rows, t_rows, g_rows, y_rows, row_sel, id_col=id_col, time_col=time_col, group_col=group_col)
            del t_rows, g_rows
    if (g_unit < 0).any():
        raise ValueError(f"column {group_col!r} has negative values; use the first treated period, 0 = never treated")
    early = (g_unit > 0) & (g_unit <= periods[0])
    late = g_unit > periods[-1]
    if early.any():
        notes["units_treated_in_first_period_dropped"] = int(early.sum())
    if late.any():
        notes["units_treated_after_last_period_as_never_treated"] = int(late.sum())
        g_unit = np.where(late, 0, g_unit)
    values = _distinct(g_unit)
    kept_groups = [int(g) for g in values if g > 0 and g > periods[0]] + ([0] if values.size and values[0] == 0 else [])
    if len(kept_groups) <= 64:
        # a stable sort by group (never-treated last) without sorting: one pass per group
        parts = [np.flatnonzero(g_unit == g) for g in kept_groups]
        order = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        sizes = [p.shape[0] for p in parts]
        del parts
    else:
        key = np.where(g_unit == 0, NEVER_KEY, g_unit)
        order = np.argsort(key, kind="stable")
        order = order[~early[order]]
        sizes = [int(c) for c in np.unique(key[order], return_counts=True)[1]]
        del key
    n = order.shape[0]
    if n == 0:
        raise ValueError("no units left after dropping those treated in the first period")
    n_t = len(periods)
    n_all = g_unit.shape[0]  # units before dropping those treated in the first period
    complete = layout is None and (codes is None or n_all * n_t == codes.shape[0])
    y: np.ndarray | _RowSource
    unit_pos = None
    if layout is not None:
        unit_pos = np.full(n_all, -1, dtype=np.int64)
        unit_pos[order] = np.arange(n)
        y = layout.scatter(data.get_column(outcome), unit_pos, n)
        row_code = pidx_k = keep_rows = None
    elif complete:
        if y_rows is None:
            pos = np.full(n_all + 1, -1, dtype=np.int64)
            pos[order] = np.arange(n)
            y = _RowSource(data.get_column(outcome), pos, n, n_t)  # built on first access of ``panel.y``
        else:
            y = _gather_rows(y_rows.reshape(n_all, n_t), order)
        row_code = pidx_k = keep_rows = None
    else:
        if pidx is None or y_rows is None:
            raise RuntimeError("internal error: a panel layout with missing unit-periods lacks its period index or "
                               "outcome rows")
        new_code = np.full(n_all, -1, dtype=np.int64)
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
        if fast is not None:  # chunk by chunk on the frame's own buffers: no full-length float64 copy
            series = data.get_column(name)
            unit = _unit_values(series, n_t, n_all, increasing=False)
            if unit is not None:
                return unit[order].astype(np.float64, copy=False)
            if kind == "weight":
                raise ValueError(f"weight column {name!r} must be constant within each unit")
            pos = np.full(n_all + 1, -1, dtype=np.int64)
            pos[order] = np.arange(n)
            # time-varying: read from the frame's buffers where used (no second units × periods copy)
            return cast(np.ndarray, _RowSource(series, pos, n, n_t))
        if layout is not None and unit_pos is not None:
            series = data.get_column(name)
            unit = layout.unit_values(series)
            if unit is not None:
                return unit[order]
            if kind == "weight":
                raise ValueError(f"weight column {name!r} must be constant within each unit")
            return layout.scatter(series, unit_pos, n)
        first = (v[::n_t] if starts is None else v[starts])[order]
        if complete:  # constant within units: every row equals its unit's first row (no units × periods copies)
            wide = v.reshape(n_all, n_t)
            same = all(np.array_equal(wide[:, k], wide[:, 0]) for k in range(1, n_t))
        else:
            vk = v if keep_rows is None else v[keep_rows]
            same = np.array_equal(vk, first[row_code])
        if same:
            return first
        if kind == "weight":
            raise ValueError(f"weight column {name!r} must be constant within each unit")
        if complete:
            m = _gather_rows(v.reshape(n_all, n_t), order)
        else:
            m = np.full((n, n_t), np.nan, order="F")
            m[row_code, pidx_k] = v if keep_rows is None else v[keep_rows]
        return m

    def checked(col: str) -> tuple[np.ndarray, int, float, float]:
        """The column's rows (an empty array for the rectangular and sorted-rows layouts, which read them chunk by
        chunk), its number of missing values, minimum and maximum (NaN when values are missing)."""
        if layout is not None or fast is not None:  # polars' own aggregates in the column's type: no copy
            fs = data.get_column(col)
            nan = fs.null_count() + (int(fs.is_nan().sum()) if fs.dtype.is_float() else 0)
            if nan:  # refused by the callers; the range is not needed
                return np.empty(0), nan, float("nan"), float("nan")
            return np.empty(0), nan, float(fs.min()), float(fs.max())  # type: ignore[arg-type]
        v = rows_of(col)
        nan = int(np.isnan(v).sum())
        return v, nan, float(np.nanmin(v)) if nan < v.size else float("nan"), \
            float(np.nanmax(v)) if nan < v.size else float("nan")

    cov: dict[str, np.ndarray] = {}
    for c in covariates:
        v, nan, lo, hi = checked(c)
        if nan:
            raise ValueError(f"covariate {c!r} has {nan} missing values; impute or drop them first")
        if hi == lo:
            raise ValueError(f"covariate {c!r} is constant; it cannot be used as a covariate")
        cov[c] = to_units(v, c, "covariate")
        del v
    weights = None
    if weight_col:
        v, nan, lo, hi = checked(weight_col)
        if nan or lo < 0:
            raise ValueError(f"weight column {weight_col!r} must be non-negative and not missing")
        weights = to_units(v, weight_col, "weight")
    group = g_unit[order]
    if fast is not None:
        unit_ids = pl.Series(id_col, unit_first_ids[order]).cast(id_series.dtype)
    else:
        src_rows = order * n_t if starts is None else starts[order]
        unit_ids = id_series.gather(src_rows if row_sel is None else row_sel[src_rows]).alias(id_col)
    bounds = np.cumsum([0, *sizes])
    spans = {g: (int(bounds[k]), int(bounds[k + 1])) for k, g in enumerate(kept_groups)}
    blocks: dict[int, tuple[int, int]] = {g: spans[g] for g in sorted(spans)}
    if isinstance(y, _RowSource):  # a complete rectangular frame without missing outcomes
        balanced, n_missing = True, 0
    else:
        balanced = (complete and row_sel is None) or not np.isnan(y).any()
        n_missing = 0 if balanced else int(np.isnan(y).sum())
    notes["units"] = n
    notes["balanced"] = balanced
    if not balanced:
        notes["unbalanced_panel"] = ("kept: each ATT(g,t) uses the units observed in both of its periods "
                                     f"({n_missing} unit-periods missing)")
    # ``Panel.y`` is a deferrable field: a stored ``_RowSource`` is materialised on first access of ``panel.y``
    return Panel(y=cast(np.ndarray, y), periods=periods, group=group, unit_ids=unit_ids, covariates=cov, weights=weights,
                 balanced=balanced, blocks=blocks, notes=notes)


def _chunks(series: pl.Series, dtype=None):
    """``(first row, values)`` of each buffer of a column without copying (cast chunk by chunk if ``dtype``)."""
    start = 0
    for chunk in series.get_chunks():
        if dtype is not None and chunk.dtype != dtype:
            chunk = chunk.cast(dtype)
        values = chunk.to_numpy()
        yield start, values
        start += values.shape[0]


def _unit_values(series: pl.Series, k: int, units: int, *, increasing: bool) -> np.ndarray | None:
    """Each unit's value (rows ``0, k, 2k, …``) if the column is constant within each run of k rows, else None.

    ``increasing``: also require the values to strictly increase from one unit to the next (sorted ids); then
    "non-decreasing rows and equal first and last row of every unit" is the (cheaper) constancy check.
    """
    first: np.ndarray | None = None
    last: np.ndarray | None = None
    prev = None
    for start, v in _chunks(series):
        if first is None or last is None:  # the first chunk (both are allocated together)
            first = np.empty(units, dtype=v.dtype)
            last = np.empty(units, dtype=v.dtype)
        size = v.shape[0]
        if size == 0:
            continue
        phase = start % k
        head = (k - phase) % k  # rows of the unit begun in an earlier chunk
        u = (start + head) // k
        own = v[head::k]
        first[u:u + own.shape[0]] = own
        tail = (k - 1 - phase) % k  # first row of this chunk that ends a unit
        ends = v[tail::k]
        u_end = (start + tail) // k
        last[u_end:u_end + ends.shape[0]] = ends
        if increasing:
            if (prev is not None and v[0] < prev) or not np.all(v[1:] >= v[:-1]):
                return None
        else:
            if prev is not None and phase and v[0] != prev:
                return None
            same = v[1:] == v[:-1]
            same[head - 1 if head else k - 1::k] = True  # unit boundaries inside the chunk
            if not same.all():
                return None
        prev = v[-1]
    if first is None or last is None or not np.array_equal(first, last):
        return None
    if increasing and np.any(first[1:] <= first[:-1]):
        return None
    return first


def _rectangular_frame(data: pl.DataFrame, *, outcome: str, id_col: str, time_col: str, group_col: str):
    """``(periods, group of each unit)`` when the frame is sorted by (id, period) with exactly one row per unit and
    period, integer id/period/group columns, no missing values and a group constant within units; else None.

    Works chunk by chunk on the columns' own buffers (a Parquet file arrives in many chunks; a full ``to_numpy``
    copy of every column costs more than the estimator itself).
    """
    cols = [data.get_column(c) for c in (id_col, time_col, group_col, outcome)]
    ids, ts, gs, ys = cols
    m = data.height
    if m == 0 or not (ids.dtype.is_integer() and ts.dtype.is_integer() and gs.dtype.is_integer()):
        return None
    if any(c.null_count() for c in cols):
        return None
    head = ids.slice(0, 4096).to_numpy()
    other = np.flatnonzero(head != head[0])
    k = int(other[0]) if other.size else head.shape[0]
    if (not other.size and m > k) or m % k:
        return None
    periods = ts.slice(0, k).cast(pl.Int64).to_numpy().copy()
    if np.any(periods[1:] <= periods[:-1]):
        return None
    units = m // k
    pattern = None
    for start, v in _chunks(ts):
        phase = start % k
        if pattern is None or pattern.shape[0] < phase + v.shape[0]:
            pattern = np.tile(periods, -(-(v.shape[0] + k) // k))
        if not np.array_equal(v, pattern[phase:phase + v.shape[0]]):
            return None
    first = _unit_values(ids, k, units, increasing=True)
    if first is None:
        return None
    g_unit = _unit_values(gs, k, units, increasing=False)
    if g_unit is None:
        return None
    g_unit = g_unit.astype(np.int64, copy=False)
    for _, v in _chunks(ys, pl.Float64):
        if not np.isfinite(v.sum()) and np.isnan(v).any():
            return None
    return periods, g_unit, first


def _rectangular(id_rows: np.ndarray, t_rows: np.ndarray, g_rows: np.ndarray):
    """``(periods, group of each unit)`` when the rows are sorted by (id, period) with exactly one row per unit and
    period and a constant group within units (the usual register extract), else None (use the general layout)."""
    m = id_rows.shape[0]
    if m == 0:
        return None
    head = id_rows[:min(m, 4096)]
    other = np.flatnonzero(head != head[0])
    k = int(other[0]) if other.size else head.shape[0]
    if (not other.size and m > k) or m % k:
        return None
    periods = t_rows[:k]
    if np.any(periods[1:] <= periods[:-1]):
        return None
    units = m // k
    ids = id_rows.reshape(units, k)
    first = ids[:, 0]
    if np.any(first[1:] <= first[:-1]) or not np.array_equal(ids[:, -1], first):
        return None
    if k > 1 and not (ids[:, 1:-1] == first[:, None]).all():
        return None
    if not (t_rows.reshape(units, k) == periods).all():
        return None
    g = g_rows.reshape(units, k)
    if k > 1 and not (g[:, 1:] == g[:, :1]).all():
        return None
    return periods.astype(np.int64), g[:, 0].copy()


def _general_layout(id_rows, t_rows, g_rows, y_rows, row_sel, *, id_col: str, time_col: str, group_col: str):
    """Sort rows by (id, period) if needed, refuse duplicates, code units and periods, check the group is constant."""
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
    del d_id
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

    g_unit = g_rows[starts]
    change = np.flatnonzero(g_rows[1:] != g_rows[:-1]) + 1
    change = change[codes[change] == codes[change - 1]]
    if change.size:
        varying = int(np.unique(codes[change]).size)
        raise ValueError(f"column {group_col!r} must be constant within each unit (it varies for {varying} units); "
                         "a treatment that switches off is not staggered adoption")
    return periods, starts, codes, pidx, g_unit, y_rows, row_sel


def _distinct(v: np.ndarray) -> np.ndarray:
    """Sorted distinct values of a non-negative integer vector (a counting pass when the range is small)."""
    if v.size and 0 <= v.min() and v.max() < 1 << 20:
        return np.flatnonzero(np.bincount(v)).astype(v.dtype)
    return np.unique(v)


def _gather_rows(src: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``src[order]`` (rows) as a Fortran-ordered array, gathered in cache-sized row chunks (one pass over ``src``)."""
    k = src.shape[1]
    out = np.empty((order.shape[0], k), order="F")
    step = max(1, (1 << 16) // max(k, 1))
    for s in range(0, order.shape[0], step):
        out[s:s + step] = src[order[s:s + step]]
    return out


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


def unit_clusters(data: pl.DataFrame, *, id_col: str, cluster_col: str, unit_ids: pl.Series) -> np.ndarray:
    """Cluster code (``0 … G − 1``) of each unit of a panel, in the order of ``unit_ids`` (``Panel.unit_ids``).

    The cluster (e.g. the municipality that assigns the treatment) must be constant within each unit, as R
    ``did`` requires of ``clustervars``: inference at the level of assignment sums whole units' influence
    functions, so a unit cannot belong to two clusters. Refused otherwise (ValueError naming the column and how
    many units move between clusters), and when the column is missing or has missing values.
    """
    if isinstance(data, pl.LazyFrame):
        data = data.collect()
    check_columns(data, [id_col, cluster_col])
    if cluster_col == id_col:
        return np.arange(unit_ids.shape[0], dtype=np.int64)
    nulls = data.get_column(cluster_col).null_count()
    if nulls:
        raise ValueError(f"cluster column {cluster_col!r} has {nulls} missing values; every row needs a cluster")
    pairs = data.select(pl.col(id_col), pl.col(cluster_col).alias("_cluster")).unique()
    if pairs.height > pairs.get_column(id_col).n_unique():
        moving = pairs.group_by(id_col).len().filter(pl.col("len") > 1).height
        raise ValueError(f"cluster column {cluster_col!r} must be constant within each unit ({id_col!r}); it varies "
                         f"for {moving} units — cluster at a level the units do not move between (e.g. the "
                         "municipality at treatment start)")
    order = pl.DataFrame({id_col: unit_ids}).with_row_index("_row")
    aligned = order.join(pairs, on=id_col, how="left").sort("_row").get_column("_cluster")
    _, codes = np.unique(aligned.to_numpy(), return_inverse=True)
    return codes.astype(np.int64).reshape(-1)
