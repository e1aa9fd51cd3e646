"""Influence functions kept in structured form, so the units × cells matrix is only built when asked for.

For the unconditional ATT(g, t) on a balanced panel, a cell's influence function on the units of one group
block ``b`` (a contiguous run of rows of the units × periods matrix) is a scaled deviation of the outcome change
``y_t − y_base`` — a linear function of the unit's period-to-period changes. With ``x_i = Δy_i − s_b`` (the
``T − 1`` changes of unit ``i``, shifted by roughly their block mean ``s_b`` for numerical accuracy),
``z_i = (1, x_i)`` and the unit's weight ``w_i`` (1 without weights), every column ``k`` of ``Ψ`` is::

    ψ_ik = w_i · z_i' A_b[:, k]          for unit i in block b

so a block is described by a ``T × K`` coefficient matrix ``A_b``, and everything the estimators need follows
from the per-block Gram matrices ``M_b = Σ_{i∈b} w_i² z_i z_i'`` (``T × T``, one pass over the outcomes):

* ``Ψ'Ψ = Σ_b A_b' M_b A_b`` (cell variances, the pre-trend Wald test, aggregations' variances);
* linear combinations of columns plus per-group constants (aggregations and the influence of estimating the
  group shares, ``w_i κ_{G_i}``) are again of this form: ``A_b W + e₁ κ_b'``;
* cluster sums (inference at the level of assignment, e.g. the municipality): with the per-block, per-cluster
  sums ``Z_bc = Σ_{i∈b∩c} w_i z_i`` (one more pass), ``S_ck = Σ_{i∈c} ψ_ik = Σ_b Z_bc' A_b[:, k]``.

The dense matrix, or one column of it, is materialised on request (bootstrap, combining outcomes, callers of
``DidResult.influence``) in cache-sized chunks of rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
from scipy import sparse

#: rows per chunk when streaming over the outcome matrix (a chunk of changes stays in the CPU cache)
_CHUNK = 16384


def _changes(y: np.ndarray, r0: int, r1: int, shift: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``Δy − shift`` for rows ``r0:r1`` into ``out`` (rows × (T − 1))."""
    d = out[:r1 - r0]
    np.subtract(y[r0:r1, 1:], y[r0:r1, :-1], out=d)
    d -= shift
    return d


