"""Known-truth world: adults in homelessness and a Housing First-like intervention.

Every person in the world belongs to the register-defined target group "voksne i hjemløshed": adults with a
§110 shelter stay in the first year of the delivery period. The intervention is rolled out by municipality
(staggered adoption): in each adopting municipality a random share of the target group starts the
intervention in the roll-out year; everyone else is never treated and forms the comparison group.

Outcomes are generated from two potential-outcome paths per person (without and with the intervention), so
the world knows the true average treatment effect on the treated (ATT) for every outcome and year since start:

* homelessness state ``H`` (Markov chain, ``P(H=1 | H=1) = stay``, ``P(H=1 | H=0) = entry``); a homeless year
  has 1–3 non-overlapping shelter stays inside the calendar year; total nights ~ Gamma;
* kontanthjælp (DREAM codes 701–739) weeks ~ Binomial(ISO weeks, p_i) with a person-specific propensity p_i,
  placed as one contiguous spell of ISO weeks; some persons receive førtidspension (code 783) every week;
* treatment: with probability ``responder_share`` a participant responds; a responder is housed (H = 0) with
  probability ``course_year_housed`` in the start year and from the next year on until a yearly relapse
  (probability ``relapse``) returns the person to the untreated chain; responders' kontanthjælp propensity
  falls by ``kh_effect_per_responder`` (in probability points per week).

The planted truth is recorded as the sample ATT (mean over treated persons resident in the year of
``Y(1) − Y(0)``) for each outcome and event time, and the net success rate
``s_e = mean(1{shelter_nights(1) = 0} − 1{shelter_nights(0) = 0})`` — SØM's success rate, net of what would
have happened anyway (Socialstyrelsen, FAQ vidensdatabasen/effekt).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from som_models.simulate.calendar import iso_weeks_in_year, week_column
from som_models.simulate.delivery import SimulatedDelivery, make_pnrs

#: Municipality codes (kommunekoder) used by the world: København, Aarhus, Odense, Aalborg, Esbjerg,
#: Randers, Kolding, Horsens, Vejle, Roskilde.
MUNICIPALITIES = (101, 751, 461, 851, 561, 730, 621, 615, 630, 265)


@dataclass(frozen=True)
class HomelessnessWorld:
    """Knobs of the homelessness world. Defaults give a Housing First-like intervention."""

    first_year: int = 2015
    last_year: int = 2022
    rollout: tuple[tuple[int, int], ...] = ((101, 2018), (751, 2018), (461, 2019), (851, 2019))
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
    scenario: str = "homelessness"
    intervention: str = "HOUSING_FIRST"
    extra: dict[str, Any] = field(default_factory=dict)


def simulate_homelessness(persons: int, seed: int, world: HomelessnessWorld | None = None) -> SimulatedDelivery:
    """Simulate a delivery (BEF per year, DREAM, shelter stays, intervention register) and its truth."""
    if persons < 20:
        raise ValueError(f"persons must be at least 20 (got {persons})")
    w = world or HomelessnessWorld()
    rng = np.random.default_rng(seed)
    years = np.arange(w.first_year, w.last_year + 1)
    n_years = len(years)

    pnr = make_pnrs(rng, persons)
    sex = rng.choice([1, 2], size=persons, p=[0.7, 0.3])
    birth_year = rng.integers(1958, 1998, size=persons)
    birth_doy = rng.integers(0, 365, size=persons)
    kom = rng.choice(np.array(MUNICIPALITIES), size=persons)

    # Residence: alive until death year (exclusive); first year always resident.
    death_draw = rng.random((persons, n_years)) < w.mortality
    death_draw[:, 0] = False
    dead_from = np.where(death_draw.any(axis=1), death_draw.argmax(axis=1), n_years)
    resident = np.arange(n_years)[None, :] < dead_from[:, None]

    # Treatment assignment by municipality roll-out.
    rollout = dict(w.rollout)
    start_year = np.array([rollout.get(int(k), 0) for k in kom])
    participates = (start_year > 0) & (rng.random(persons) < w.participation)
    start_year = np.where(participates, start_year, 0)
    # Participants must be alive in their start year.
    start_idx = np.where(start_year > 0, start_year - w.first_year, 0)
    participates &= start_idx < dead_from
    start_year = np.where(participates, start_year, 0)
    responder = participates & (rng.random(persons) < w.responder_share)

    # Untreated homelessness chain H0 and treated chain H1 (shared uniforms → same path unless housed).
    u = rng.random((persons, n_years))
    h0 = np.zeros((persons, n_years), dtype=bool)
    h0[:, 0] = True
    for j in range(1, n_years):
        h0[:, j] = np.where(h0[:, j - 1], u[:, j] < w.stay, u[:, j] < w.entry)
    h1 = h0.copy()
    housed_course = rng.random(persons) < w.course_year_housed
    relapse_u = rng.random((persons, n_years))
    for i in np.flatnonzero(responder):
        s = start_year[i] - w.first_year
        if housed_course[i]:
            h1[i, s] = False
        housed = True
        for j in range(s + 1, n_years):
            if housed and relapse_u[i, j] < w.relapse:
                housed = False
                h1[i, j] = True  # relapse year: back to shelter
                continue
            if housed:
                h1[i, j] = False
            else:
                prev = h1[i, j - 1]
                h1[i, j] = u[i, j] < (w.stay if prev else w.entry)

    # Shelter nights per homeless year (same draw for both paths → effect only through H).
    nights = np.clip(np.rint(rng.gamma(w.nights_shape, w.nights_mean / w.nights_shape, (persons, n_years))), 1, 330)
    nights0 = np.where(h0 & resident, nights, 0).astype(int)
    nights1 = np.where(h1 & resident, nights, 0).astype(int)
    treated_path = participates[:, None] & (years[None, :] >= start_year[:, None])
    nights_obs = np.where(treated_path, nights1, nights0)

    # Kontanthjælp weeks.
    weeks_in_year = np.array([iso_weeks_in_year(int(y)) for y in years])
    p_kh = rng.beta(*w.kh_propensity, size=persons)
    fp = rng.random(persons) < w.foertidspension_share
    kh_u = rng.random((persons, n_years, 53))
    week_ok = np.arange(53)[None, None, :] < weeks_in_year[None, :, None]
    p1 = np.clip(p_kh[:, None] - np.where(responder[:, None] & treated_path, w.kh_effect_per_responder, 0.0), 0, 1)
    kh0 = ((kh_u < p_kh[:, None, None]) & week_ok).sum(axis=2)
    kh1 = ((kh_u < p1[:, :, None]) & week_ok).sum(axis=2)
    kh0 = np.where(fp[:, None] | ~resident, 0, kh0)
    kh1 = np.where(fp[:, None] | ~resident, 0, kh1)
    kh_obs = np.where(treated_path, kh1, kh0)

    frames: dict[str, pl.DataFrame] = {}
    period_end = dt.date(w.last_year, 12, 31)
    for j, year in enumerate(years):
        alive = resident[:, j]
        frames[f"bef{year}12"] = pl.DataFrame(
            {
                "PNR": pnr[alive],
                "KOEN": sex[alive].astype(np.int64),
                "FOED_DAG": [dt.date(int(b), 1, 1) + dt.timedelta(days=int(d)) for b, d in zip(birth_year[alive], birth_doy[alive])],
                "KOM": kom[alive].astype(np.int64),
            }
        )

    frames["shelter"] = _shelter_stays(rng, pnr, nights_obs, years, period_end)
    frames["dream"] = _dream_wide(rng, pnr, kh_obs, fp, resident, years, weeks_in_year)
    idx = np.flatnonzero(participates)
    frames["indsats"] = pl.DataFrame(
        {
            "PNR": pnr[idx],
            "INDSATS": [w.intervention] * len(idx),
            "START_DATO": [dt.date(int(start_year[i]), 1, 1) + dt.timedelta(days=int(rng.integers(0, 120))) for i in idx],
            "SLUT_DATO": [dt.date(int(start_year[i]) + 1, 3, 1) if rng.random() < 0.8 else None for i in idx],
        },
        schema={"PNR": pl.Utf8, "INDSATS": pl.Utf8, "START_DATO": pl.Date, "SLUT_DATO": pl.Date},
    )

    truth = _truth(w, seed, persons, years, participates, responder, start_year, resident,
                   nights0, nights1, kh0, kh1)
    manifest = {
        "vintage": f"{w.last_year + 1}-06",
        "period_start": f"{w.first_year}-01-01",
        "period_end": period_end.isoformat(),
        "scenario": w.scenario,
        "synthetic": True,
    }
    return SimulatedDelivery(frames=frames, manifest=manifest, truth=truth)


def _shelter_stays(rng, pnr, nights, years, period_end) -> pl.DataFrame:
    """Split each person-year's nights into 1–3 non-overlapping stays inside the calendar year.

    End dates are exclusive (the morning of departure). A stay that reaches the end of the delivery period
    is left open (missing end), as ongoing stays are delivered.
    """
    rows_pnr, rows_start, rows_end = [], [], []
    ii, jj = np.nonzero(nights)
    for i, j in zip(ii, jj):
        year = int(years[j])
        total = int(nights[i, j])
        days = (dt.date(year + 1, 1, 1) - dt.date(year, 1, 1)).days
        k = int(min(total, rng.integers(1, 4)))
        lengths = rng.multinomial(total - k, np.ones(k) / k) + 1
        gaps = rng.multinomial(days - total, np.ones(k + 1) / (k + 1))
        pos = 0
        for s in range(k):
            pos += int(gaps[s])
            start = dt.date(year, 1, 1) + dt.timedelta(days=pos)
            end = start + dt.timedelta(days=int(lengths[s]))
            pos += int(lengths[s])
            rows_pnr.append(pnr[i])
            rows_start.append(start)
            rows_end.append(None if end > period_end else end)
    return pl.DataFrame(
        {"PNR": rows_pnr, "START_DATO": rows_start, "SLUT_DATO": rows_end},
        schema={"PNR": pl.Utf8, "START_DATO": pl.Date, "SLUT_DATO": pl.Date},
    )


def _dream_wide(rng, pnr, kh_weeks, fp, resident, years, weeks_in_year) -> pl.DataFrame:
    """DREAM as one wide table: a ``y_YYWW`` column per ISO week, blank (null) = no benefit.

    Kontanthjælp weeks form one contiguous spell at a random position inside the ISO year (code 701 in
    most weeks, 730 for activation); førtidspension recipients carry code 783 in every resident week.
    Persons who never received a benefit are absent, as in DREAM.
    """
    cols: dict[str, list] = {}
    in_dream = (kh_weeks.sum(axis=1) > 0) | fp
    idx = np.flatnonzero(in_dream)
    codes = np.full((len(idx), int(weeks_in_year.sum())), None, dtype=object)
    offset = 0
    names = []
    for j, year in enumerate(years):
        nw = int(weeks_in_year[j])
        names.extend(week_column(int(year), wk) for wk in range(1, nw + 1))
        for r, i in enumerate(idx):
            if not resident[i, j]:
                continue
            if fp[i]:
                codes[r, offset:offset + nw] = "783"
                continue
            k = int(kh_weeks[i, j])
            if k:
                first = int(rng.integers(0, nw - k + 1))
                spell = np.where(rng.random(k) < 0.8, "701", "730")
                codes[r, offset + first:offset + first + k] = spell
        offset += nw
    cols["PNR"] = list(pnr[idx])
    for c, name in enumerate(names):
        cols[name] = codes[:, c].tolist()
    return pl.DataFrame(cols, schema={"PNR": pl.Utf8, **{n: pl.Utf8 for n in names}})


def _truth(w, seed, persons, years, participates, responder, start_year, resident, nights0, nights1, kh0, kh1) -> dict:
    """Sample ATT per event time from the two potential-outcome paths (treated persons resident that year)."""
    event_rows = []
    max_e = int(years[-1] - start_year[participates].min()) if participates.any() else 0
    for e in range(0, max_e + 1):
        mask = np.zeros_like(resident)
        for j, year in enumerate(years):
            mask[:, j] = participates & (start_year + e == year) & resident[:, j]
        n = int(mask.sum())
        if n == 0:
            continue
        free1 = (nights1 == 0)[mask]
        free0 = (nights0 == 0)[mask]
        event_rows.append(
            {
                "event_time": e,
                "n_treated": n,
                "shelter_nights": float((nights1 - nights0)[mask].mean()),
                "kontanthjaelp_weeks": float((kh1 - kh0)[mask].mean()),
                "no_shelter_stay": float((free1.astype(float) - free0.astype(float)).mean()),
            }
        )
    return {
        "scenario": w.scenario,
        "seed": seed,
        "persons": persons,
        "intervention": w.intervention,
        "years": [int(years[0]), int(years[-1])],
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
        },
        "success_measure": "no_shelter_stay: no §110 shelter night in the calendar year",
        "att_by_event_time": event_rows,
        "note": "ATT = mean over treated persons resident in the year of Y(1) - Y(0), from the generator's "
                "potential outcomes; no_shelter_stay ATT is the net success rate.",
    }
