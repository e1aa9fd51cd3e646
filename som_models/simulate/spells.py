"""The generator's own day and event counting (numpy), used to record what each person-year received.

These functions implement the panel rules of ``shared/reference/register-outcomes.md`` independently of the
ingestion code (polars), so a test comparing the two is a real check:

* a spell covers the days ``d`` with ``start ≤ d < end``; each day is counted in its own calendar year;
* overlapping spells of one kind count each day once (the union of the spells);
* event counts (visits, convictions) are counted in the calendar year of their date.

Dates are ``numpy.datetime64[D]`` arrays; persons are integer indices into the person table.
"""

from __future__ import annotations

import numpy as np

_BIG = np.int64(1) << np.int64(40)


def year_start(years: np.ndarray) -> np.ndarray:
    """1 January of each year as ``datetime64[D]``."""
    return (np.asarray(years, dtype=np.int64) - 1970).astype("datetime64[Y]").astype("datetime64[D]")


def union_days_per_year(person: np.ndarray, start: np.ndarray, end: np.ndarray, years: np.ndarray,
                        n_persons: int) -> np.ndarray:
    """Days per person and calendar year covered by the union of ``[start, end)`` spells.

    Returns an ``(n_persons, len(years))`` int32 array. Spells are clipped to the years given. The union is
    formed per person after sorting by start: a spell opens a new block when its start lies after the running
    maximum of earlier ends (grouped running maximum via an offset of ``person × 2⁴⁰`` days).
    """
    out = np.zeros((n_persons, len(years)), dtype=np.int32)
    if len(person) == 0:
        return out
    person = np.asarray(person, np.int64)
    s = np.asarray(start, "datetime64[D]").astype(np.int64)
    e = np.asarray(end, "datetime64[D]").astype(np.int64)
    lo = year_start(years[:1]).astype(np.int64)[0]
    hi = year_start(np.asarray([years[-1] + 1])).astype(np.int64)[0]
    s, e = np.maximum(s, lo), np.minimum(e, hi)
    keep = e > s
    person, s, e = person[keep], s[keep], e[keep]
    if len(person) == 0:
        return out
    order = np.lexsort((s, person))
    person, s, e = person[order], s[order], e[order]
    run_end = np.maximum.accumulate(e + person * _BIG) - person * _BIG
    prev_end = np.concatenate(([np.iinfo(np.int64).min], run_end[:-1]))
    new_person = np.concatenate(([True], person[1:] != person[:-1]))
    new_block = new_person | (s > prev_end)
    block = np.cumsum(new_block) - 1
    b_person = person[new_block]
    b_start = s[new_block]
    b_end = np.zeros(len(b_start), dtype=np.int64)
    np.maximum.at(b_end, block, e)
    bounds = year_start(np.append(years, years[-1] + 1)).astype(np.int64)
    for j in range(len(years)):
        days = np.minimum(b_end, bounds[j + 1]) - np.maximum(b_start, bounds[j])
        pos = days > 0
        np.add.at(out[:, j], b_person[pos], days[pos].astype(np.int32))
    return out


def count_per_year(person: np.ndarray, date: np.ndarray, years: np.ndarray, n_persons: int) -> np.ndarray:
    """Number of events per person and calendar year of ``date`` (events outside ``years`` are ignored)."""
    out = np.zeros((n_persons, len(years)), dtype=np.int32)
    if len(person) == 0:
        return out
    y = np.asarray(date, "datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    j = y - int(years[0])
    ok = (j >= 0) & (j < len(years))
    np.add.at(out, (np.asarray(person, np.int64)[ok], j[ok]), 1)
    return out


def expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a (persons × years) count array: row, column and slot index (0…count−1) of every event."""
    rows, cols = np.nonzero(counts)
    n = counts[rows, cols].astype(np.int64)
    r = np.repeat(rows, n)
    c = np.repeat(cols, n)
    first = np.repeat(np.cumsum(n) - n, n)
    k = np.arange(int(n.sum()), dtype=np.int64) - first
    return r, c, k