class BlockInfluence:
    """Influence functions (units × columns) given per block of rows as ``ψ_ik = w_i z_i' A_b[:, k]``."""

    def __init__(self, source, weights: np.ndarray | None, spans: list[tuple[int, int]],
                 groups: list[int], shift: np.ndarray, gram: np.ndarray, sums: np.ndarray, coef: np.ndarray,
                 cluster_z: np.ndarray | None = None):
        self.cluster_z = cluster_z  # blocks × clusters × T sums Σ w z per cluster (None = not clustered)
        self.source = source  # anything with the units × periods outcome matrix as ``.y`` (a Panel)
        self.weights = weights
        self.spans = spans
        self.groups = groups
        self.shift = shift
        self.gram = gram
        self.sums = sums
        self.coef = coef

    # ------------------------------------------------------------------------------------------ construction
    @classmethod
    def moments(cls, panel, weights: np.ndarray | None, spans: list[tuple[int, int]],
                groups: list[int]) -> BlockInfluence:
        """Shift, Gram matrix ``Σ w² z z'`` and weighted sums ``Σ w z`` of every block (no columns yet), in one
        streaming pass over the panel's unit rows (``panel._unit_rows()``; the outcome matrix is not needed)."""
        n_t = len(panel.periods)
        nb = len(spans)
        shift = np.zeros((nb, n_t - 1))
        seen = np.zeros(nb, dtype=bool)
        gram = np.zeros((nb, n_t, n_t))
        sums = np.zeros((nb, n_t))
        starts = np.array([s for s, _ in spans], dtype=np.int64)
        buf = np.empty((0, n_t - 1))
        for rows, vals in panel._unit_rows(_CHUNK):
            m = vals.shape[0]
            if m == 0:
                continue
            parts: list[tuple[int, slice | None]]
            if isinstance(rows, slice):  # contiguous rows of one block
                parts = [(int(np.searchsorted(starts, rows.start, "right")) - 1, None)]
                rows = np.arange(rows.start, rows.stop) if weights is not None else rows
            else:  # units of several blocks: group them (one stable counting sort and one gather)
                blk = np.searchsorted(starts, rows, "right") - 1
                lo, hi = int(blk.min()), int(blk.max())
                if lo == hi:
                    parts = [(lo, None)]
                else:
                    perm = np.argsort(blk.astype(np.int16) if nb < 32_000 else blk, kind="stable")
                    vals, rows = np.take(vals, perm, axis=0), rows[perm]
                    cut = np.cumsum(np.bincount(blk, minlength=nb))
                    parts = [(b, slice(cut[b - 1] if b else 0, cut[b])) for b in range(lo, hi + 1)]
            if buf.shape[0] < m:
                buf = np.empty((m, n_t - 1))
            for b, part in parts:
                v = vals if part is None else vals[part]
                if v.shape[0] == 0:
                    continue
                x = np.subtract(v[:, 1:], v[:, :-1], out=buf[:v.shape[0]])
                if not seen[b]:
                    shift[b] = x.mean(axis=0)
                    seen[b] = True
                x -= shift[b]
                g = gram[b]
                if weights is None:
                    g[1:, 1:] += x.T @ x
                    g[0, 1:] += x.sum(axis=0)
                    g[0, 0] += x.shape[0]
                else:
                    w = weights[rows if part is None else rows[part]]
                    xw = x * w[:, None]
                    g[1:, 1:] += xw.T @ xw
                    g[0, 1:] += xw.T @ w
                    g[0, 0] += w @ w
                    sums[b, 0] += w.sum()
                    sums[b, 1:] += x.T @ w
        for b in range(nb):
            gram[b, 1:, 0] = gram[b, 0, 1:]
            if weights is None:
                sums[b] = gram[b, 0]
        return cls(panel, weights, list(spans), list(groups), shift, gram, sums, np.zeros((nb, n_t, 0)))

    def with_coef(self, coef: np.ndarray) -> BlockInfluence:
        return BlockInfluence(self.source, self.weights, self.spans, self.groups, self.shift, self.gram, self.sums,
                              coef, self.cluster_z)

    def with_clusters(self, codes: np.ndarray, n_clusters: int) -> BlockInfluence:
        """The same influence functions with the per-block cluster sums ``Z_bc = Σ_{i∈b∩c} w_i z_i`` (``codes``:
        each unit's cluster, 0 … n_clusters − 1), from one streaming pass over the unit rows."""
        nb, n_t = len(self.spans), self.shift.shape[1] + 1
        z = np.zeros((nb * n_clusters, n_t))
        starts = np.array([s for s, _ in self.spans], dtype=np.int64)
        for rows, vals in self.source._unit_rows(_CHUNK):
            if vals.shape[0] == 0:
                continue
            idx = np.arange(rows.start, rows.stop) if isinstance(rows, slice) else np.asarray(rows)
            blk = np.searchsorted(starts, idx, "right") - 1
            x = vals[:, 1:] - vals[:, :-1]
            x -= self.shift[blk]
            key = blk * n_clusters + codes[idx]
            w = None if self.weights is None else self.weights[idx]
            z[:, 0] += np.bincount(key, weights=w, minlength=z.shape[0])
            for t in range(n_t - 1):
                z[:, t + 1] += np.bincount(key, weights=x[:, t] if w is None else x[:, t] * w, minlength=z.shape[0])
        out = self.with_coef(self.coef)
        out.cluster_z = z.reshape(nb, n_clusters, n_t)
        return out

    def cluster_sums(self) -> np.ndarray:
        """``S = Σ_{i∈c} ψ_i`` per cluster (clusters × columns); needs :meth:`with_clusters` first."""
        if self.cluster_z is None:
            raise ValueError("no cluster sums: call with_clusters() first")
        return np.einsum("bct,btk->ck", self.cluster_z, self.coef)

    # ------------------------------------------------------------------------------------------ algebra
    @property
    def n(self) -> int:
        return int(self.spans[-1][1]) if self.spans else 0

    @property
    def shape(self) -> tuple[int, int]:
        return self.n, int(self.coef.shape[2])

    def combine(self, w: np.ndarray, const: np.ndarray) -> BlockInfluence:
        """Columns ``Ψ W + w_i κ[block]``: ``W`` is columns × L, ``const`` is blocks × L."""
        coef = np.einsum("btk,kl->btl", self.coef, w)
        coef[:, 0, :] += const
        return self.with_coef(coef)

    def cross(self) -> np.ndarray:
        """``Ψ'Ψ`` (columns × columns)."""
        k = self.coef.shape[2]
        out = np.zeros((k, k))
        for b in range(len(self.spans)):
            a = self.coef[b]
            out += a.T @ (self.gram[b] @ a)
        return (out + out.T) / 2

    def sumsq(self) -> np.ndarray:
        """``Σ_i ψ_ik²`` of every column (never negative)."""
        k = self.coef.shape[2]
        out = np.zeros(k)
        for b in range(len(self.spans)):
            a = self.coef[b]
            out += np.einsum("tk,tk->k", a, self.gram[b] @ a)
        return np.maximum(out, 0.0)

    # ------------------------------------------------------------------------------------------ dense form
    def rows(self, r0: int, r1: int, columns: list[int] | None = None) -> np.ndarray:
        """Rows ``r0 … r1 − 1`` of the dense matrix (rows × columns), without building the rest; with ``columns``,
        those columns with the arithmetic of :meth:`materialise` (the same values as its rows)."""
        if columns is not None:
            return self._materialised_rows(r0, r1, self.coef[:, :, columns])
        k = self.coef.shape[2]
        out = np.zeros((r1 - r0, k))
        y = self.source.y
        for b, (s, e) in enumerate(self.spans):
            lo, hi = max(s, r0), min(e, r1)
            a = self.coef[b]
            if hi <= lo or not a.any():
                continue
            part = (y[lo:hi, 1:] - y[lo:hi, :-1] - self.shift[b]) @ a[1:]
            part += a[0]
            if self.weights is not None:
                part *= self.weights[lo:hi, None]
            out[lo - r0:hi - r0] = part
        return out

    def _materialised_rows(self, r0: int, r1: int, coef: np.ndarray) -> np.ndarray:
        """Rows ``r0 … r1 − 1`` of the columns with coefficients ``coef``, computed as :meth:`materialise` does."""
        out = np.zeros((r1 - r0, coef.shape[2]))
        y = self.source.y
        buf = np.empty((min(_CHUNK, max(r1 - r0, 1)), y.shape[1] - 1))
        for b, (s, e) in enumerate(self.spans):
            a = coef[b]
            lo, hi = max(s, r0), min(e, r1)
            if hi <= lo or not a.any():
                continue
            for c0 in range(lo, hi, _CHUNK):
                c1 = min(hi, c0 + _CHUNK)
                part = _changes(y, c0, c1, self.shift[b], buf) @ a[1:]
                part += a[0]
                if self.weights is not None:
                    part *= self.weights[c0:c1, None]
                out[c0 - r0:c1 - r0] = part
        return out

    def materialise(self, columns: list[int] | None = None) -> np.ndarray:
        """The dense units × columns matrix (Fortran order, read-only); zeros outside the blocks."""
        coef = self.coef if columns is None else self.coef[:, :, columns]
        k = coef.shape[2]
        out = np.zeros((self.n, k), order="F")
        if k:
            y = self.source.y
            buf = np.empty((_CHUNK, y.shape[1] - 1))
            for b, (s, e) in enumerate(self.spans):
                a = coef[b]
                if not a.any():
                    continue
                for r0 in range(s, e, _CHUNK):
                    r1 = min(e, r0 + _CHUNK)
                    part = _changes(y, r0, r1, self.shift[b], buf) @ a[1:]
                    part += a[0]
                    if self.weights is not None:
                        part *= self.weights[r0:r1, None]
                    out[r0:r1] = part
        out.setflags(write=False)
        return out


