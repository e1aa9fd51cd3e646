"""The generic synthetic world: a target group inside a larger population, an intervention, planted effects.

Model (one person-year at a time, persons independent given the world's parameters):

* **Population** (:mod:`population`): births, immigration, deaths and emigration (absence from BEF),
  moves between municipalities.
* **Need**: each person has a frailty ``f ~ Gamma(k, mean 1)`` (shape ``Profile.heterogeneity``) that
  multiplies every "need" intensity (crime, psychiatric care, shelter use, cash benefit, child measures);
  intensities also follow age profiles (crime peaks around 19: ``exp(−((age − 19)/6)²)`` from age 12; child
  measures stop at 18; benefits by age band). The target group has higher baseline intensities than the
  background population it is drawn from (``target_share`` of all persons).
* **Intervention**: ``staggered`` — the target-group persons living in a roll-out municipality in its
  roll-out year, of eligible age, take part with probability ``participation``; or ``randomised`` —
  eligible target-group persons enter a trial in one of the ``randomisation`` years with probability
  ``participation`` and are assigned ARM T with probability ``arm_share`` (else C; C persons are in the
  intervention register with their randomisation date but receive nothing).
* **Planted effects (SØM-style)**: a participant in ARM T *succeeds* (responds) with probability
  ``success_rate``. Each :class:`Effect` multiplies one intensity channel in event time ``e = year − start``
  (``e ≥ 0``) by ``1 + relative · persistence^e`` for responders (or for all participants); several effects
  on one channel multiply. Persistence < 1 is decay.
* **Potential outcomes**: outcomes are functions of counter-based draws (:mod:`rand`), so each participant's
  untreated path Y(0) is generated from the very same draws with the untreated intensities. The truth is the
  sample ATT per event time: mean over ARM T participants resident in year ``start + e`` of ``Y(1) − Y(0)``,
  for each planted outcome and for the success indicator (``1{outcome = 0}`` or ``1{outcome > 0}``), whose
  ATT is the net success rate as SØM defines it.

Persons are generated in blocks (``BLOCK`` persons at a time) so memory stays bounded at population scale.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from som_models.simulate import registers as reg
from som_models.simulate.calendar import iso_weeks_in_year
from som_models.simulate.delivery import SimulatedDelivery, WideCodes
from som_models.simulate.population import MUNICIPALITIES, Population, concat, date_in_year, generate_population
from som_models.simulate.rand import Streams, gamma

BLOCK = 50_000

#: Outcome columns of the canonical panel that the generator records for every resident person-year.
BENEFIT_NAMES = tuple(reg.BENEFITS) + ("exit",)
OUTCOMES = ("shelter_nights", "somatic_bed_days", "psychiatric_bed_days", "outpatient_visits", "emergency_visits",
            "prison_days", "convictions", "placement_days", "preventive_days", "earnings_dkk",
            *(f"{b}_weeks" for b in BENEFIT_NAMES), "self_support_weeks")

#: Age bands (inclusive) in which a DREAM benefit can be received.
BENEFIT_AGES = {"su": (18, 29), "efterloen": (60, 66), "kontanthjaelp": (18, 64), "ledighedsydelse": (25, 64),
                "dagpenge": (20, 64), "sygedagpenge": (18, 64), "barselsdagpenge": (22, 42), "foertidspension": (30, 64)}
#: Benefits whose intensity is scaled by the person's frailty.
NEED_BENEFITS = ("kontanthjaelp", "sygedagpenge", "foertidspension", "ledighedsydelse")
CHANNELS = ("crime", "somatic", "psychiatric", "outpatient", "emergency", "shelter", "placement", "placement_duration",
            "preventive", "employment", *reg.BENEFITS)


@dataclass(frozen=True)
class Effect:
    """Multiply intensity ``channel`` by ``1 + relative · persistence^e`` in event time e ≥ 0."""

    channel: str
    relative: float
    persistence: float = 1.0
    who: str = "responders"  # or "participants"

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"unknown effect channel {self.channel!r}; choose from {', '.join(CHANNELS)}")
        if self.who not in ("responders", "participants"):
            raise ValueError(f"Effect.who must be 'responders' or 'participants', got {self.who!r}")


@dataclass(frozen=True)
class Profile:
    """Baseline intensities of a group (per person-year, before frailty and age profiles)."""

    birth_years: tuple[int, int] = (1940, 2010)
    male_share: float = 0.5
    heterogeneity: float = 2.0
    crime: float = 0.02                 # court decisions per year at the age-curve peak
    somatic: float = 0.06               # inpatient somatic admissions per year (× (0.5 + age/50))
    psychiatric: float = 0.01           # psychiatric admissions per year
    outpatient: float = 0.25            # outpatient contacts per year (× (0.5 + age/50))
    emergency: float = 0.08             # emergency contacts per year
    partday: float = 0.02               # part-day contacts per year (no outcome)
    shelter: float = 0.002              # probability of a year with §110 shelter nights
    shelter_nights: float = 60.0        # mean nights in such a year (Gamma, shape 2)
    placement: float = 0.003            # yearly probability that a child (< 18) starts a placement
    placement_days: float = 500.0       # mean placement length (days)
    placed_at_start: float = 0.004      # share of children already placed when the period starts
    preventive: float = 0.03            # preventive measures started per child-year
    benefits: tuple[tuple[str, float, float], ...] = (
        ("su", 0.35, 40.0), ("kontanthjaelp", 0.05, 20.0), ("dagpenge", 0.06, 14.0), ("sygedagpenge", 0.06, 8.0),
        ("barselsdagpenge", 0.05, 30.0), ("ledighedsydelse", 0.01, 20.0), ("efterloen", 0.25, 52.0),
        ("foertidspension", 0.004, 0.0))  # (benefit, yearly probability of a spell, mean weeks); FP: onset hazard
    employment: float = 0.75            # probability of wage income in a working-age year
    wage: float = 330_000.0             # mean yearly wage (DKK)


@dataclass(frozen=True)
class WorldSpec:
    scenario: str
    intervention: str
    description: str
    first_year: int
    last_year: int
    target: Profile
    background: Profile = Profile()
    target_share: float = 1.0
    design: str = "staggered"
    rollout: tuple[tuple[int, int], ...] = ()
    randomisation: tuple[int, ...] = ()
    participation: float = 0.6
    arm_share: float = 0.5
    eligible_ages: tuple[int, int] = (0, 120)
    course_days: int = 365
    #: a cost file (``costs``: one row per participant, BELOEB kroner and PRISAAR) with Gamma-distributed costs of
    #: this (mean, shape), in price year ``cost_price_year``; None = no cost file
    cost_per_participant: tuple[float, float] | None = None
    cost_price_year: int = 2024
    success_rate: float = 0.5
    effects: tuple[Effect, ...] = ()
    success: tuple[str, str, str] = ("success", "shelter_nights", "zero")  # (name, outcome, rule zero|positive)
    planted: tuple[str, ...] = ()
    mortality: float = 0.008
    emigration: float = 0.006
    immigration: float = 0.05
    move: float = 0.04
    municipalities: tuple[int, ...] = MUNICIPALITIES
    lookback_years: int = 1
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.design not in ("staggered", "randomised"):
            raise ValueError(f"design must be 'staggered' or 'randomised', got {self.design!r}")
        if self.last_year < self.first_year:
            raise ValueError("last_year is before first_year")
        if not 0 < self.target_share <= 1:
            raise ValueError("target_share must be in (0, 1]")
        unknown = [o for o in (*self.planted, self.success[1]) if o not in OUTCOMES]
        if unknown:
            raise ValueError(f"planted outcome(s) {unknown} are not panel outcomes")

    @property
    def years(self) -> np.ndarray:
        return np.arange(self.first_year, self.last_year + 1)

    @property
    def period_end(self) -> dt.date:
        return dt.date(self.last_year, 12, 31)


# --------------------------------------------------------------------------- intensities

def crime_age(age: np.ndarray) -> np.ndarray:
    """Age-crime curve: 0 below 12 (age of criminal responsibility is 15, but charges and decisions on
    younger co-offenders are rare; the curve is illustrative), ``exp(−((age − 19)/6)²)`` from 12."""
    return np.where(age >= 12, np.exp(-(((age - 19) / 6.0) ** 2)), 0.0)


@dataclass(frozen=True, eq=False)
class Block:
    """One block of persons: global indices, group flags and the assignment of the intervention."""

    idx: np.ndarray
    target: np.ndarray
    frailty: np.ndarray
    start: np.ndarray     # start year (0 = never in the intervention register)
    arm: np.ndarray       # "T", "C" or "" (staggered designs: "T" for participants)
    responder: np.ndarray


def _profile_value(block: Block, spec: WorldSpec, name: str) -> np.ndarray:
    return np.where(block.target, getattr(spec.target, name), getattr(spec.background, name))


def _benefit_params(spec: WorldSpec, block: Block, name: str) -> tuple[np.ndarray, np.ndarray]:
    t = {b: (p, m) for b, p, m in spec.target.benefits}.get(name, (0.0, 0.0))
    b = {b: (p, m) for b, p, m in spec.background.benefits}.get(name, (0.0, 0.0))
    return np.where(block.target, t[0], b[0]), np.where(block.target, t[1], b[1])


def multipliers(spec: WorldSpec, block: Block, years: np.ndarray) -> dict[str, np.ndarray]:
    """Treatment multipliers per channel, ``1 + relative·persistence^e`` for treated persons (1 elsewhere)."""
    treated = (block.arm == "T") & (block.start > 0)
    e = years[None, :] - block.start[:, None]
    out: dict[str, np.ndarray] = {}
    for eff in spec.effects:
        who = treated & (block.responder if eff.who == "responders" else True)
        change = np.where(who[:, None] & (e >= 0), eff.relative * eff.persistence ** np.maximum(e, 0), 0.0)
        out[eff.channel] = out.get(eff.channel, np.ones_like(change)) * (1.0 + change)
    return out


def _m(mult: dict[str, np.ndarray] | None, channel: str, j: slice | None = None) -> np.ndarray | float:
    if mult is None or channel not in mult:
        return 1.0
    return mult[channel] if j is None else mult[channel][:, j]


# --------------------------------------------------------------------------- one block of persons

@dataclass(frozen=True)
class Fixed:
    """Outcomes supplied by a scenario module for some persons (rows of the block), overriding the profile model."""

    shelter_nights: np.ndarray | None = None     # persons × years, for rows ``rows``
    weeks: dict[str, np.ndarray] = field(default_factory=dict)  # benefit → persons × ISO years
    rows: np.ndarray | None = None

    def block_rows(self) -> np.ndarray:
        """The block rows the fixed outcomes belong to; an error when outcomes are fixed without ``rows``."""
        if self.rows is None:
            raise ValueError("Fixed: shelter_nights/weeks are given but rows is None (which block rows they belong to)")
        return self.rows


def generate_block(spec: WorldSpec, streams: Streams, pop: Population, block: Block, *, mult: dict | None,
                   fixed: Fixed | None = None, sub: np.ndarray | None = None) -> tuple[dict, dict, reg.Dream]:
    """Records and outcomes of the persons ``block.idx[sub]`` (all when ``sub`` is None) under multipliers ``mult``."""
    years = spec.years
    sel = np.arange(len(block.idx)) if sub is None else sub
    idx = block.idx[sel]
    n = len(idx)
    b = Block(idx, block.target[sel], block.frailty[sel], block.start[sel], block.arm[sel], block.responder[sel])
    mult = None if mult is None else {k: v[sel] for k, v in mult.items()}
    pi = idx  # persons are indexed globally in ``pop``
    jj = np.arange(len(years))[None, :]
    resident = (jj >= pop.entry[pi][:, None]) & (jj < pop.exit[pi][:, None])
    age = years[None, :] - pop.birth_year[pi][:, None]
    f = b.frailty[:, None]
    live = resident.astype(float)
    records: dict[str, dict] = {}
    outcomes: dict[str, np.ndarray] = {}

    lam = _profile_value(b, spec, "crime")[:, None] * f * crime_age(age) * live * _m(mult, "crime")
    g = reg.crime(streams, idx, years, lam, period_end=spec.period_end)
    records.update(g.extra)
    outcomes.update(g.outcomes)

    som_age = 0.5 + np.clip(age, 0, 100) / 50.0
    g = reg.hospital(
        streams, idx, years,
        somatic=_profile_value(b, spec, "somatic")[:, None] * som_age * live * _m(mult, "somatic"),
        psychiatric=_profile_value(b, spec, "psychiatric")[:, None] * f * (age >= 12) * live * _m(mult, "psychiatric"),
        outpatient=_profile_value(b, spec, "outpatient")[:, None] * som_age * live * _m(mult, "outpatient"),
        emergency=_profile_value(b, spec, "emergency")[:, None] * live * _m(mult, "emergency"),
        partday=_profile_value(b, spec, "partday")[:, None] * live, period_end=spec.period_end)
    records.update(g.extra)
    outcomes.update(g.outcomes)

    # Shelter nights: a homeless year with probability p·frailty, nights ~ Gamma(2, mean).
    p_sh = np.clip(_profile_value(b, spec, "shelter")[:, None] * f * _m(mult, "shelter"), 0, 0.95) * (age >= 18) * live
    yy = np.broadcast_to(years[None, :], (n, len(years)))
    homeless = streams.uniform("shelter-year", idx[:, None], yy) < p_sh
    nights = np.clip(np.rint(gamma(streams.uniform("shelter-nights", idx[:, None], yy), 2.0,
                                   _profile_value(b, spec, "shelter_nights")[:, None])), 1, 330).astype(np.int64)
    nights = np.where(homeless, nights, 0)
    if fixed is not None and fixed.shelter_nights is not None:
        fixed_rows = fixed.block_rows()
        rows_fixed = np.searchsorted(sel, fixed_rows) if sub is not None else fixed_rows
        inside = np.isin(fixed_rows, sel)
        nights[rows_fixed[inside]] = fixed.shelter_nights[inside]
    records["shelter"] = reg.stays_from_nights(streams, idx, years, nights, period_end=spec.period_end)
    outcomes["shelter_nights"] = nights.astype(np.int32)

    # Children's measures (BUA).
    child = (age < 18) & (age >= 0) & resident
    place_p = np.clip(_profile_value(b, spec, "placement")[:, None] * f * _m(mult, "placement"), 0, 0.9) * child
    place_len = _profile_value(b, spec, "placement_days")[:, None] * _m(mult, "placement_duration") * np.ones_like(live)
    at_start = (streams.uniform("bua-at-start", idx) < _profile_value(b, spec, "placed_at_start") * b.frailty) & child[:, 0]
    g = reg.child_measures(streams, idx, years, placement=place_p, placement_mean_days=np.maximum(place_len, 2.0),
                           preventive=_profile_value(b, spec, "preventive")[:, None] * f * child * _m(mult, "preventive"),
                           birth=pop.birth[pi], period_end=spec.period_end, ongoing_at_start=at_start)
    records.update(g.extra)
    outcomes.update(g.outcomes)

    # DREAM: spells per ISO year (the lookback years before the period too).
    iso_years = np.arange(spec.first_year - spec.lookback_years, spec.last_year + 1)
    lb = spec.lookback_years
    res_iso = np.concatenate([np.repeat(resident[:, :1], lb, axis=1), resident], axis=1)
    age_iso = np.concatenate([age[:, :1] - np.arange(lb, 0, -1)[None, :], age], axis=1)
    mult_iso = None if mult is None else {k: np.concatenate([np.ones((n, lb)), v], axis=1) for k, v in mult.items()}
    weeks_iso = np.array([iso_weeks_in_year(int(y)) for y in iso_years])[None, :]
    spells: dict[str, np.ndarray] = {}
    yy_iso = np.broadcast_to(iso_years[None, :], (n, len(iso_years)))
    for name in reg.BENEFITS:
        p, mean_w = _benefit_params(spec, b, name)
        lo, hi = BENEFIT_AGES[name]
        ok = res_iso & (age_iso >= lo) & (age_iso <= hi)
        if name == "barselsdagpenge":
            ok &= (pop.sex[pi] == 2)[:, None] | (streams.uniform("barsel-father", idx)[:, None] < 0.3)
        scale = f if name in NEED_BENEFITS else 1.0
        if name == "foertidspension":
            # Absorbing: onset in the first year u < hazard, then every resident week until exit.
            hazard = np.clip(p[:, None] * scale * _m(mult_iso, name), 0, 1) * ok
            onset = streams.uniform("dream-fp-onset", idx[:, None], yy_iso) < hazard
            on = np.maximum.accumulate(onset, axis=1) & res_iso & (age_iso >= lo)
            spells[name] = np.where(on, weeks_iso, 0)
            continue
        prob = np.clip(p[:, None] * scale * _m(mult_iso, name), 0, 0.98) * ok
        has = streams.uniform(f"dream-{name}-has", idx[:, None], yy_iso) < prob
        length = 1 + np.floor(streams.uniform(f"dream-{name}-len", idx[:, None], yy_iso)
                              * (2 * mean_w[:, None] - 1)).astype(np.int64)
        spells[name] = np.where(has, np.minimum(length, weeks_iso), 0)
    if fixed is not None and fixed.weeks:
        fixed_rows = fixed.block_rows()
        rows_fixed = np.searchsorted(sel, fixed_rows) if sub is not None else fixed_rows
        inside = np.isin(fixed_rows, sel)
        for name in spells:
            spells[name][rows_fixed[inside]] = 0
        for name, w in fixed.weeks.items():
            spells[name][rows_fixed[inside]] = w[inside]
    dream, dream_out = reg.dream(streams, idx, iso_years, spells, exit_date=pop.exit_date[pi], exit_kind=pop.exit_kind[pi],
                                 counted_years=years)
    outcomes.update(dream_out)

    # IND: wage income (employment falls with frailty; no planted effect unless the 'employment' channel has one).
    working = (age >= 18) & (age <= 66)
    employment = np.clip(_profile_value(b, spec, "employment")[:, None] / np.sqrt(f) * working * _m(mult, "employment"), 0, 0.98)
    exit_year_col = (np.arange(len(years))[None, :] == pop.exit[pi][:, None])
    in_ind = (resident | exit_year_col) & (age >= 15) & (streams.uniform("ind-in", idx[:, None], yy) < 0.97)
    wage = _profile_value(b, spec, "wage") * (0.5 + streams.uniform("ind-wage", idx))
    ind, earnings = reg.income(streams, idx, years, employment=employment, wage=wage, in_register=in_ind)
    records["ind"] = ind
    outcomes["earnings_dkk"] = np.where(resident, earnings, 0.0)
    return records, outcomes, dream


# --------------------------------------------------------------------------- assignment

def assign(
    spec: WorldSpec,
    streams: Streams,
    pop: Population,
    is_target: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start year (0 = not in the register), arm (T/C/"") and responder flag for every person."""
    n = pop.n
    years = spec.years
    idx = np.arange(n)
    resident = pop.resident
    age = pop.age()
    lo, hi = spec.eligible_ages
    start = np.zeros(n, dtype=np.int64)
    arm = np.full(n, "", dtype="<U1")
    u_part = streams.uniform("participation", idx)
    if spec.design == "staggered":
        for kom, year in sorted(spec.rollout, key=lambda kv: kv[1]):
            j = year - spec.first_year
            if not 0 <= j < len(years):
                raise ValueError(f"roll-out year {year} is outside the period {spec.first_year}–{spec.last_year}")
            ok = is_target & resident[:, j] & (pop.kom[:, j] == kom) & (age[:, j] >= lo) & (age[:, j] <= hi) & (start == 0)
            take = ok & (u_part < spec.participation)
            start[take] = year
            arm[take] = "T"
    else:
        if not spec.randomisation:
            raise ValueError("a randomised world needs randomisation years")
        n_rand = len(spec.randomisation)
        ry = np.asarray(spec.randomisation)[
            np.minimum(np.floor(streams.uniform("rand-year", idx) * n_rand).astype(np.int64), n_rand - 1)]
        j = ry - spec.first_year
        ok = is_target & resident[idx, j] & (age[idx, j] >= lo) & (age[idx, j] <= hi) & (u_part < spec.participation)
        start[ok] = ry[ok]
        arm[ok] = np.where(streams.uniform("arm", idx[ok]) < spec.arm_share, "T", "C")
    responder = (arm == "T") & (streams.uniform("responder", idx) < spec.success_rate)
    return start, arm, responder


