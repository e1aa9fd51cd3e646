"""The population of a synthetic world: persons, residence spells and municipality per year (BEF).

A person is resident (in BEF on 31 December) in the years ``entry ≤ j < exit`` (indices into the world's
years). Entry after the first year is a birth (persons born in the period enter in their birth year) or an
immigration; exit is a death or an emigration on ``exit_date`` inside the year ``exit`` — such a person is
absent from BEF from that year on, as BEF is a status on 31 December. Each resident year the person moves
to another municipality with probability ``move``; KOM in BEF is the municipality on 31 December.

PNRs are synthetic CPR-like strings ``DDMMYY`` + 4 digits with the birth date in front and the last digit
odd for men and even for women (as in CPR); they do not satisfy the old modulus-11 check and are not real
persons' numbers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from som_models.simulate.rand import Streams

#: Municipality codes (kommunekoder) used by the worlds: København, Aarhus, Odense, Aalborg, Esbjerg,
#: Randers, Kolding, Horsens, Vejle, Roskilde, Herning, Silkeborg, Næstved, Frederiksberg, Holbæk, Svendborg.
MUNICIPALITIES = (101, 751, 461, 851, 561, 730, 621, 615, 630, 265, 657, 740, 370, 147, 316, 479)
NEVER = 32767


@dataclass(frozen=True, eq=False)
class Population:
    """Person-level arrays (index = person) and the (persons × years) municipality matrix."""

    years: np.ndarray
    pnr: np.ndarray
    sex: np.ndarray
    birth: np.ndarray
    entry: np.ndarray
    exit: np.ndarray
    exit_date: np.ndarray
    exit_kind: np.ndarray
    kom: np.ndarray

    @property
    def n(self) -> int:
        return len(self.pnr)

    @property
    def resident(self) -> np.ndarray:
        j = np.arange(len(self.years))[None, :]
        return (j >= self.entry[:, None]) & (j < self.exit[:, None])

    @property
    def birth_year(self) -> np.ndarray:
        return self.birth.astype("datetime64[Y]").astype(np.int64) + 1970

    def age(self) -> np.ndarray:
        """Age in each year as year − birth year (the panel's definition), persons × years."""
        return self.years[None, :] - self.birth_year[:, None]


def days_in_year(year: np.ndarray) -> np.ndarray:
    y = np.asarray(year, dtype=np.int64)
    return 365 + ((y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0)))


def date_in_year(year: np.ndarray, u: np.ndarray, first_day: int = 0, span: np.ndarray | int | None = None) -> np.ndarray:
    """A date inside ``year``: 1 January + first_day + floor(u × span) (span defaults to the rest of the year)."""
    year = np.asarray(year, dtype=np.int64)
    base = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    span = days_in_year(year) - first_day if span is None else span
    return base + (first_day + np.floor(u * span)).astype(np.int64)


def exit_day(year: np.ndarray, u: np.ndarray) -> np.ndarray:
    """A death/emigration date between 8 January and 23 December: always inside an ISO week of the same ISO
    year, so DREAM's exit codes never reach back into the previous (still resident) year's weeks."""
    return date_in_year(year, u, first_day=7, span=350)