class DeferredColumn:
    """One column of a :class:`BlockInfluence` or :class:`StreamedInfluence`, materialised on request (a units vector)."""

    def __init__(self, influence: BlockInfluence | StreamedInfluence, column: int):
        self.influence = influence
        self.column = column

    def materialise(self) -> np.ndarray:
        return self.influence.materialise([self.column])[:, 0]

    def rows_view(self) -> ColumnRows:
        """The column as a units × 1 matrix read chunk by chunk (for the bootstrap)."""
        return ColumnRows(self.influence, [self.column])


class ColumnRows:
    """Some columns of a structured influence (``rows(r0, r1, columns)``) as a units × columns matrix that is read
    chunk by chunk of rows (``shape``, ``rows``): what :func:`~som_models.estimators.bootstrap.multiplier_bootstrap`
    streams, so the bootstrap of an aggregation never holds its dense columns."""

    def __init__(self, influence: BlockInfluence | StreamedInfluence, columns: list[int]):
        self.influence = influence
        self.columns = list(columns)

    @property
    def shape(self) -> tuple[int, int]:
        return self.influence.n, len(self.columns)

    def rows(self, r0: int, r1: int) -> np.ndarray:
        return self.influence.rows(r0, r1, self.columns)


class DeferredColumns(Mapping):
    """``label -> units vector`` for the columns of a :class:`BlockInfluence` or :class:`StreamedInfluence`; all
    columns are materialised together on the first lookup (keys, length and iteration do not materialise anything)."""

    def __init__(self, labels: list, influence: BlockInfluence | StreamedInfluence, columns: list[int]):
        self._index = {lab: k for k, lab in enumerate(labels)}
        self._influence = influence
        self._columns = columns
        self._dense: np.ndarray | None = None

    def __getitem__(self, label) -> np.ndarray:
        k = self._index[label]
        if self._dense is None:
            self._dense = self._influence.materialise(self._columns)
        return self._dense[:, k]

    def __iter__(self) -> Iterator:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def rows_view(self, labels: list) -> ColumnRows:
        """The columns of ``labels`` (in that order) as a units × labels matrix read chunk by chunk (the bootstrap)."""
        return ColumnRows(self._influence, [self._columns[self._index[lab]] for lab in labels])

    def __repr__(self) -> str:
        return f"DeferredColumns({list(self._index)}, units={self._influence.n})"


