"""Known-truth world: adults in homelessness and a Housing First-like intervention.

The target group "voksne i hjemløshed" (``target_share`` of the persons; all of them by default) are adults
with a §110 shelter stay in the first year of the delivery period; with ``target_share < 1`` they are drawn
from a larger population (the background profile of :mod:`world`), which is also in every register. The
intervention is rolled out by municipality (staggered adoption): in each adopting municipality a random share
of the target group starts the intervention in the roll-out year; everyone else is never treated.

Outcomes of the target group are generated from two potential-outcome paths per person (without and with the
intervention), so the world knows the true average treatment effect on the treated (ATT) for every outcome
and year since start:

* homelessness state ``H`` (Markov chain, ``P(H=1 | H=1) = stay``, ``P(H=1 | H=0) = entry``); a homeless year
  has 1–3 shelter stays (joined across New Year when they touch); total nights ~ Gamma;
* kontanthjælp (DREAM codes 701–739) weeks ~ Binomial(ISO weeks, p_i) with a person-specific propensity p_i,
  placed as one contiguous spell of ISO weeks; some persons receive førtidspension (code 783) every week;
* treatment: with probability ``responder_share`` a participant responds; a responder is housed (H = 0) with
  probability ``course_year_housed`` in the start year and from the next year on until a yearly relapse
  (probability ``relapse``) returns the person to the untreated chain; responders' kontanthjælp propensity
  falls by ``kh_effect_per_responder`` (in probability points per week).

Hospital contacts, crime, income and (for the background population) the other benefits come from the
generic profile model of :mod:`world` with the ``target`` profile below (high psychiatric and emergency use);
no effect is planted on them. The target group's municipality is fixed until the last roll-out year (so
roll-out assignment matches BEF's KOM), after which persons move with probability ``move`` a year. Exits
(``mortality``) are deaths or emigrations.

The planted truth is recorded as the sample ATT (mean over treated persons resident in the year of
``Y(1) − Y(0)``) for each outcome and event time — the course year (the start year, event time 0: one course
year, ``course_years`` = 1) separately too, as ``course_effects`` per outcome (per participant: responders
housed with probability ``course_year_housed`` and their kontanthjælp propensity already lowered) — and the net
success rate
``s_e = mean(1{shelter_nights(1) = 0} − 1{shelter_nights(0) = 0})`` — SØM's success rate, net of what would
have happened anyway (Socialstyrelsen, FAQ vidensdatabasen/effekt).

The draws of the target group come from one ``numpy`` generator in a fixed order (so a seed gives the same
world as earlier versions of this module); everything added since uses counter-based streams.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from som_models.simulate.calendar import iso_weeks_in_year
from som_models.simulate.delivery import SimulatedDelivery, make_pnrs
from som_models.simulate.population import Population, exit_day
from som_models.simulate.rand import Streams
from som_models.simulate.world import Fixed, Profile, WorldSpec, simulate_world

#: Municipality codes (kommunekoder) of the target group: København, Aarhus, Odense, Aalborg, Esbjerg,
#: Randers, Kolding, Horsens, Vejle, Roskilde.
#: Denmark's 98 kommuner (Statistics Denmark's KOM codes since 2007)
MUNICIPALITIES = (
    101, 147, 151, 153, 155, 157, 159, 161, 163, 165, 167, 169, 173, 175, 183, 185, 187, 190, 201, 210, 217, 219,
    223, 230, 240, 250, 253, 259, 260, 265, 269, 270, 306, 316, 320, 326, 329, 330, 336, 340, 350, 360, 370, 376,
    390, 400, 410, 420, 430, 440, 450, 461, 479, 480, 482, 492, 510, 530, 540, 550, 561, 563, 573, 575, 580, 607,
    615, 621, 630, 657, 661, 665, 671, 706, 707, 710, 727, 730, 740, 741, 746, 751, 756, 760, 766, 773, 779, 787,
    791, 810, 813, 820, 825, 840, 846, 849, 851, 860,
)
#: the demo roll-out: 30 municipalities adopt, 15 in 2018 and 15 in 2019 (enough clusters for inference at the
#: level of assignment; every 3rd–4th kommune, a deterministic choice)
ROLLOUT = tuple((k, 2018 + (i % 2)) for i, k in enumerate(MUNICIPALITIES[::3][:30]))

TARGET_PROFILE = Profile(birth_years=(1958, 1997), male_share=0.7, heterogeneity=2.0, crime=0.25, somatic=0.25,
                         psychiatric=0.25, outpatient=1.2, emergency=0.6, partday=0.1, shelter=0.0, employment=0.15,
                         wage=180_000.0, benefits=())
BACKGROUND_PROFILE = Profile()
#: the course length of the world: the start year is the one course year (event time 0)
COURSE_YEARS = 1


@dataclass(frozen=True)
class HomelessnessWorld:
    """Knobs of the homelessness world. Defaults give a Housing First-like intervention."""

    first_year: int = 2015
    last_year: int = 2022
    rollout: tuple[tuple[int, int], ...] = ROLLOUT
    participation: float = 0.7
    responder_share: float = 0.55
    course_year_housed: float = 0.5
    relapse: float = 0.10
    stay: float = 0.75
    entry: float = 0.15
    nights_mean: float = 95.0
    nights_shape: float = 2.0
    kh_propensity: tuple[float, float] = (6.0, 4.0)  # Beta(a, b): mean 0.6
    kh_effect_per_responder: float = 0.04
    foertidspension_share: float = 0.08
    mortality: float = 0.015
    #: the programme's cost per participant (mean kroner, Gamma shape; 2024 prices) in the delivery's cost file
    cost_per_participant: tuple[float, float] | None = (105_000.0, 4.0)
    scenario: str = "homelessness"
    intervention: str = "HOUSING_FIRST"
    target_share: float = 1.0
    move: float = 0.03
    target: Profile = TARGET_PROFILE
    background: Profile = BACKGROUND_PROFILE
    extra: dict[str, Any] = field(default_factory=dict)


def _spec(w: HomelessnessWorld) -> WorldSpec:
    return WorldSpec(
        scenario=w.scenario, intervention=w.intervention,
        description="adults in homelessness; Housing First-like intervention rolled out by municipality",
        first_year=w.first_year, last_year=w.last_year, target=w.target, background=w.background,
        target_share=w.target_share, design="staggered", rollout=w.rollout, participation=w.participation,
        success_rate=w.responder_share, success=("no_shelter_stay", "shelter_nights", "zero"),
        planted=("shelter_nights", "kontanthjaelp_weeks"), move=w.move, cost_per_participant=w.cost_per_participant)


def simulate_homelessness(persons: int, seed: int, world: HomelessnessWorld | None = None, *,
                          keep_expected: bool | None = None) -> SimulatedDelivery:
    """Simulate a delivery (every register of the contract) and its truth; see the module docstring."""
    if persons < 20:
        raise ValueError(f"persons must be at least 20 (got {persons})")
    w = world or HomelessnessWorld()
    spec = _spec(w)
    rng = np.random.default_rng(seed)
    streams = Streams(seed)
    years = np.arange(w.first_year, w.last_year + 1)
    n_years = len(years)
    n = max(20, int(round(persons * w.target_share)))

    pnr = make_pnrs(rng, n)
    sex = rng.choice([1, 2], size=n, p=[0.7, 0.3])
    birth_year = rng.integers(1958, 1998, size=n)
    birth_doy = rng.integers(0, 365, size=n)
    kom = rng.choice(np.array(MUNICIPALITIES), size=n)

    # Residence: alive until death year (exclusive); first year always resident.
    death_draw = rng.random((n, n_years)) < w.mortality
    death_draw[:, 0] = False
    dead_from = np.where(death_draw.any(axis=1), death_draw.argmax(axis=1), n_years)
    resident = np.arange(n_years)[None, :] < dead_from[:, None]

    # Treatment assignment by municipality roll-out.
    rollout = dict(w.rollout)
    start_year = np.array([rollout.get(int(k), 0) for k in kom])
    participates = (start_year > 0) & (rng.random(n) < w.participation)
    start_year = np.where(participates, start_year, 0)
    start_idx = np.where(start_year > 0, start_year - w.first_year, 0)
    participates &= start_idx < dead_from
    start_year = np.where(participates, start_year, 0)
    responder = participates & (rng.random(n) < w.responder_share)

    # Untreated homelessness chain H0 and treated chain H1 (shared uniforms → same path unless housed).
    u = rng.random((n, n_years))
    h0 = np.zeros((n, n_years), dtype=bool)
    h0[:, 0] = True
    for j in range(1, n_years):
        h0[:, j] = np.where(h0[:, j - 1], u[:, j] < w.stay, u[:, j] < w.entry)
    housed_course = rng.random(n) < w.course_year_housed
    relapse_u = rng.random((n, n_years))
    h1 = _treated_chain(w, h0, u, relapse_u, responder, start_year - w.first_year, housed_course)

    # Shelter nights per homeless year (same draw for both paths → effect only through H).
    nights = np.clip(np.rint(rng.gamma(w.nights_shape, w.nights_mean / w.nights_shape, (n, n_years))), 1, 330)
    nights0 = np.where(h0 & resident, nights, 0).astype(int)
    nights1 = np.where(h1 & resident, nights, 0).astype(int)
    treated_path = participates[:, None] & (years[None, :] >= start_year[:, None])
    nights_obs = np.where(treated_path, nights1, nights0)

    # Kontanthjælp weeks: Binomial(ISO weeks, p) from 53 uniforms per person-year (drawn in person chunks,
    # which gives the same numbers as one draw of the whole array).
    weeks_in_year = np.array([iso_weeks_in_year(int(y)) for y in years])
    p_kh = rng.beta(*w.kh_propensity, size=n)
    fp = rng.random(n) < w.foertidspension_share
    p1 = np.clip(p_kh[:, None] - np.where(responder[:, None] & treated_path, w.kh_effect_per_responder, 0.0), 0, 1)
    week_ok = np.arange(53)[None, None, :] < weeks_in_year[None, :, None]
    kh0 = np.empty((n, n_years), dtype=np.int64)
    kh1 = np.empty((n, n_years), dtype=np.int64)
    chunk = max(1, 2_000_000 // (n_years * 53))
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        kh_u = rng.random((hi - lo, n_years, 53))
        kh0[lo:hi] = ((kh_u < p_kh[lo:hi, None, None]) & week_ok).sum(axis=2)
        kh1[lo:hi] = ((kh_u < p1[lo:hi, :, None]) & week_ok).sum(axis=2)
    kh0 = np.where(fp[:, None] | ~resident, 0, kh0)
    kh1 = np.where(fp[:, None] | ~resident, 0, kh1)
    kh_obs = np.where(treated_path, kh1, kh0)

    # The target group as a population: municipality fixed until the last roll-out year, then moves.
    idx = np.arange(n)
    birth = (birth_year - 1970).astype("datetime64[Y]").astype("datetime64[D]") + birth_doy
    exit_idx = np.where(dead_from < n_years, dead_from, n_years)
    exit_year = years[np.minimum(exit_idx, n_years - 1)]
    exit_date = np.where(exit_idx < n_years, exit_day(exit_year, streams.uniform("exit-day", idx)), np.datetime64("NaT"))
    exit_kind = np.where(exit_idx < n_years, np.where(streams.uniform("exit-kind", idx) < 0.6, 1, 2), 0).astype(np.int8)
    komy = np.repeat(kom[:, None].astype(np.int16), n_years, axis=1)
    last_rollout = max([y for _, y in w.rollout], default=w.first_year)
    koms = np.array(MUNICIPALITIES, dtype=np.int16)
    for j in range(1, n_years):
        if years[j] <= last_rollout:
            continue
        moves = streams.uniform("move", idx, j) < w.move
        new = koms[np.minimum(np.floor(streams.uniform("move-to", idx, j) * len(koms)).astype(np.int64), len(koms) - 1)]
        komy[:, j] = np.where(moves, new, komy[:, j - 1])
    target_pop = Population(years, pnr, sex.astype(np.int8), birth.astype("datetime64[D]"), np.zeros(n, np.int16),
                            exit_idx.astype(np.int16), exit_date.astype("datetime64[D]"), exit_kind, komy)

    # DREAM for the target group: the kontanthjælp spell of each ISO year and førtidspension every resident week.
    lb = spec.lookback_years
    pad = np.zeros((n, lb), dtype=np.int64)
    weeks_iso = np.concatenate([[iso_weeks_in_year(int(y)) for y in range(w.first_year - lb, w.first_year)], weeks_in_year])
    res_iso = np.concatenate([np.repeat(resident[:, :1], lb, axis=1), resident], axis=1)
    fixed = Fixed(shelter_nights=nights_obs.astype(np.int64),
                  weeks={"kontanthjaelp": np.concatenate([pad, kh_obs], axis=1),
                         "foertidspension": np.where(fp[:, None] & res_iso, weeks_iso[None, :], 0)},
                  rows=idx)
    assignment = (start_year, np.where(participates, "T", ""), responder)
    truth = lambda: _truth(w, seed, persons, n, years, participates, responder, start_year, resident,  # noqa: E731
                           nights0, nights1, kh0, kh1)
    return simulate_world(spec, max(persons, n), seed, target_pop=target_pop, target_assignment=assignment, fixed=fixed,
                          truth_fn=truth, keep_expected=keep_expected)


def _treated_chain(w, h0, u, relapse_u, responder, start_idx, housed_course) -> np.ndarray:
    """The homelessness path with the intervention (vectorised over persons, year by year).

    Responders are housed in the start year with probability ``course_year_housed`` and from the next year
    on; each later year a housed person relapses with probability ``relapse`` (homeless that year, then back
    on the untreated chain's transition rule with the shared uniforms).
    """
    n, n_years = h0.shape
    h1 = h0.copy()
    housed = np.zeros(n, dtype=bool)
    for j in range(n_years):
        at_start = responder & (start_idx == j)
        h1[at_start & housed_course, j] = False
        housed |= at_start
        after = responder & (start_idx < j)
        relapse_now = after & housed & (relapse_u[:, j] < w.relapse)
        stays_housed = after & housed & ~relapse_now
        free = after & ~housed
        chain = np.where(h1[:, j - 1], u[:, j] < w.stay, u[:, j] < w.entry) if j > 0 else h1[:, j]
        h1[:, j] = np.where(relapse_now, True, np.where(stays_housed, False, np.where(free, chain, h1[:, j])))
        housed &= ~relapse_now
    return h1


def _truth(w, seed, persons, n_target, years, participates, responder, start_year, resident, nights0, nights1, kh0, kh1) -> dict:
    """Sample ATT per event time from the two potential-outcome paths (treated persons resident that year)."""
    event_rows = []
    max_e = int(years[-1] - start_year[participates].min()) if participates.any() else 0
    for e in range(0, max_e + 1):
        mask = participates[:, None] & (start_year[:, None] + e == years[None, :]) & resident
        k = int(mask.sum())
        if k == 0:
            continue
        free1 = (nights1 == 0)[mask]
        free0 = (nights0 == 0)[mask]
        event_rows.append(
            {
                "event_time": e,
                "n_treated": k,
                "shelter_nights": float((nights1 - nights0)[mask].mean()),
                "kontanthjaelp_weeks": float((kh1 - kh0)[mask].mean()),
                "no_shelter_stay": float((free1.astype(float) - free0.astype(float)).mean()),
            }
        )
    course = [r for r in event_rows if r["event_time"] < COURSE_YEARS]
    return {
        "scenario": w.scenario,
        "seed": seed,
        "persons": persons,
        "intervention": w.intervention,
        "years": [int(years[0]), int(years[-1])],
        "design": "staggered",
        "rollout": {str(k): v for k, v in w.rollout},
        "participants": int(participates.sum()),
        "responders": int(responder.sum()),
        "planted": {
            "responder_share": w.responder_share,
            "course_year_housed": w.course_year_housed,
            "relapse_per_year": w.relapse,
            "kh_effect_per_responder_week_probability": w.kh_effect_per_responder,
            "homeless_stay_probability": w.stay,
            "homeless_entry_probability": w.entry,
            "target_share": w.target_share,
        },
        "success_measure": "no_shelter_stay: no §110 shelter night in the calendar year",
        "att_by_event_time": event_rows,
        "course_years": COURSE_YEARS,
        "course_effects": {
            "event_times": [r["event_time"] for r in course],
            "course_years": [r["event_time"] + 1 for r in course],
            "n_treated": [r["n_treated"] for r in course],
            **{k: [r[k] for r in course] for k in ("shelter_nights", "kontanthjaelp_weeks", "no_shelter_stay")},
            "unit": "per participant (sample ATT in course year k = event time k - 1)",
        },
        "note": "ATT = mean over treated persons resident in the year of Y(1) - Y(0), from the generator's "
                "potential outcomes; no_shelter_stay ATT is the net success rate. Other registers carry no planted effect.",
    }
