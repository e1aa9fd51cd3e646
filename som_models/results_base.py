"""The result protocol shared by estimator, projection and Monte Carlo results, and its one implementation.

Every result object of ``som_models`` (ATT(g, t) results, aggregations, realised effects, randomised,
matched and consequence estimates, the projection, the Monte Carlo; the estimation dispatcher's result
adopts it too) follows one convention, :class:`Result`:

* ``summary() -> str`` — a short multi-line text like a regression table: a title, a block of
  ``key: value`` lines (design or method, sizes, settings), one table (estimates with SE and confidence
  interval, or NPV per payer …) and a footer (tests, notes). Long tables are cut at ``max_rows`` rows
  with a line saying how many were left out; ``to_polars()`` always has them all.
* ``to_polars() -> polars.DataFrame`` — the main table as a tidy frame (for estimates the schema of
  DESIGN §3.3). The summary's table shows these rows (or, where the full table is long, a named subset
  such as the event-time and overall rows of all ATT(g, t) cells).
* ``__repr__`` — one line ``ClassName(key=value, …)``: the class, the key sizes and the headline figure.
  It never prints arrays, influence functions or whole tables (at most :data:`REPR_WIDTH` characters).

Results stay immutable (frozen dataclasses). A result class inherits :class:`ResultDisplay`, is declared
``@dataclass(frozen=True, repr=False)`` (so the dataclass does not replace the one-line ``__repr__``) and
implements ``_repr_fields()``, ``summary()`` and ``to_polars()`` with the helpers below:
:func:`fmt` (numbers), :func:`fmt_p` (p-values), :func:`text_table` / :func:`frame_lines` (aligned text
tables) and :func:`render_summary` (the layout).

Number format: four significant digits; magnitudes ≥ 10 000 as whole numbers with thousands separators
(kroner); missing or not-a-number values as ``NA``.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import polars as pl

#: Longest one-line ``repr`` (characters); longer ones are cut with ``…``.
REPR_WIDTH = 160
#: Default number of table rows a summary shows.
MAX_ROWS = 40
NA = "NA"
#: Text that is a formatted number (right-aligned in tables): ``0.123``, ``-1,234``, ``<0.001``, ``NA``.
_NUMBER_TEXT = re.compile(r"^(NA|[<>]?-?[\d,]*\.?\d+(e[+-]?\d+)?)$")


@runtime_checkable
class Result(Protocol):
    """What every result object offers (see the module docstring)."""

    def summary(self) -> str:
        """A short readable multi-line text of the result."""
        ...

    def to_polars(self) -> pl.DataFrame:
        """The main table as a tidy polars DataFrame."""
        ...


def fmt(x: Any, digits: int = 4) -> str:
    """A number for display: ``digits`` significant digits; ≥ 10 000 as ``12,345``; None/NaN as ``NA``.

    Integers print as they are (years stay ``2019``), booleans as ``yes``/``no``, strings unchanged.
    """
    if x is None:
        return NA
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, numbers.Integral):
        return str(int(x))
    if isinstance(x, numbers.Real):
        v = float(x)
        if math.isnan(v):
            return NA
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if abs(v) >= 1e4:
            return f"{v:,.0f}"
        out = f"{v:.{digits}g}"
        return "0" if out == "-0" else out
    return str(x)


def fmt_p(p: Any) -> str:
    """A p-value: ``<0.001`` below 0.001, else three decimals; ``NA`` when missing."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return NA
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_ci(low: Any, high: Any) -> str:
    """A confidence interval ``[low, high]`` (``NA`` when either end is missing)."""
    if fmt(low) == NA or fmt(high) == NA:
        return NA
    return f"[{fmt(low)}, {fmt(high)}]"