# --------------------------------------------------------------------------- truth accumulation

class _Truth:
    """Sums of Y(1) − Y(0) per event time over ARM T participants resident in the year."""

    def __init__(self, spec: WorldSpec) -> None:
        self.spec = spec
        self.n: dict[int, int] = {}
        self.sums: dict[tuple[int, str], float] = {}

    def add(self, start: np.ndarray, resident: np.ndarray, y1: dict, y0: dict) -> None:
        years = self.spec.years
        e = years[None, :] - start[:, None]
        name, outcome, rule = self.spec.success
        ind = (lambda a: (a == 0).astype(float)) if rule == "zero" else (lambda a: (a > 0).astype(float))
        diffs = {o: y1[o].astype(float) - y0[o].astype(float) for o in self.spec.planted}
        diffs[name] = ind(y1[outcome]) - ind(y0[outcome])
        for ev in np.unique(e[(e >= 0) & resident]):
            mask = (e == ev) & resident
            self.n[int(ev)] = self.n.get(int(ev), 0) + int(mask.sum())
            for o, d in diffs.items():
                self.sums[(int(ev), o)] = self.sums.get((int(ev), o), 0.0) + float(d[mask].sum())

    def rows(self) -> list[dict]:
        out = []
        for ev in sorted(self.n):
            row: dict[str, float] = {"event_time": ev, "n_treated": self.n[ev]}
            row[self.spec.success[0]] = self.sums[(ev, self.spec.success[0])] / self.n[ev]
            for o in self.spec.planted:
                row[o] = self.sums[(ev, o)] / self.n[ev]
            out.append(row)
        return out