# ---------------------------------------------------------------------------------------------------------------
# Influence functions evaluated in chunks of units (unbalanced panels, covariate methods)
# ---------------------------------------------------------------------------------------------------------------

#: bytes of one chunk of evaluated influence functions (rows × columns float64)
_CHUNK_BYTES = 8 * 2**20


class StreamedInfluence:
    """Influence functions (units × columns) evaluated chunk by chunk of units, never held whole.

    ``source.evaluate(r0, r1)`` returns the base influence functions ``Ψ[r0:r1]`` (rows × K, dense) of the
    units in rows ``r0 … r1 − 1``; ``source.n`` is the number of units. The columns of this object are
    ``ψ̃_i = W' ψ_i + w_i κ_{b(i)}`` (``W``: K × L, ``κ``: blocks × L, ``b(i)`` the unit's block of ``spans``,
    ``w_i`` its weight, 1 without weights) — the form of the aggregations and of the influence of estimating
    the group shares. One pass over the units at construction accumulates the moments everything else follows
    from::

        C = Ψ'Ψ (K × K),   B_b = Σ_{i∈b} w_i ψ_i (blocks × K),   D_b = Σ_{i∈b} w_i² (blocks),
        S_c = Σ_{i∈c} ψ_i (clusters × K),   Q_cb = Σ_{i∈c∩b} w_i (clusters × blocks)

    so that ``Ψ̃'Ψ̃ = W'CW + W'B'κ + κ'BW + κ' diag(D) κ`` and the cluster sums are ``S̃ = S W + Q κ``: variances,
    the pre-trend test, the aggregations and the cluster-robust versions of all of them in O(K²) memory and no
    further pass. The dense matrix (or some of its columns) is built only on request (:meth:`materialise`; the
    bootstrap, combining outcomes, ``DidResult.influence``), again chunk by chunk.
    """

    def __init__(self, source, spans: list[tuple[int, int]], groups: list[int], weights: np.ndarray | None,
                 moments: dict[str, np.ndarray | None], wmat: np.ndarray | None = None,
                 kappa: np.ndarray | None = None):
        self.source = source
        self.spans = spans
        self.groups = groups
        self.weights = weights
        self.moments = moments
        k = moments["cross"].shape[0]  # type: ignore[union-attr]
        self.wmat = np.eye(k) if wmat is None else wmat
        self.kappa = np.zeros((len(spans), self.wmat.shape[1])) if kappa is None else kappa

    @classmethod
    def accumulate(cls, source, spans: list[tuple[int, int]], groups: list[int], weights: np.ndarray | None,
                   clusters: np.ndarray | None = None) -> StreamedInfluence:
        """Evaluate the source chunk by chunk and keep only the moments (see the class docstring)."""
        n, k = source.n, source.k
        nb = len(spans)
        cross = np.zeros((k, k))
        bsum = np.zeros((nb, k))
        block = np.zeros(n, dtype=np.int64)
        for b, (s, e) in enumerate(spans):
            block[s:e] = b
        w = np.ones(n) if weights is None else weights
        dsum = np.bincount(block, weights=w * w, minlength=nb).astype(float)
        csum = qsum = None
        if clusters is not None:
            n_clusters = int(clusters.max()) + 1 if clusters.size else 0
            csum = np.zeros((n_clusters, k))
            qsum = np.bincount(clusters * nb + block, weights=w, minlength=n_clusters * nb).reshape(n_clusters, nb)
        step = max(1024, _CHUNK_BYTES // (8 * max(k, 1)))
        for r0 in range(0, n, step):
            r1 = min(n, r0 + step)
            p = source.evaluate(r0, r1)
            cross += p.T @ p
            for b, (s, e) in enumerate(spans):
                lo, hi = max(s, r0), min(e, r1)
                if hi > lo:
                    bsum[b] += w[lo:hi] @ p[lo - r0:hi - r0]
            if csum is not None and clusters is not None:
                codes = clusters[r0:r1]
                member = sparse.csr_matrix((np.ones(r1 - r0), (codes, np.arange(r1 - r0))),
                                           shape=(csum.shape[0], r1 - r0))
                csum += np.asarray(member @ p)
        cross = (cross + cross.T) / 2
        return cls(source, list(spans), list(groups), weights,
                   {"cross": cross, "bsum": bsum, "dsum": dsum, "csum": csum, "qsum": qsum})

    # ------------------------------------------------------------------------------------------ algebra
    @property
    def n(self) -> int:
        return int(self.source.n)

    @property
    def shape(self) -> tuple[int, int]:
        return self.n, int(self.wmat.shape[1])

    def combine(self, w: np.ndarray, const: np.ndarray) -> StreamedInfluence:
        """Columns ``Ψ̃ W + w_i κ[block]``: ``W`` is columns × L, ``const`` is blocks × L."""
        return StreamedInfluence(self.source, self.spans, self.groups, self.weights, self.moments,
                                 self.wmat @ w, self.kappa @ w + const)

    def cross(self) -> np.ndarray:
        """``Ψ̃'Ψ̃`` (columns × columns)."""
        m, wm, kap = self.moments, self.wmat, self.kappa
        cw = m["cross"] @ wm  # type: ignore[operator]
        bk = (m["bsum"] @ wm).T @ kap  # type: ignore[operator]
        out = wm.T @ cw + bk + bk.T + kap.T @ (m["dsum"][:, None] * kap)  # type: ignore[index]
        return (out + out.T) / 2

    def sumsq(self) -> np.ndarray:
        """``Σ_i ψ̃_il²`` of every column (never negative)."""
        return np.maximum(np.diag(self.cross()).copy(), 0.0)

    def cluster_sums(self) -> np.ndarray:
        """``S̃ = Σ_{i∈c} ψ̃_i`` per cluster (clusters × columns)."""
        csum, qsum = self.moments["csum"], self.moments["qsum"]
        if csum is None or qsum is None:
            raise ValueError("no cluster sums: the influence functions were accumulated without clusters")
        return csum @ self.wmat + qsum @ self.kappa

    # ------------------------------------------------------------------------------------------ dense form
    def rows(self, r0: int, r1: int, columns: list[int] | None = None) -> np.ndarray:
        """Rows ``r0 … r1 − 1`` of the dense matrix (rows × columns), without building the rest; with ``columns``,
        those columns with the arithmetic of :meth:`materialise` (the same values as its rows)."""
        p = self.source.evaluate(r0, r1)
        if columns is not None:
            identity = self.wmat.shape[0] == self.wmat.shape[1] and not self.kappa.any() \
                and np.array_equal(self.wmat, np.eye(self.wmat.shape[0]))
            if identity:
                return p[:, columns]
            kap = self.kappa[:, columns]
            part = p @ self.wmat[:, columns]
            for b, (s, e) in enumerate(self.spans):
                lo, hi = max(s, r0), min(e, r1)
                if hi > lo and kap[b].any():
                    part[lo - r0:hi - r0] += (1.0 if self.weights is None else self.weights[lo:hi, None]) * kap[b]
            return part
        if self.wmat.shape[0] == self.wmat.shape[1] and not self.kappa.any() \
                and np.array_equal(self.wmat, np.eye(self.wmat.shape[0])):
            return p
        out = p @ self.wmat
        for b, (s, e) in enumerate(self.spans):
            lo, hi = max(s, r0), min(e, r1)
            if hi > lo and self.kappa[b].any():
                out[lo - r0:hi - r0] += (1.0 if self.weights is None else self.weights[lo:hi, None]) * self.kappa[b]
        return out

    def materialise(self, columns: list[int] | None = None) -> np.ndarray:
        """The dense units × columns matrix (Fortran order, read-only), built chunk by chunk of units."""
        identity = self.wmat.shape[0] == self.wmat.shape[1] and not self.kappa.any() \
            and np.array_equal(self.wmat, np.eye(self.wmat.shape[0]))
        wm = self.wmat if columns is None else self.wmat[:, columns]
        kap = self.kappa if columns is None else self.kappa[:, columns]
        n, k = self.n, wm.shape[1]
        out = np.zeros((n, k), order="F")
        if k:
            step = max(1024, _CHUNK_BYTES // (8 * max(self.source.k, 1)))
            for r0 in range(0, n, step):
                r1 = min(n, r0 + step)
                p = self.source.evaluate(r0, r1)
                out[r0:r1] = p if identity and columns is None else (p[:, columns] if identity else p @ wm)
                if not identity:
                    for b, (s, e) in enumerate(self.spans):
                        lo, hi = max(s, r0), min(e, r1)
                        if hi > lo and kap[b].any():
                            wb = 1.0 if self.weights is None else self.weights[lo:hi, None]
                            out[lo:hi] += wb * kap[b]
        out.setflags(write=False)
        return out


# ---------------------------------------------------------------------------------------------------------------
# Influence functions of several results side by side on the union of their units (the matched design)
# ---------------------------------------------------------------------------------------------------------------

class StackedSource:
    """The columns of several results' influence functions side by side on the union of their units, for
    :class:`StreamedInfluence` (``evaluate(r0, r1)``, ``n``, ``k``).

    ``parts`` holds, per result, ``(influence, rows, scale)``: its influence functions (structured, with
    ``rows(a, b)``, or a dense array), the union row of each of its units in the order the union is evaluated
    (``rows`` must increase, so the units of a chunk of union rows are one contiguous run of the result's rows)
    and the factor its columns are multiplied by. ``ψ_ij = scale · ψ^part_{i, j − offset}`` for the union units
    in the part, 0 for the others.
    """

    def __init__(self, parts: list[tuple[object, np.ndarray, float]], n: int):
        offsets, k = [], 0
        for infl, rows, _ in parts:
            if rows.shape[0] > 1 and not np.all(rows[1:] > rows[:-1]):
                raise ValueError("internal error: a stacked part's union rows must increase")
            offsets.append(k)
            k += int(infl.shape[1])  # type: ignore[attr-defined]
        self.parts, self.offsets, self.n, self.k = parts, offsets, n, k

    def evaluate(self, r0: int, r1: int) -> np.ndarray:
        out = np.zeros((r1 - r0, self.k), order="F")
        for (infl, rows, scale), off in zip(self.parts, self.offsets, strict=True):
            lo, hi = (int(v) for v in np.searchsorted(rows, [r0, r1]))
            if hi <= lo:
                continue
            block = infl.rows(lo, hi) if hasattr(infl, "rows") else np.asarray(infl)[lo:hi]
            out[rows[lo:hi] - r0, off:off + block.shape[1]] = scale * block
        return out


class PermutedInfluence(StreamedInfluence):
    """A :class:`StreamedInfluence` evaluated in an internal order of the units (``perm[j]``: the unit — public row —
    held in internal row ``j``; e.g. the matched design's union sorted so that every group is a contiguous block).
    Cross products, sums of squares and group sums do not depend on the order; the dense matrix (and its rows)
    come in the public order, built on request (the bootstrap) and then kept."""

    perm: np.ndarray
    _dense: np.ndarray | None = None

    @classmethod
    def wrap(cls, inner: StreamedInfluence, perm: np.ndarray) -> PermutedInfluence:
        out = cls(inner.source, inner.spans, inner.groups, inner.weights, inner.moments, inner.wmat, inner.kappa)
        out.perm = perm
        return out

    def combine(self, w: np.ndarray, const: np.ndarray) -> PermutedInfluence:
        return PermutedInfluence.wrap(StreamedInfluence.combine(self, w, const), self.perm)

    def materialise(self, columns: list[int] | None = None) -> np.ndarray:
        """The dense units × columns matrix in the public order of the units (Fortran order, read-only)."""
        inner = StreamedInfluence.materialise(self, columns)
        out = np.empty(inner.shape, order="F")
        out[self.perm] = inner
        out.setflags(write=False)
        return out

    def rows(self, r0: int, r1: int, columns: list[int] | None = None) -> np.ndarray:
        """Rows ``r0 … r1 − 1`` in the public order (from the dense matrix, built once on the first call)."""
        if self._dense is None:
            self._dense = self.materialise()
        return self._dense[r0:r1] if columns is None else self._dense[r0:r1][:, columns]