def text_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, max_rows: int | None = MAX_ROWS) -> list[str]:
    """Aligned text lines: a header, a rule and one line per row (numbers right-aligned, text left-aligned).

    Values are formatted with :func:`fmt` unless they already are strings. With more than ``max_rows`` rows the
    first ``max_rows`` are shown and a last line counts the rest.
    """
    shown = rows if max_rows is None else rows[:max_rows]
    cells = [[v if isinstance(v, str) else fmt(v) for v in row] for row in shown]
    numeric = []
    for k in range(len(columns)):
        values = [row[k] for row in shown if row[k] is not None]
        numeric.append(all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                           or isinstance(v, str) and _NUMBER_TEXT.match(v) is not None for v in values)
                       or columns[k].endswith("CI"))
    widths = [max([len(c)] + [len(row[k]) for row in cells]) for k, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=False)).rstrip()

    out = [line(list(columns)), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    if len(shown) < len(rows):
        out.append(f"… {len(rows) - len(shown)} more rows (to_polars() has them all)")
    return out


def _cell(col: str) -> Callable[[dict[str, Any]], Any]:
    """The value of column ``col`` of a named row."""
    return lambda r: r[col]


def _ci_cell(lo: str, hi: str) -> Callable[[dict[str, Any]], str]:
    """The ``[low, high]`` text of columns ``lo`` and ``hi`` of a named row."""
    return lambda r: fmt_ci(r[lo], r[hi])


def frame_lines(frame: pl.DataFrame, *, labels: Mapping[str, str] | None = None, ci: tuple[str, str] | None = None,
                ci_label: str = "95 % CI", drop_empty: Iterable[str] = (), max_rows: int | None = MAX_ROWS) -> list[str]:
    """:func:`text_table` of a polars frame: columns renamed by ``labels``; the ``ci`` pair of columns shown as
    one ``[low, high]`` column named ``ci_label`` (in the place of the first); the ``drop_empty`` columns left out
    when they hold no value.
    """
    labels = dict(labels or {})
    cols = [c for c in frame.columns if not (c in set(drop_empty) and frame.get_column(c).null_count() == frame.height)]
    header: list[str] = []
    getters: list[Callable[[dict[str, Any]], Any]] = []
    for c in cols:
        if ci and c == ci[1]:
            continue
        if ci and c == ci[0]:
            header.append(ci_label)
            getters.append(_ci_cell(ci[0], ci[1]))
            continue
        header.append(labels.get(c, c))
        getters.append(_cell(c))
    rows = [[g(r) for g in getters] for r in frame.iter_rows(named=True)]
    return text_table(header, rows, max_rows=max_rows)


def render_summary(title: str, info: Sequence[tuple[str, Any]], body: Sequence[str] = (),
                   footer: Sequence[str] = ()) -> str:
    """The summary layout: title, ``=`` rule, aligned ``key: value`` lines, the table, the footer lines."""
    lines = [title, "=" * max(len(title), 20)]
    items = [(k, v if isinstance(v, str) else fmt(v)) for k, v in info if v is not None and v != ""]
    width = max((len(k) for k, _ in items), default=0)
    lines += [f"{k + ':':<{width + 1}} {v}" for k, v in items]
    if body:
        lines += [""] + list(body)
    if footer:
        lines += [""] + list(footer)
    return "\n".join(lines)


def short_repr(name: str, fields: Mapping[str, Any]) -> str:
    """``name(key=value, …)`` on one line: strings quoted, numbers by :func:`fmt`, at most :data:`REPR_WIDTH`
    characters."""
    parts = []
    for k, v in fields.items():
        if isinstance(v, str):
            text = repr(v if len(v) <= 40 else v[:39] + "…")
        elif isinstance(v, (list, tuple)):
            text = "(" + ", ".join(repr(x) if isinstance(x, str) else fmt(x) for x in v) + ")"
        else:
            text = fmt(v)
        parts.append(f"{k}={text}")
    out = f"{name}({', '.join(parts)})".replace("\n", " ")
    return out if len(out) <= REPR_WIDTH else out[:REPR_WIDTH - 2] + "…)"


class ResultDisplay:
    """Mixin giving a result its one-line ``__repr__`` from ``_repr_fields()`` (see the module docstring).

    Subclasses implement ``_repr_fields()``, ``summary()`` and ``to_polars()``; notebooks show ``summary()``
    for ``print(result.summary())`` and the repr for the bare object.
    """

    __slots__ = ()

    def _repr_fields(self) -> Mapping[str, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return short_repr(type(self).__name__, self._repr_fields())

    def summary(self) -> str:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def to_polars(self) -> pl.DataFrame:  # pragma: no cover - every subclass defines it
        raise NotImplementedError