def _fingerprint_dict(agg: pl.DataFrame, outcomes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in agg.to_dicts():
        y = str(row["year"])
        out[y] = {"person_years": int(row["person_years"])}
        for o in outcomes:
            out[y][o] = {k: (float(row[f"{o}|{k}"]) if k != "nonzero" else int(row[f"{o}|{k}"]))
                         for k in ("sum", "sum_sq", "nonzero", "sum_x_birth_year")}
    return out


def merge_fingerprints(parts: list[pl.DataFrame], outcomes) -> dict[str, Any]:
    agg = pl.concat(parts).group_by("year").agg(pl.all().sum()).sort("year")
    return _fingerprint_dict(agg, outcomes)


def _fp_frame(expected: pl.DataFrame, outcomes) -> pl.DataFrame:
    aggs = [pl.len().cast(pl.Int64).alias("person_years")]
    for o in outcomes:
        v = pl.col(o).cast(pl.Float64)
        aggs += [v.sum().alias(f"{o}|sum"), (v * v).sum().alias(f"{o}|sum_sq"),
                 (v != 0).sum().cast(pl.Int64).alias(f"{o}|nonzero"),
                 (v * pl.col("birth_year")).sum().alias(f"{o}|sum_x_birth_year")]
    return expected.group_by("year").agg(aggs)


# --------------------------------------------------------------------------- the whole world

def simulate_world(spec: WorldSpec, persons: int, seed: int, *, target_pop: Population | None = None,
                   target_assignment: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                   fixed: Fixed | None = None, truth_fn: Callable[[], dict] | None = None,
                   keep_expected: bool | None = None, block_size: int = BLOCK) -> SimulatedDelivery:
    """Generate the delivery of ``spec`` for ``persons`` persons (target group + background population).

    ``target_pop``/``target_assignment``/``fixed``/``truth_fn`` let a scenario module (homelessness) supply
    its own target group, assignment, outcomes and truth; otherwise everything comes from ``spec``.
    ``keep_expected`` keeps the person-level expected panel (default: when ``persons ≤ 200 000``).
    """
    if persons < 20:
        raise ValueError(f"persons must be at least 20 (got {persons})")
    streams = Streams(seed)
    years = spec.years
    n_target = target_pop.n if target_pop is not None else max(1, int(round(persons * spec.target_share)))
    n_back = persons - n_target

    def draw(n: int, birth_years: tuple[int, int], male_share: float, offset: int, taken: set | None = None) -> Population:
        return generate_population(streams, n, years, birth_years=birth_years, male_share=male_share,
                                   mortality=spec.mortality, emigration=spec.emigration, immigration=spec.immigration,
                                   move=spec.move, municipalities=spec.municipalities, offset=offset, taken=taken)

    if target_pop is None:
        tp = draw(n_target, spec.target.birth_years, spec.target.male_share, offset=0)
    else:
        tp = target_pop
    pop = tp
    if n_back > 0:
        bp = draw(n_back, spec.background.birth_years, spec.background.male_share, offset=n_target,
                  taken=set(tp.pnr.tolist()))
        pop = concat(tp, bp)
    is_target = np.arange(pop.n) < n_target
    shape = np.where(is_target, spec.target.heterogeneity, spec.background.heterogeneity)
    frailty = np.empty(pop.n)
    for s in np.unique(shape):
        m = shape == s
        frailty[m] = gamma(streams.uniform("frailty", np.flatnonzero(m)), float(s), 1.0)
    if target_assignment is None:
        start, arm, responder = assign(spec, streams, pop, is_target)
    else:
        start = np.zeros(pop.n, dtype=np.int64)
        arm = np.full(pop.n, "", dtype="<U1")
        responder = np.zeros(pop.n, dtype=bool)
        start[:n_target], arm[:n_target], responder[:n_target] = target_assignment
    keep = persons <= 200_000 if keep_expected is None else keep_expected

    rec_parts: dict[str, list[pl.DataFrame]] = {}
    dream_rows, dream_codes = [], []
    expected_parts, fp_parts = [], []
    truth = _Truth(spec)
    columns = None
    resident_all = pop.resident
    for lo in range(0, pop.n, block_size):
        hi = min(pop.n, lo + block_size)
        idx = np.arange(lo, hi)
        block = Block(idx, is_target[lo:hi], frailty[lo:hi], start[lo:hi], arm[lo:hi], responder[lo:hi])
        mult = multipliers(spec, block, years)
        block_fixed = None
        if fixed is not None and fixed.rows is not None:
            inside = (fixed.rows >= lo) & (fixed.rows < hi)
            block_fixed = Fixed(None if fixed.shelter_nights is None else fixed.shelter_nights[inside],
                                {k: v[inside] for k, v in fixed.weeks.items()}, fixed.rows[inside] - lo)
        records, outcomes, dream = generate_block(spec, streams, pop, block, mult=mult, fixed=block_fixed)
        for name, rec in records.items():
            rec_parts.setdefault(name, []).append(_record_frame(rec, pop, idx, name))
        dream_rows.append(idx[dream.rows])
        dream_codes.append(dream.codes)
        columns = dream.columns
        # Truth: untreated path for ARM T participants, from the same draws.
        treated = np.flatnonzero((block.arm == "T") & (block.start > 0))
        if truth_fn is None and len(treated) and spec.effects:
            _, y0, _ = generate_block(spec, streams, pop, block, mult=None, fixed=block_fixed, sub=treated)
            y1 = {k: v[treated] for k, v in outcomes.items()}
            truth.add(block.start[treated], resident_all[idx[treated]], y1, y0)
        exp = _expected_frame(spec, pop, idx, outcomes, resident_all[idx])
        fp_parts.append(_fp_frame(exp, OUTCOMES))
        if keep:
            expected_parts.append(exp)

    frames = _frames(spec, pop, rec_parts, start, arm, streams)
    codes = np.concatenate(dream_codes) if dream_codes else np.zeros((0, 0), np.int16)
    wide = WideCodes(pop.pnr[np.concatenate(dream_rows)] if dream_rows else np.zeros(0, object), codes, columns or ())
    expected = pl.concat(expected_parts).sort("pnr", "year") if keep else None
    manifest = {
        "vintage": f"{spec.last_year + 1}-06",
        "period_start": f"{spec.first_year}-01-01",
        "period_end": spec.period_end.isoformat(),
        "scenario": spec.scenario,
        "interventions": [spec.intervention],
        "synthetic": True,
    }
    truth_doc = truth_fn() if truth_fn is not None else _truth_doc(spec, seed, persons, n_target, start, arm, responder, truth)
    truth_doc["population"] = {
        "persons": int(pop.n), "target_group": int(n_target), "background": int(pop.n - n_target),
        "in_bef_any_year": int(resident_all.any(axis=1).sum()),
        "born_in_period": int(((pop.entry > 0) & (pop.birth_year >= spec.first_year)).sum()),
        "deaths": int((pop.exit_kind == 1).sum()), "emigrations": int((pop.exit_kind == 2).sum()),
    }
    truth_doc["expected_panel"] = {
        "note": "per year: person-years and, per outcome, sum, sum of squares, count of non-zero values and the sum of "
                "outcome × birth_year over the panel rows the delivery must produce (persons in BEF that year)",
        "by_year": merge_fingerprints(fp_parts, OUTCOMES),
    }
    return SimulatedDelivery(frames=frames, manifest=manifest, truth=truth_doc, dream=wide, expected=expected)


def _truth_doc(spec, seed, persons, n_target, start, arm, responder, truth: _Truth) -> dict:
    participants = (start > 0) & (arm == "T")
    return {
        "scenario": spec.scenario,
        "seed": seed,
        "persons": persons,
        "intervention": spec.intervention,
        "description": spec.description,
        "years": [spec.first_year, spec.last_year],
        "design": spec.design,
        "rollout": {str(k): v for k, v in spec.rollout},
        "randomisation_years": list(spec.randomisation),
        "participants": int(participants.sum()),
        "participants_by_start_year": {str(int(y)): int(((start == y) & participants).sum())
                                       for y in np.unique(start[participants])},
        "cost_per_participant": (None if spec.cost_per_participant is None else
                                 {"mean": spec.cost_per_participant[0], "gamma_shape": spec.cost_per_participant[1],
                                  "price_year": spec.cost_price_year}),
        "controls": int(((start > 0) & (arm == "C")).sum()),
        "responders": int(responder.sum()),
        "planted": {
            "success_rate": spec.success_rate,
            "effects": [{"channel": e.channel, "relative": e.relative, "persistence": e.persistence, "who": e.who}
                        for e in spec.effects],
            "target_share": spec.target_share,
            "participation": spec.participation,
        },
        "success_measure": (f"{spec.success[0]}: {spec.success[1]} "
                            f"{'is zero' if spec.success[2] == 'zero' else 'is positive'} in the calendar year"),
        "att_by_event_time": truth.rows(),
        "notes": list(spec.notes),
        "note": "ATT = mean over ARM T participants resident in the year of Y(1) - Y(0), from the generator's potential "
                f"outcomes (common random numbers); the {spec.success[0]} ATT is the net success rate.",
    }


def _expected_frame(spec: WorldSpec, pop: Population, idx: np.ndarray, outcomes: dict, resident: np.ndarray) -> pl.DataFrame:
    r, c = np.nonzero(resident)
    data = {
        "pnr": pop.pnr[idx[r]],
        "year": spec.years[c].astype(np.int64),
        "sex": pop.sex[idx[r]].astype(np.int64),
        "birth_year": pop.birth_year[idx[r]].astype(np.int64),
        "municipality": pop.kom[idx[r], c].astype(np.int64),
    }
    for o in OUTCOMES:
        data[o] = outcomes[o][r, c].astype(np.float64)
    return pl.DataFrame(data, schema_overrides={"pnr": pl.Utf8})


def _record_frame(rec: dict, pop: Population, idx: np.ndarray, name: str) -> pl.DataFrame:
    rows = rec["rows"]
    data = {"PNR": pop.pnr[idx[rows]]}
    for k, v in rec.items():
        if k != "rows":
            data[k] = v
    df = pl.DataFrame(data, schema_overrides={"PNR": pl.Utf8})
    for k in ("RECNUM", "JOURNR"):
        if k in df.columns:
            df = df.with_columns(pl.col(k).cast(pl.Utf8))
    return df


def _frames(spec: WorldSpec, pop: Population, parts: dict, start, arm, streams: Streams) -> dict[str, pl.DataFrame]:
    """Register frames by file stem: bef{YYYY}12, ind{YYYY}, lpr_adm{YYYY}, kraf{YYYY}, krin, shelter, bua, indsats."""
    frames: dict[str, pl.DataFrame] = {}
    years = spec.years
    resident = pop.resident
    for j, year in enumerate(years):
        rows = np.flatnonzero(resident[:, j])
        frames[f"bef{year}12"] = pl.DataFrame({
            "PNR": pop.pnr[rows], "KOEN": pop.sex[rows].astype(np.int64), "FOED_DAG": pop.birth[rows],
            "KOM": pop.kom[rows, j].astype(np.int64)}, schema_overrides={"PNR": pl.Utf8, "FOED_DAG": pl.Date})

    def get(name: str) -> pl.DataFrame:
        if name not in parts:
            raise ValueError(f"simulated world has no {name!r} register part (parts: {sorted(parts)})")
        return pl.concat(parts[name])

    ind = get("ind")
    for year in years:
        frames[f"ind{year}"] = ind.filter(pl.col("year") == year).drop("year").sort("PNR")
    lpr = get("lpr").with_columns(pl.col("D_INDDTO").cast(pl.Date), pl.col("D_UDDTO").cast(pl.Date))
    # LPR files by year of discharge (open contacts in the last year's file).
    file_year = pl.coalesce(pl.col("D_UDDTO").dt.year(), pl.lit(int(years[-1]))).clip(int(years[0]), int(years[-1]))
    lpr = lpr.with_columns(file_year.alias("_y"))
    for year in years:
        frames[f"lpr_adm{year}"] = lpr.filter(pl.col("_y") == year).drop("_y").sort("D_INDDTO", "RECNUM")
    kraf = get("kraf").with_columns(pl.col("AFG_ADTO").cast(pl.Date))
    for year in years:
        frames[f"kraf{year}"] = kraf.filter(pl.col("AFG_ADTO").dt.year() == year).sort("AFG_ADTO", "JOURNR")
    frames["krin"] = get("krin").with_columns(pl.col("IND_FGSLDTO").cast(pl.Date),
                                              pl.col("IND_LOESDTO").cast(pl.Date)).sort("IND_FGSLDTO", "PNR")
    shelter = get("shelter").with_columns(pl.col("START_DATO").cast(pl.Date), pl.col("SLUT_DATO").cast(pl.Date))
    # Open stays: half delivered as empty, half as 9999-12-31 (both mean "ongoing").
    marker = pl.Series(streams.uniform("open-marker", np.arange(shelter.height)) < 0.5)
    shelter = shelter.with_columns(pl.when(pl.col("SLUT_DATO").is_null() & marker).then(pl.lit(dt.date(9999, 12, 31)))
                                   .otherwise(pl.col("SLUT_DATO")).alias("SLUT_DATO"))
    frames["shelter"] = shelter.sort("START_DATO", "PNR")
    frames["bua"] = get("bua").with_columns(pl.col("SAG_VFRA").cast(pl.Date),
                                            pl.col("SAG_VTIL").cast(pl.Date)).sort("SAG_VFRA", "PNR")
    frames["indsats"] = intervention_register(spec, pop, start, arm, streams)
    if spec.cost_per_participant is not None:
        frames["costs"] = cost_file(spec, frames["indsats"].height, streams)
    return frames


def cost_file(spec: WorldSpec, n: int, streams: Streams) -> pl.DataFrame:
    """The intervention's cost per participant (the municipality's accounts): one row per row of the intervention
    register, ``BELOEB`` ~ Gamma(shape, mean) kroner rounded to whole kroner, ``PRISAAR`` the price year; no person
    number (the check of the assumed cost needs none)."""
    from som_models.simulate.rand import gamma

    assert spec.cost_per_participant is not None
    mean, shape = spec.cost_per_participant
    amount = np.rint(gamma(streams.uniform("cost", np.arange(n)), shape, mean))
    return pl.DataFrame({"BELOEB": amount, "PRISAAR": np.full(n, spec.cost_price_year, dtype=np.int64)})


def intervention_register(spec: WorldSpec, pop: Population, start: np.ndarray, arm: np.ndarray, streams: Streams) -> pl.DataFrame:
    """One row per person in the intervention (both arms in a trial): start in the start year, course of
    ``course_days`` ± 30 %; ongoing (empty SLUT_DATO) when the course would end after the period."""
    rows = np.flatnonzero(start > 0)
    s = date_in_year(start[rows], streams.uniform("indsats-start", rows), span=120)
    length = (spec.course_days * (0.7 + 0.6 * streams.uniform("indsats-len", rows))).astype(np.int64)
    e = s + length
    e = np.where(e > np.datetime64(spec.period_end, "D"), np.datetime64("NaT"), e).astype("datetime64[D]")
    data = {"PNR": pop.pnr[rows], "INDSATS": np.full(len(rows), spec.intervention, dtype=object), "START_DATO": s, "SLUT_DATO": e}
    schema = {"PNR": pl.Utf8, "INDSATS": pl.Utf8, "START_DATO": pl.Date, "SLUT_DATO": pl.Date}
    if spec.design == "randomised":
        data["ARM"] = arm[rows].astype(object)
        schema["ARM"] = pl.Utf8
    return pl.DataFrame(data, schema=schema).sort("START_DATO", "PNR")
