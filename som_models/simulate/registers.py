"""Register record generators of the synthetic worlds (vectorised numpy; draws from :mod:`rand` streams).

Every generator takes ``idx`` — the global person indices of the persons to generate (all persons for the
observed delivery, or the participants only for their counterfactual path) — and intensity arrays of shape
``(len(idx), n_years)``. Draws are keyed by (stream, person index, year, slot), so calling a generator twice
for the same person with a different intensity gives the *same* events wherever the intensities agree, and
monotonically more (or fewer) events where they differ. Each generator returns the register records it
would deliver (``rows`` = position in ``idx``) and the panel outcomes those records imply, computed with
:mod:`spells` (the generator's own counting, independent of the ingestion code).

Code values are illustrative and chosen inside the code groups of ``assets/registers`` (DREAM benefit codes
in ``dream_codes.csv``; KRAF sanction codes: 100–899 conviction, 900–999 acquittal or withdrawn; BUA PGF:
100–199 placement, 200–299 and 400–455 preventive; LPR C_PATTYPE 0 inpatient, 1 part-day, 2 outpatient,
3 emergency). None of them is a verified DST code meaning.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from som_models.simulate.calendar import iso_week1_monday, iso_weeks_in_year, week_columns
from som_models.simulate.population import date_in_year, days_in_year
from som_models.simulate.rand import Streams, choice, geometric_days, poisson
from som_models.simulate.spells import count_per_year, expand, union_days_per_year

D = "datetime64[D]"


@dataclass(frozen=True, eq=False)
class Generated:
    """Records (column name → array, ``rows`` = position in ``idx``) and outcomes (name → persons × years)."""

    records: dict[str, np.ndarray]
    outcomes: dict[str, np.ndarray]
    extra: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def _dt64(d: dt.date) -> np.datetime64:
    return np.datetime64(d, "D")


def _open_end(end: np.ndarray, period_end: dt.date) -> np.ndarray:
    """Ends beyond the period are not yet known at extraction: they are delivered open (NaT)."""
    return np.where(end > _dt64(period_end) + 1, np.datetime64("NaT"), end).astype(D)


def _effective_end(end: np.ndarray, period_end: dt.date) -> np.ndarray:
    return np.where(np.isnat(end), _dt64(period_end) + 1, end).astype(D)


# --------------------------------------------------------------------------- crime: KRAF decisions, KRIN spells

CONVICTION_CODES = (100, 110, 300, 500)   # unconditional prison, conditional prison, fine, withdrawal with guilt
CONVICTION_PROBS = (0.25, 0.30, 0.35, 0.10)
ACQUITTAL_CODES = (900, 950)              # acquittal, charge dropped
UNCONDITIONAL_PRISON = 100


def crime(streams: Streams, idx: np.ndarray, years: np.ndarray, lam: np.ndarray, *, period_end: dt.date,
          acquittal_share: float = 0.15, prison_share: float = 0.25, sentence_mean: float = 60.0) -> Generated:
    """Court decisions (KRAF) per person-year ~ Poisson(lam); unconditional prison sentences become KRIN spells.

    A decision is an acquittal/withdrawal (codes 900/950) with probability ``acquittal_share``, else a
    conviction whose sanction is unconditional prison (code 100) with probability ``prison_share`` and a
    conditional sentence, fine or guilty withdrawal otherwise. Prison starts 0–44 days after the decision and
    lasts the sentence (7 + geometric, mean ``sentence_mean`` days); overlapping sentences are possible and
    counted once. Outcomes: ``convictions`` (decisions with a conviction code, by year of the decision date)
    and ``prison_days`` (days in KRIN spells).
    """
    n = len(idx)
    yy = np.broadcast_to(years[None, :], (n, len(years)))
    counts = poisson(streams.uniform("kraf-n", idx[:, None], yy), lam)
    r, c, k = expand(counts)
    gi, yr = idx[r], years[c]
    date = date_in_year(yr, streams.uniform("kraf-day", gi, yr, k))
    acquitted = streams.uniform("kraf-kind", gi, yr, k) < acquittal_share
    u_s = streams.uniform("kraf-sanction", gi, yr, k)
    p_other = (1 - prison_share) / (1 - CONVICTION_PROBS[0])
    probs = (prison_share, *(p * p_other for p in CONVICTION_PROBS[1:]))
    sanction = np.where(acquitted, choice(u_s, ACQUITTAL_CODES, (0.6, 0.4)), choice(u_s, CONVICTION_CODES, probs))
    prison = sanction == UNCONDITIONAL_PRISON
    sentence = np.where(prison, 6 + geometric_days(streams.uniform("kraf-sentence", gi, yr, k), sentence_mean - 6), 0)
    journr = (yr.astype(np.int64) * 10**9 + gi.astype(np.int64)) * 100 + k  # unique per decision; text in the file
    kraf = {"rows": r, "JOURNR": journr, "AFG_ADTO": date, "AFG_AFGTYP3": sanction.astype(np.int64),
            "AFG_UBSTRFLG": sentence.astype(np.int64)}
    convictions = count_per_year(r[~acquitted], date[~acquitted], years, n)
    # Prison spells from unconditional sentences.
    pr = np.flatnonzero(prison)
    start = date[pr] + np.floor(streams.uniform("krin-delay", gi[pr], yr[pr], k[pr]) * 45).astype(np.int64)
    end = start + sentence[pr]
    keep = start <= _dt64(period_end)
    start, end, rows = start[keep], end[keep], r[pr][keep]
    end = _open_end(end, period_end)
    krin = {"rows": rows, "IND_FGSLDTO": start.astype(D), "IND_LOESDTO": end}
    prison_days = union_days_per_year(rows, start, _effective_end(end, period_end), years, n)
    return Generated({"rows": r}, {"convictions": convictions, "prison_days": prison_days}, {"kraf": kraf, "krin": krin})


# --------------------------------------------------------------------------- hospital contacts: LPR (adm)

def hospital(streams: Streams, idx: np.ndarray, years: np.ndarray, *, somatic: np.ndarray, psychiatric: np.ndarray,
             outpatient: np.ndarray, emergency: np.ndarray, partday: np.ndarray, period_end: dt.date,
             somatic_los: float = 4.0, psychiatric_los: float = 18.0, duplicate_share: float = 0.04) -> Generated:
    """LPR contacts per person-year, each kind ~ Poisson(intensity), admission dates uniform in the year.

    Inpatient stays (C_PATTYPE 0) last a geometric number of days (means ``somatic_los`` and
    ``psychiatric_los``; psychiatric ones carry C_PSYK = 1) and may cross New Year or still be open at the
    end of the period (D_UDDTO empty). A share ``duplicate_share`` of inpatient stays is delivered twice, the
    copy lying inside the original (a transfer registered as a second contact): union counting must ignore
    it. Outpatient contacts (2) are courses of 0–89 days counted once in the year of D_INDDTO, emergency
    contacts (3) last one day, part-day contacts (1) count in no outcome.
    """
    n = len(idx)
    yy = np.broadcast_to(years[None, :], (n, len(years)))
    parts = []
    kinds = (("som", somatic, 0, 0), ("psy", psychiatric, 0, 1), ("out", outpatient, 2, 0), ("emg", emergency, 3, 0),
             ("day", partday, 1, 0))
    for name, lam, pat_code, psyk_code in kinds:
        cnt = poisson(streams.uniform(f"lpr-{name}-n", idx[:, None], yy), lam)
        r, c, k = expand(cnt)
        gi, yr = idx[r], years[c]
        start = date_in_year(yr, streams.uniform(f"lpr-{name}-day", gi, yr, k))
        u_len = streams.uniform(f"lpr-{name}-len", gi, yr, k)
        if pat_code == 0:
            length = geometric_days(u_len, somatic_los if psyk_code == 0 else psychiatric_los)
        elif pat_code == 2:
            length = np.floor(u_len * 90).astype(np.int64)
        else:
            length = np.where(u_len < 0.7, 0, 1)
        psyk_col = np.full(len(r), psyk_code, dtype=np.int64)
        if pat_code == 2:
            psyk_col = (streams.uniform("lpr-out-psyk", gi, yr, k) < 0.2).astype(np.int64)
        parts.append((r, start, start + length, np.full(len(r), pat_code, np.int64), psyk_col, gi, yr, k, name))
    # Contained duplicates of inpatient stays.
    dups = []
    for r, start, end, pattype, psyk, gi, yr, k, name in parts:
        if name not in ("som", "psy"):
            continue
        sel = (streams.uniform(f"lpr-{name}-dup", gi, yr, k) < duplicate_share) & (end - start >= 2)
        a = np.floor(streams.uniform(f"lpr-{name}-dup-a", gi, yr, k)[sel]
                     * ((end - start)[sel].astype(np.int64) // 2)).astype(np.int64)
        dups.append((r[sel], start[sel] + a, end[sel], pattype[sel], psyk[sel], gi[sel], yr[sel], k[sel] + 1000, name + "-dup"))
    parts += dups
    r = np.concatenate([p[0] for p in parts])
    start = np.concatenate([p[1] for p in parts]).astype(D)
    end = np.concatenate([p[2] for p in parts]).astype(D)
    pattype = np.concatenate([p[3] for p in parts])
    psyk = np.concatenate([p[4] for p in parts])
    tag = np.concatenate([np.full(len(p[0]), i) for i, p in enumerate(parts)])
    k = np.concatenate([p[7] for p in parts])
    gen_year = np.concatenate([p[6] for p in parts]).astype(np.int64)
    gi = idx[r]
    keep = start <= _dt64(period_end)
    r, start, end, pattype, psyk, tag, k, gi, gen_year = (a[keep] for a in (r, start, end, pattype, psyk, tag, k, gi, gen_year))
    end = _open_end(end, period_end)
    eff = _effective_end(end, period_end)
    inpatient = pattype == 0
    som = inpatient & (psyk != 1)
    psy = inpatient & (psyk == 1)
    outcomes = {
        "somatic_bed_days": union_days_per_year(r[som], start[som], eff[som], years, n),
        "psychiatric_bed_days": union_days_per_year(r[psy], start[psy], eff[psy], years, n),
        "outpatient_visits": count_per_year(r[pattype == 2], start[pattype == 2], years, n),
        "emergency_visits": count_per_year(r[pattype == 3], start[pattype == 3], years, n),
    }
    # Unique per contact (person, year the contact was drawn in, kind, slot); delivered as text.
    recnum = ((gi.astype(np.int64) * 10000 + gen_year) * 16 + tag) * 2048 + k
    lpr = {"rows": r, "RECNUM": recnum, "D_INDDTO": start, "D_UDDTO": end, "C_PATTYPE": pattype,
           "C_PSYK": psyk}
    return Generated({"rows": r}, outcomes, {"lpr": lpr})


# --------------------------------------------------------------------------- §110 shelter stays

def stays_from_nights(streams: Streams, idx: np.ndarray, years: np.ndarray, nights: np.ndarray, *, period_end: dt.date,
                      duplicate_share: float = 0.03) -> dict[str, np.ndarray]:
    """Split each person-year's nights into 1–3 stays inside the calendar year, then join stays across New Year.

    For a year with ``n`` nights among ``D`` days: ``k = min(n, 1 + ⌊3u⌋)`` stays with lengths
    ``1 + ⌊(n − k)·w_s / Σw⌋`` (remainder to the last stay) and gaps ``⌊(D − n)·v_s / Σv⌋`` (remainder to the
    first gap) — so every night lies in its own year and the year's total is exactly ``n``. When a year ends
    with no gap (half of the years ending with a stay) and the next starts with a stay, the two touching
    stays become one stay crossing New Year. A stay in the first year that starts on 1 January may begin
    earlier (before the period). Stays reaching the end of the period are delivered open. A share
    ``duplicate_share`` of stays is also delivered as an overlapping copy (counted once). Nights per year are
    unchanged by all of this, which is what the panel must reproduce.
    """
    r, c = np.nonzero(nights)
    if len(r) == 0:
        return {"rows": np.zeros(0, np.int64), "START_DATO": np.zeros(0, D), "SLUT_DATO": np.zeros(0, D)}
    gi, yr = idx[r], years[c]
    n = nights[r, c].astype(np.int64)
    dy = days_in_year(yr)
    k = np.minimum(n, 1 + np.floor(streams.uniform("stay-k", gi, yr) * 3).astype(np.int64))
    slots = np.arange(3)[None, :]
    active = slots < k[:, None]
    w = np.where(active, streams.uniform("stay-w", gi[:, None], yr[:, None], slots), 0.0)
    lengths = np.where(active, 1 + np.floor((n - k)[:, None] * w / w.sum(axis=1, keepdims=True)).astype(np.int64), 0)
    last = k - 1
    lengths[np.arange(len(n)), last] += n - lengths.sum(axis=1)
    # Gaps before each stay (slots 0..2) and after the last one.
    gslots = np.arange(4)[None, :]
    gactive = gslots <= k[:, None]
    v = np.where(gactive, streams.uniform("stay-v", gi[:, None], yr[:, None], gslots), 0.0)
    ends_flush = streams.uniform("stay-flush-end", gi, yr) < 0.5
    starts_flush = streams.uniform("stay-flush-start", gi, yr) < 0.5
    v[np.arange(len(n)), k] = np.where(ends_flush, 0.0, v[np.arange(len(n)), k])
    v[:, 0] = np.where(starts_flush & (k > 0), 0.0, v[:, 0])
    vsum = v.sum(axis=1, keepdims=True)
    free = (dy - n)[:, None]
    gaps = np.where(vsum > 0, np.floor(free * v / np.where(vsum > 0, vsum, 1)).astype(np.int64), 0)
    rest = (dy - n) - gaps.sum(axis=1)
    target = np.where(v[:, 0] > 0, 0, np.argmax(v > 0, axis=1))
    has_gap = (v > 0).any(axis=1)
    gaps[np.arange(len(n))[has_gap], target[has_gap]] += rest[has_gap]
    jan1 = (yr - 1970).astype("datetime64[Y]").astype(D)
    offsets = np.cumsum(gaps[:, :3] + np.concatenate([np.zeros((len(n), 1), np.int64), lengths[:, :2]], axis=1), axis=1)
    s_all = jan1[:, None] + offsets
    e_all = s_all + lengths
    rows = np.repeat(r[:, None], 3, axis=1)[active]
    start = s_all[active].astype(D)
    end = e_all[active].astype(D)
    # Join touching stays (end == next start) of a person.
    order = np.lexsort((start, rows))
    rows, start, end = rows[order], start[order], end[order]
    touch = np.concatenate(([False], (rows[1:] == rows[:-1]) & (start[1:] == end[:-1])))
    block = np.cumsum(~touch) - 1
    b_rows = rows[~touch]
    b_start = start[~touch]
    b_end_days = np.full(len(b_rows), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(b_end_days, block, end.astype(np.int64))
    b_end = b_end_days.astype(D)
    first_year = _dt64(dt.date(int(years[0]), 1, 1))
    early = (b_start == first_year) & (streams.uniform("stay-early", idx[b_rows], b_end.astype(np.int64)) < 0.5)
    early_days = np.floor(streams.uniform("stay-early-days", idx[b_rows], b_end.astype(np.int64)) * 200).astype(np.int64)
    b_start = np.where(early, b_start - 1 - early_days, b_start).astype(D)
    # Overlapping copies (e.g. a transfer between shelters registered twice).
    dup = ((streams.uniform("stay-dup", idx[b_rows], b_start.astype(np.int64)) < duplicate_share)
           & (b_end - b_start >= np.timedelta64(2, "D")))
    shift = np.floor(streams.uniform("stay-dup-a", idx[b_rows], b_start.astype(np.int64))
                     * ((b_end - b_start).astype(np.int64) // 2)).astype(np.int64)
    rows_all = np.concatenate([b_rows, b_rows[dup]])
    start_all = np.concatenate([b_start, (b_start + shift)[dup]]).astype(D)
    end_all = np.concatenate([b_end, b_end[dup]]).astype(D)
    end_all = np.where(end_all >= _dt64(period_end) + 1, np.datetime64("NaT"), end_all).astype(D)
    return {"rows": rows_all, "START_DATO": start_all, "SLUT_DATO": end_all}


# --------------------------------------------------------------------------- DREAM weekly benefit codes

@dataclass(frozen=True)
class Benefit:
    """A DREAM benefit group as the generator uses it (codes inside the group's range in dream_codes.csv)."""

    name: str
    codes: tuple[int, ...]
    code_probs: tuple[float, ...]
    priority: int


#: Priority overwrite (higher wins in a week with two benefits): an illustrative order in the spirit of
#: DREAM's rules (e.g. sickness benefit over activation, unemployment insurance over cash benefit).
BENEFITS = {
    "su": Benefit("su", (651, 652), (0.8, 0.2), 1),
    "efterloen": Benefit("efterloen", (611, 621), (0.9, 0.1), 2),
    "kontanthjaelp": Benefit("kontanthjaelp", (701, 730), (0.8, 0.2), 3),
    "ledighedsydelse": Benefit("ledighedsydelse", (521,), (1.0,), 4),
    "dagpenge": Benefit("dagpenge", (111, 211), (0.7, 0.3), 5),
    "sygedagpenge": Benefit("sygedagpenge", (890, 899), (0.9, 0.1), 6),
    "barselsdagpenge": Benefit("barselsdagpenge", (881,), (1.0,), 7),
    "foertidspension": Benefit("foertidspension", (783,), (1.0,), 8),
}
EXIT_CODES = {1: 998, 2: 997}  # death, emigration (censoring codes 997–999; exact meanings unverified)


@dataclass(frozen=True, eq=False)
class Dream:
    """DREAM as a matrix: ``codes[r, w]`` (0 = blank) for persons ``idx[rows]`` and the ``y_YYWW`` columns."""

    rows: np.ndarray
    codes: np.ndarray
    columns: tuple[str, ...]


def iso_layout(iso_years: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.datetime64]:
    """Weeks per ISO year, column offset of each ISO year, Monday of the first column."""
    weeks = np.array([iso_weeks_in_year(int(y)) for y in iso_years])
    offsets = np.concatenate([[0], np.cumsum(weeks)[:-1]])
    return weeks, offsets, _dt64(iso_week1_monday(int(iso_years[0])))


def dream(streams: Streams, idx: np.ndarray, iso_years: np.ndarray, spells: dict[str, np.ndarray], *,
          exit_date: np.ndarray | None = None, exit_kind: np.ndarray | None = None,
          counted_years: np.ndarray) -> tuple[Dream, dict]:
    """Weekly codes from per-year spell lengths, with priority overwrite, and the week counts they imply.

    ``spells[name]`` is a ``(len(idx), len(iso_years))`` array of weeks on benefit ``name`` in each ISO year:
    one contiguous spell placed at a uniformly drawn start inside the ISO year (a length equal to the
    year's weeks fills it). Benefits are written in increasing priority, so a higher-priority benefit
    overwrites a lower one in a shared week (the lower one loses those weeks). Persons in DREAM who die or
    emigrate carry an exit code (998/997) from the week of the event. Persons with no code are left out.

    Returns the matrix and, for ``counted_years``, outcome arrays ``<benefit>_weeks``, ``exit_weeks`` and
    ``self_support_weeks`` (blank weeks), each ``(len(idx), len(counted_years))``.
    """
    n = len(idx)
    weeks, offsets, monday = iso_layout(iso_years)
    total = int(weeks.sum())
    codes = np.zeros((n, total), dtype=np.int16)
    order = sorted(spells, key=lambda b: BENEFITS[b].priority)
    w_idx = np.arange(53)[None, :]
    for name in order:
        ben = BENEFITS[name]
        length = spells[name]
        for j, y in enumerate(iso_years):
            L = length[:, j].astype(np.int64)
            on = np.flatnonzero(L > 0)
            if not len(on):
                continue
            W = int(weeks[j])
            L = np.minimum(L[on], W)
            s = np.floor(streams.uniform(f"dream-{name}-start", idx[on], int(y)) * (W - L + 1)).astype(np.int64)
            code = choice(streams.uniform(f"dream-{name}-code", idx[on], int(y)), ben.codes, ben.code_probs).astype(np.int16)
            mask = (w_idx[:, :W] >= s[:, None]) & (w_idx[:, :W] < (s + L)[:, None])
            block = codes[on, offsets[j]:offsets[j] + W]
            codes[on, offsets[j]:offsets[j] + W] = np.where(mask, code[:, None], block)
    in_dream = (codes != 0).any(axis=1)
    if exit_date is not None:
        if exit_kind is None:
            raise ValueError("dream: exit_date is given but exit_kind is None (death/emigration per person)")
        ex = in_dream & ~np.isnat(exit_date)
        col = ((exit_date[ex] - monday).astype(np.int64) // 7)
        ok = (col >= 0) & (col < total)
        rows_ex = np.flatnonzero(ex)[ok]
        col = col[ok]
        code = np.vectorize(EXIT_CODES.get)(exit_kind[rows_ex]).astype(np.int16) if len(rows_ex) else np.zeros(0, np.int16)
        after = np.arange(total)[None, :] >= col[:, None]
        codes[rows_ex] = np.where(after, code[:, None], codes[rows_ex])
    rows = np.flatnonzero(in_dream)
    # Week counts for the counted (panel) years.
    outcomes = {f"{b}_weeks": np.zeros((n, len(counted_years)), dtype=np.int32) for b in BENEFITS}
    outcomes["exit_weeks"] = np.zeros((n, len(counted_years)), dtype=np.int32)
    outcomes["self_support_weeks"] = np.zeros((n, len(counted_years)), dtype=np.int32)
    code_to_name = {c: f"{b.name}_weeks" for b in BENEFITS.values() for c in b.codes}
    code_to_name.update({c: "exit_weeks" for c in EXIT_CODES.values()})
    for jj, y in enumerate(counted_years):
        j = int(np.flatnonzero(iso_years == y)[0])
        block = codes[:, offsets[j]:offsets[j] + weeks[j]]
        outcomes["self_support_weeks"][:, jj] = (block == 0).sum(axis=1)
        for week_code, name in code_to_name.items():
            outcomes[name][:, jj] += (block == week_code).sum(axis=1)
    return Dream(rows, codes[rows], tuple(week_columns(iso_years))), outcomes


# --------------------------------------------------------------------------- IND: wage income

def income(streams: Streams, idx: np.ndarray, years: np.ndarray, *, employment: np.ndarray, wage: np.ndarray,
           in_register: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """LOENMV_13 per person-year: ``wage × (½ + u)`` kroner and øre when employed (probability ``employment``), else 0.

    ``in_register`` marks the person-years delivered in IND (a resident may be missing from IND: the panel
    then has 0). Returns records (``rows``, ``year``, ``LOENMV_13``) and the earnings array (0 when absent).
    """
    n = len(idx)
    yy = np.broadcast_to(years[None, :], (n, len(years)))
    employed = streams.uniform("ind-emp", idx[:, None], yy) < employment
    amount = np.round(wage[:, None] * (0.5 + streams.uniform("ind-amount", idx[:, None], yy)), 2)
    earnings = np.where(employed & in_register, amount, 0.0)
    r, c = np.nonzero(in_register)
    return {"rows": r, "year": years[c], "LOENMV_13": earnings[r, c]}, earnings


# --------------------------------------------------------------------------- BUA: placements and preventive measures

PLACEMENT_CODES = (111, 121, 131)            # e.g. foster family, residential institution, socio-educational home
PREVENTIVE_CODES = (211, 232, 252, 411, 430)  # person-targeted 200–299, family-targeted 400–455


def child_measures(streams: Streams, idx: np.ndarray, years: np.ndarray, *, placement: np.ndarray,
                   placement_mean_days: np.ndarray, preventive: np.ndarray, birth: np.ndarray, period_end: dt.date,
                   ongoing_at_start: np.ndarray | None = None) -> Generated:
    """BUA measures: placements (PGF 1xx) and preventive measures (PGF 2xx/4xx) as dated spells.

    Per person-year a placement starts with probability ``placement`` (duration geometric with mean
    ``placement_mean_days``, ending at the latest at the 18th birthday) and preventive measures start
    ~ Poisson(``preventive``) (30–300 days; they may overlap and are then counted once). A third of the
    placements change placement type half-way (two consecutive records). ``ongoing_at_start`` marks
    children already placed before the period (SAG_VFRA before period_start). Open measures are delivered
    with SAG_VTIL = 9999-12-31 (as in DST's BUA).
    """
    n = len(idx)
    yy = np.broadcast_to(years[None, :], (n, len(years)))
    recs = []
    starts = streams.uniform("bua-place", idx[:, None], yy) < placement
    r, c = np.nonzero(starts)
    gi, yr = idx[r], years[c]
    s = date_in_year(yr, streams.uniform("bua-place-day", gi, yr))
    dur = geometric_days(streams.uniform("bua-place-len", gi, yr), placement_mean_days[r, c])
    if ongoing_at_start is not None:
        r0 = np.flatnonzero(ongoing_at_start)
        g0 = idx[r0]
        s0 = _dt64(dt.date(int(years[0]), 1, 1)) - 1 - np.floor(streams.uniform("bua-old", g0) * 1500).astype(np.int64)
        d0 = (geometric_days(streams.uniform("bua-old-len", g0), placement_mean_days[r0, 0])
              + (_dt64(dt.date(int(years[0]), 1, 1)) - s0).astype(np.int64))
        r, s, dur = np.concatenate([r, r0]), np.concatenate([s, s0]), np.concatenate([dur, d0])
        gi = idx[r]
    e = s + dur
    eighteen = birth[r].astype(D) + 6574  # ≈ the 18th birthday (18 × 365.25 days): placements end at majority
    e = np.minimum(e, eighteen)
    keep = (e > s) & (s <= _dt64(period_end))
    r, s, e, gi = r[keep], s[keep], e[keep], gi[keep]
    split = streams.uniform("bua-split", gi, s.astype(np.int64)) < 1 / 3
    mid = s + (e - s) // 2
    code1 = choice(streams.uniform("bua-code1", gi, s.astype(np.int64)), PLACEMENT_CODES, (0.6, 0.3, 0.1))
    code2 = choice(streams.uniform("bua-code2", gi, s.astype(np.int64)), PLACEMENT_CODES, (0.2, 0.6, 0.2))
    pr = np.concatenate([r[~split], r[split], r[split]])
    ps = np.concatenate([s[~split], s[split], mid[split]]).astype(D)
    pe = np.concatenate([e[~split], mid[split], e[split]]).astype(D)
    pc = np.concatenate([code1[~split], code1[split], code2[split]])
    keep = (pe > ps) & (ps <= _dt64(period_end))
    recs.append((pr[keep], ps[keep], pe[keep], pc[keep]))
    place_days = union_days_per_year(pr[keep], ps[keep], _effective_end(_open_end(pe[keep], period_end), period_end), years, n)
    cnt = poisson(streams.uniform("bua-prev-n", idx[:, None], yy), preventive)
    r, c, k = expand(cnt)
    gi, yr = idx[r], years[c]
    s = date_in_year(yr, streams.uniform("bua-prev-day", gi, yr, k))
    e = s + 30 + np.floor(streams.uniform("bua-prev-len", gi, yr, k) * 270).astype(np.int64)
    code = choice(streams.uniform("bua-prev-code", gi, yr, k), PREVENTIVE_CODES, (0.3, 0.2, 0.2, 0.2, 0.1))
    keep = s <= _dt64(period_end)
    recs.append((r[keep], s[keep].astype(D), e[keep].astype(D), code[keep]))
    prev_days = union_days_per_year(r[keep], s[keep], _effective_end(_open_end(e[keep].astype(D), period_end), period_end),
                                    years, n)
    rows = np.concatenate([x[0] for x in recs])
    start = np.concatenate([x[1] for x in recs]).astype(D)
    end = _open_end(np.concatenate([x[2] for x in recs]).astype(D), period_end)
    end = np.where(np.isnat(end), np.datetime64("9999-12-31"), end).astype(D)
    pgf = np.concatenate([x[3] for x in recs]).astype(np.int64)
    bua = {"rows": rows, "PGF": pgf, "SAG_VFRA": start, "SAG_VTIL": end}
    return Generated({"rows": rows}, {"placement_days": place_days, "preventive_days": prev_days}, {"bua": bua})