def make_pnrs_for(streams: Streams, birth: np.ndarray, sex: np.ndarray, offset: int = 0, taken: set | None = None) -> np.ndarray:
    """Unique CPR-like numbers: DDMMYY of the birth date + 3 random digits + a sex digit (odd = male)."""
    n = len(birth)
    ymd = birth.astype("datetime64[D]")
    years = ymd.astype("datetime64[Y]").astype(np.int64) + 1970
    months = ymd.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (ymd - ymd.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    front = np.char.add(np.char.add(np.char.zfill(days.astype(str), 2), np.char.zfill(months.astype(str), 2)),
                        np.char.zfill((years % 100).astype(str), 2))
    out = np.empty(n, dtype=object)
    todo = np.arange(n)
    seen: set = set(taken or ())
    attempt = 0
    while len(todo):
        u = streams.uniform("pnr", offset + todo, attempt)
        seq = np.floor(u * 1000).astype(np.int64)
        digit = np.floor(streams.uniform("pnr-sex", offset + todo, attempt) * 5).astype(np.int64) * 2 + (sex[todo] == 1)
        cand = np.char.add(front[todo], np.char.add(np.char.zfill(seq.astype(str), 3), digit.astype(str)))
        again = []
        for i, c in zip(todo.tolist(), cand.tolist(), strict=False):
            if c in seen:
                again.append(i)
            else:
                seen.add(c)
                out[i] = c
        todo = np.asarray(again, dtype=np.int64)
        attempt += 1
    return out


def generate_population(streams: Streams, n: int, years: np.ndarray, *, birth_years: tuple[int, int], male_share: float,
                        mortality: float, emigration: float, immigration: float, move: float,
                        municipalities: tuple[int, ...] = MUNICIPALITIES, offset: int = 0,
                        kom_probs: np.ndarray | None = None, taken: set | None = None) -> Population:
    """Draw ``n`` persons (indices ``offset …``) with births, immigration, deaths/emigration and moves.

    Birth dates are uniform over ``birth_years`` (inclusive); a person born inside the period enters BEF in
    the birth year; otherwise a share ``immigration`` enters in a uniformly drawn later year. Each resident
    year after entry ends with death (``mortality``) or emigration (``emigration``) with the given yearly
    probabilities (the exit year is the first year absent from BEF).
    """
    idx = np.arange(offset, offset + n)
    n_years = len(years)
    lo, hi = birth_years
    span_days = (dt.date(hi, 12, 31) - dt.date(lo, 1, 1)).days + 1
    birth = np.datetime64(dt.date(lo, 1, 1), "D") + np.floor(streams.uniform("birth", idx) * span_days).astype(np.int64)
    sex = np.where(streams.uniform("sex", idx) < male_share, 1, 2).astype(np.int8)
    by = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    entry = np.clip(by - int(years[0]), 0, None)
    immigrant = (entry == 0) & (streams.uniform("immigrant", idx) < immigration) & (n_years > 1)
    entry = np.where(immigrant, 1 + np.floor(streams.uniform("immigrant-year", idx) * max(n_years - 1, 1)).astype(np.int64),
                     entry)
    j = np.arange(n_years)[None, :]
    u_exit = streams.uniform("exit", idx[:, None], j)
    dies = (u_exit < mortality) & (j > entry[:, None])
    emigrates = (u_exit >= mortality) & (u_exit < mortality + emigration) & (j > entry[:, None])
    leaves = dies | emigrates
    exit_idx = np.where(leaves.any(axis=1), leaves.argmax(axis=1), NEVER)
    exit_idx = np.where(entry >= n_years, n_years, exit_idx)  # born after the period: never resident
    kind = np.where(exit_idx < n_years, np.where(dies[np.arange(n), np.minimum(exit_idx, n_years - 1)], 1, 2), 0).astype(np.int8)
    exit_year = np.where(exit_idx < n_years, years[np.minimum(exit_idx, n_years - 1)], 1970)
    exit_date = np.where(exit_idx < n_years, exit_day(exit_year, streams.uniform("exit-day", idx)), np.datetime64("NaT"))
    probs = np.full(len(municipalities), 1.0 / len(municipalities)) if kom_probs is None else np.asarray(kom_probs, float)
    cum = np.cumsum(probs / probs.sum())
    koms = np.asarray(municipalities, dtype=np.int16)
    kom = np.empty((n, n_years), dtype=np.int16)
    kom[:, 0] = koms[np.minimum(np.searchsorted(cum, streams.uniform("kom", idx)), len(koms) - 1)]
    for jj in range(1, n_years):
        moves = streams.uniform("move", idx, jj) < move
        new = koms[np.minimum(np.searchsorted(cum, streams.uniform("move-to", idx, jj)), len(koms) - 1)]
        kom[:, jj] = np.where(moves, new, kom[:, jj - 1])
    pnr = make_pnrs_for(streams, birth, sex, offset, taken)
    return Population(np.asarray(years), pnr, sex, birth, entry.astype(np.int16), exit_idx.astype(np.int16),
                      exit_date.astype("datetime64[D]"), kind, kom)


def concat(a: Population, b: Population) -> Population:
    """Two populations of the same years as one (persons of ``a`` first)."""
    return Population(a.years, np.concatenate([a.pnr, b.pnr]), np.concatenate([a.sex, b.sex]),
                      np.concatenate([a.birth, b.birth]), np.concatenate([a.entry, b.entry]),
                      np.concatenate([a.exit, b.exit]), np.concatenate([a.exit_date, b.exit_date]),
                      np.concatenate([a.exit_kind, b.exit_kind]), np.concatenate([a.kom, b.kom]))
