"""Verdicts on the volume, timing and cost assumptions of a parameter set (DESIGN §4; issue 12 item 4).

Three assumptions of a parameter set are not effects but administrative facts that the registers record:

* ``participants`` — the participants per cohort (``cohorts[k].participants``);
* ``course_years`` — the course length ``K`` (course years ``1 … K`` are event times ``0 … K − 1``: costs fall
  in them and consequence year 1 starts at event time ``K``);
* ``cost_per_participant`` — ``−Σ costs[k].amount`` over every cost line (all course years and payers), in the
  document's price year.

These are **descriptive checks of counts and means, not causal estimates**. Each returns the
:class:`som_models.verdicts.Verdict` of the effect verdicts, with the same four labels. Unlike the effect verdicts
(point null ``realised = assumed``), the null of the refutation is the *band* ``[A − δ, A + δ]`` around the
assumption ``A`` (``δ = margin · |A|``; the spec's ``volume_margin``, default 20 %): register counts and means rest
on near-census data, where a point null would refute a business case for a trivially small difference.

* ``refuted-overestimated`` / ``-underestimated`` — the realised value is shown to lie *outside* the band: the two
  one-sided tests against its edges, ``p = min(1, 2 · min(p_above(A + δ), p_below(A − δ)))``, Holm-adjusted
  p < ``alpha`` (equivalently, the printed ``1 − α/h`` interval lies wholly outside the band); *overestimated* =
  the assumption is larger than what happened;
* ``consistent`` — shown *inside* the band: TOST ``p = max(p_above(A − δ), p_below(A + δ))``, Holm-adjusted
  p < ``alpha`` (the ``1 − 2α/h`` interval lies inside the band);
* ``inconclusive`` otherwise.

The Holm family is the volume assumptions judged in one evaluation (up to three); it is separate from the family
of the effect assumptions (:func:`som_models.verdicts.judge`), since the two kinds of claim rest on different data.

**Participants** (the intervention register: persons by the year of their first start). Over the cohort years the
delivery observes (``first_year … last_year``), ``R = Σ_y n_y`` realised participants against ``A = Σ_y a_y``
assumed (``a_y = 0`` for a year without an assumed cohort). The intake of a programme is a count process, so the
counts are exact Poisson tail probabilities: ``p_above(μ) = P(X ≥ R | μ)``, ``p_below(μ) = P(X ≤ R | μ)``,
``X ~ Poisson(μ)``; the interval is the exact (Garwood) interval of the intake
``[χ²_{α/2}(2R)/2, χ²_{1−α/2}(2R+2)/2]``, which excludes the band exactly when the test refutes. The per-cohort
counts are in ``evidence["cohorts"]`` (what the parameter proposal uses for the projection of the cohorts already
observed: :func:`observed_cohorts`, :func:`realised_cohorts_from`).

**Course length** (the intervention register's start and end dates). A person's course lasts
``d_i = (SLUT_DATO − START_DATO) / 365.25`` years (the treatments' ``course_days``); without dates (a handed-over
panel's treatments with years only) ``d_i = end_year − start_year``, which estimates the duration without bias only
when starts are spread evenly over the year (the evidence says which was used). Only cohorts whose every course has
ended within the delivery are used (a course still running — no end date, or an end after ``last_year`` — would be
cut short, biasing the mean down); ``d̄`` with ``se = s / √n`` (``s`` the sample SD) and normal tail
probabilities, against the assumed course length ``K`` (``course_years``, a whole number of years) with the band
``δ = max(margin · K, ½ year)`` — half a year is the parameter's resolution.

**Cost per participant** (a cost file: one row per participant with the intervention's cost in kroner,
positive = cost, optional price year converted with the parameter set's price index). ``x̄`` with
``se = s / √n`` and normal tail probabilities against the band around the assumed cost.

Gates (label ``inconclusive``, no test): nothing observed (no cohort year in the window, no completed cohort, no
cost file), or fewer than ``min_persons`` persons behind a mean. The interval printed beside a verdict is the one
the refutation test decided with (level ``1 − α/h`` at the Holm step ``h``, exact Poisson for participants).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from som_models.lazy_scipy import stats
from som_models.parameters.schema import ParameterSet
from som_models.verdicts import Verdict, check_decision_levels, holm, holm_divisors

PARTICIPANTS = "participants"
COURSE_YEARS = "course_years"
COST = "cost_per_participant"
#: the volume, timing and cost assumptions, in the order they are judged
VOLUME_ASSUMPTIONS = (PARTICIPANTS, COURSE_YEARS, COST)
#: the course length is a whole number of years: its band is at least ± half a year (the parameter's resolution)
COURSE_RESOLUTION = 0.5


@dataclass(frozen=True)
class VolumeSettings:
    """Significance level, relative equivalence margin (share of the assumption) and minimum persons for a mean."""

    alpha: float = 0.05
    margin: float = 0.2
    min_persons: int = 20

    def __post_init__(self) -> None:
        check_decision_levels(self.alpha, self.margin, self.min_persons)


@dataclass(frozen=True)
class _Check:
    """One volume comparison before the Holm step: the test's p-values and the interval function."""

    assumption: str
    outcome: str
    assumed: float
    realised: float | None
    unit: str
    what: str
    gate: str | None
    p_value: float | None
    tost_p: float | None
    statistic: float | None
    test: str
    interval: Any  # level -> (low, high) of the realised value
    evidence: Mapping[str, Any]
    delta: float = 0.0  # half-width of the band around the assumption (absolute)


# ----------------------------------------------------------------------------------------------- the data

def first_starts(treatments: pl.DataFrame) -> pl.DataFrame:
    """One row per person: ``person_id``, the first ``start_year`` and that course's ``end_year`` and ``course_days``
    (null = ongoing or not given). ``treatments`` needs ``person_id`` and ``start_year``; the others are optional."""
    for col in ("person_id", "start_year"):
        if col not in treatments.columns:
            raise ValueError(f"treatments: column {col!r} not found; has {', '.join(treatments.columns)}")
    t = treatments.filter(pl.col("start_year").is_not_null() & (pl.col("start_year") > 0))
    opt = [(pl.col(c).cast(pl.Int64) if c in t.columns else pl.lit(None, dtype=pl.Int64)).alias(c)
           for c in ("end_year", "course_days")]
    t = t.select("person_id", pl.col("start_year").cast(pl.Int64), *opt)
    return t.sort("person_id", "start_year").group_by("person_id", maintain_order=True).first()


def observed_cohorts(treatments: pl.DataFrame, *, first_year: int, last_year: int) -> dict[int, int]:
    """Participants per cohort year (persons by the year of their first start) for ``first_year … last_year``;
    a year of the window without any start is 0."""
    if last_year < first_year:
        raise ValueError(f"last_year {last_year} is before first_year {first_year}")
    counts = dict(first_starts(treatments).group_by("start_year").len().iter_rows())
    return {y: int(counts.get(y, 0)) for y in range(first_year, last_year + 1)}


# ----------------------------------------------------------------------------------------------- the tests

def _p_at_least(r: int, mu: float) -> float:
    """P(X ≥ r) for X ~ Poisson(mu) (mu = 0: X = 0)."""
    return (1.0 if r <= 0 else 0.0) if mu <= 0 else float(stats.poisson.sf(r - 1, mu))


def _p_at_most(r: int, mu: float) -> float:
    """P(X ≤ r) for X ~ Poisson(mu) (mu = 0: X = 0)."""
    return 1.0 if mu <= 0 else float(stats.poisson.cdf(r, mu))


def garwood(r: int, level: float) -> tuple[float, float]:
    """Exact (Garwood 1936) ``level`` interval of a Poisson mean from one count ``r``."""
    a = 1 - level
    low = 0.0 if r == 0 else float(stats.chi2.ppf(a / 2, 2 * r)) / 2
    return low, float(stats.chi2.ppf(1 - a / 2, 2 * r + 2)) / 2


def _participants(params: ParameterSet, cohorts: Mapping[int, int] | None, st: VolumeSettings) -> _Check:
    assumed_by_year = {y: n for y, n in params.cohorts}
    unit = "participants (sum over the cohort years observed)"
    what = "number of participants"
    if not cohorts:
        return _Check(PARTICIPANTS, PARTICIPANTS, float(sum(assumed_by_year.values())), None, unit, what, "not-observed",
                      None, None, None, "", None, {"cohorts": [], "n_treated": 0})
    years = sorted(cohorts)
    table = [{"year": y, "assumed": int(assumed_by_year.get(y, 0)), "realised": int(cohorts[y])} for y in years]
    a = float(sum(r["assumed"] for r in table))
    r = int(sum(r["realised"] for r in table))
    later = sorted(y for y in assumed_by_year if y > years[-1])
    evidence = {"cohorts": table, "window": [years[0], years[-1]], "n_treated": r,
                "not_yet_observed": [{"year": y, "assumed": assumed_by_year[y]} for y in later],
                "unit": unit}
    if a == 0 and r == 0:
        return _Check(PARTICIPANTS, PARTICIPANTS, a, float(r), unit, what, "not-observed", None, None, None, "", None,
                      evidence)
    delta = st.margin * a
    lo_m, hi_m = max(a - delta, 0.0), a + delta
    refute = min(1.0, 2 * min(_p_at_least(r, hi_m), _p_at_most(r, lo_m)))
    tost = 1.0 if delta <= 0 else max(_p_at_least(r, lo_m), _p_at_most(r, hi_m))
    return _Check(PARTICIPANTS, PARTICIPANTS, a, float(r), unit, what, None, refute, tost, None,
                  f"exact Poisson test of the participants of cohort years {years[0]}–{years[-1]} against the band "
                  f"±{100 * st.margin:g} % of the assumption", lambda level: garwood(r, level), evidence, delta)


def _mean_check(assumption: str, values: np.ndarray, assumed: float, st: VolumeSettings, *, unit: str, what: str,
                test: str, evidence: dict[str, Any], delta: float | None = None) -> _Check:
    n = int(values.size)
    evidence = {**evidence, "n_treated": n, "unit": unit}
    if n == 0:
        return _Check(assumption, assumption, assumed, None, unit, what, "not-observed", None, None, None, test, None,
                      evidence)
    mean = float(values.mean())
    sd = float(values.std(ddof=1)) if n > 1 else float("nan")
    se = sd / math.sqrt(n) if n > 1 else float("nan")
    evidence.update(mean=mean, sd=sd, se=se)
    if n < st.min_persons:
        return _Check(assumption, assumption, assumed, mean, unit, what, "too-few-persons", None, None, None, test,
                      None, evidence)
    d = mean - assumed
    delta = st.margin * abs(assumed) if delta is None else delta
    if se > 0:
        # refutation: the mean lies outside the band [A − δ, A + δ] (two one-sided tests against its edges)
        z = (d - delta) / se if d >= 0 else (d + delta) / se
        p = float(min(1.0, 2 * min(stats.norm.sf((d - delta) / se), stats.norm.cdf((d + delta) / se))))
        tost = 1.0 if delta <= 0 else float(max(stats.norm.sf((d + delta) / se), stats.norm.cdf((d - delta) / se)))
    else:  # every value equal: the difference is known exactly
        z = None
        p = 0.0 if abs(d) > delta else 1.0
        tost = 0.0 if abs(d) < delta else 1.0

    def interval(level: float) -> tuple[float, float]:
        q = float(stats.norm.ppf(1 - (1 - level) / 2))
        return mean - q * se, mean + q * se

    return _Check(assumption, assumption, assumed, mean, unit, what, None, p, tost, z, test, interval, evidence, delta)


def _course_years(params: ParameterSet, treatments: pl.DataFrame | None, last_year: int | None,
                  st: VolumeSettings) -> _Check:
    k = float(params.course_years)
    unit = "years per course (start to end date)"
    delta = max(st.margin * k, COURSE_RESOLUTION)
    test = (f"z-tests of the mean course length of the completed cohorts against the band ±{delta:g} years of the "
            "assumption")
    if treatments is None or last_year is None:
        return _mean_check(COURSE_YEARS, np.zeros(0), k, st, unit=unit, what="course length", test=test, evidence={},
                           delta=delta)
    starts = first_starts(treatments).with_columns(
        (pl.col("end_year").is_null() | (pl.col("end_year") > last_year)).alias("_ongoing"))
    bad = starts.filter(pl.col("end_year").is_not_null() & (pl.col("end_year") < pl.col("start_year"))).height
    if bad:
        raise ValueError(f"treatments: {bad} course(s) end before they start (end_year < start_year)")
    by_cohort = starts.group_by("start_year").agg(pl.len().alias("persons"), pl.col("_ongoing").sum().alias("ongoing"))
    complete = sorted(int(y) for y, n in by_cohort.filter(pl.col("ongoing") == 0).select("start_year", "persons").iter_rows())
    ongoing = int(by_cohort.get_column("ongoing").sum()) if by_cohort.height else 0
    used = starts.filter(pl.col("start_year").is_in(complete))
    dated = used.height > 0 and used.get_column("course_days").null_count() == 0
    if dated:
        if (used.get_column("course_days") < 0).any():
            raise ValueError("treatments: course_days is negative (a course ends before it starts)")
        values = used.get_column("course_days").to_numpy().astype(float) / 365.25
        how = "dates: (SLUT_DATO − START_DATO) / 365.25 days"
    else:
        values = (used.get_column("end_year") - used.get_column("start_year")).to_numpy().astype(float)
        how = "years only: end_year − start_year (unbiased when starts are spread evenly over the year)"
    incomplete = sorted(int(y) for y in by_cohort.filter(pl.col("ongoing") > 0).get_column("start_year").to_list())
    return _mean_check(COURSE_YEARS, values, k, st, unit=unit, what="course length", test=test,
                       evidence={"complete_cohorts": complete, "incomplete_cohorts": incomplete,
                                 "ongoing_courses": ongoing, "last_year": last_year, "measured_by": how},
                       delta=delta)


def assumed_cost(params: ParameterSet) -> float:
    """The assumed cost per participant: ``−Σ costs[k].amount`` over every line, in the document's price year
    (a line quoted in another price year converted with the parameter set's price index)."""
    total = 0.0
    index = None
    for line in params.costs:
        f = 1.0
        if line.price_year is not None and line.price_year != params.price_year:
            if index is None:
                from som_models.projection.prices import load_price_index

                index = load_price_index(params.price_index)
            f = index.factor(line.price_year, params.price_year, "costs.price_year")
        total -= line.amount * f
    return total


def _cost(params: ParameterSet, costs: pl.DataFrame | None, st: VolumeSettings) -> _Check:
    unit = f"kroner per participant ({params.price_year} prices)"
    test = (f"z-tests of the mean cost per participant of the cost file against the band ±{100 * st.margin:g} % of "
            "the assumption")
    assumed = assumed_cost(params)
    if costs is None:
        return _mean_check(COST, np.zeros(0), assumed, st, unit=unit, what="cost per participant", test=test,
                           evidence={"cost_file": None})
    if "amount" not in costs.columns:
        raise ValueError(f"costs: column 'amount' not found; has {', '.join(costs.columns)}")
    amounts = costs.get_column("amount").cast(pl.Float64)
    if amounts.null_count() or not np.all(np.isfinite(amounts.to_numpy())):
        raise ValueError("costs: column 'amount' has empty or non-finite values")
    values = amounts.to_numpy().astype(float)
    converted = False
    if "price_year" in costs.columns:
        from som_models.projection.prices import load_price_index

        index = load_price_index(params.price_index)
        years = costs.get_column("price_year").cast(pl.Int64).fill_null(params.price_year).to_numpy()
        factors = np.array([index.factor(int(y), params.price_year, "costs.price_year") for y in years])
        converted = bool(np.any(years != params.price_year))
        values = values * factors
    return _mean_check(COST, values, assumed, st, unit=unit, what="cost per participant", test=test,
                       evidence={"price_year": params.price_year, "converted_price_year": converted})


# ----------------------------------------------------------------------------------------------- verdicts

def _level(alpha: float) -> str:
    return f"{100 * (1 - alpha):.4g} %"


def _fmt(x: float) -> str:
    return f"{x:,.4g}" if abs(x) < 1e4 else f"{x:,.0f}"


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3g}"


def _verdict(c: _Check, p_adj: float | None, h: int | None, tost_adj: float | None, tost_h: int | None, m: int,
             st: VolumeSettings) -> Verdict:
    delta = c.delta
    evidence: dict[str, Any] = {**c.evidence, "kind": "volume", "gate": c.gate, "alpha": st.alpha,
                                "margin_abs": delta, "family_size": m, "ci_level": None,
                                "note": "descriptive check of register counts and means, not a causal estimate"}
    base: dict[str, Any] = dict(assumption=c.assumption, outcome=c.outcome, margin=st.margin, assumed=c.assumed,
                                realised=c.realised, statistic=c.statistic, p_value=c.p_value, p_adjusted=p_adj)
    if c.gate == "not-observed":
        why = {PARTICIPANTS: "no cohort year was observed in the delivery",
               COURSE_YEARS: "no cohort in the data has completed its courses (or the register has no end dates)",
               COST: "the delivery and the spec carry no cost file"}[c.assumption]
        return Verdict(**base, test="not tested", label="inconclusive", ci_low=None, ci_high=None,
                       evidence=evidence, sentence=f"Inconclusive: the {c.what} could not be checked: {why}.")
    if c.gate == "too-few-persons":
        n = c.evidence.get("n_treated")
        return Verdict(**base, test=f"{c.test} (not decided: too few persons)", label="inconclusive", ci_low=None,
                       ci_high=None, evidence=evidence,
                       sentence=f"Inconclusive: the {c.what} rests on only {n} persons (minimum {st.min_persons}).")
    assert c.p_value is not None and c.tost_p is not None and p_adj is not None and h is not None
    assert tost_adj is not None and tost_h is not None and c.realised is not None
    holm_txt = f"Holm-adjusted over {m} volume assumption{'s' if m != 1 else ''}"
    lo, hi = c.interval(1 - st.alpha / h)
    tlo, thi = c.interval(1 - 2 * st.alpha / tost_h)
    evidence["ci_level"] = f"{_level(st.alpha / h)} (Holm step 1 − α/{h}, {holm_txt}): the interval the test decided with"
    evidence["tost"] = {"p_value": c.tost_p, "p_adjusted": tost_adj, "ci_low": tlo, "ci_high": thi,
                        "level": _level(2 * st.alpha / tost_h), "margin_abs": delta, "holm_divisor": tost_h}
    evidence["holm_divisor"] = h
    fact = (f"the realised {c.what} was {_fmt(c.realised)} ({_level(st.alpha / h)} CI {_fmt(lo)} to {_fmt(hi)}, "
            f"{holm_txt}) against an assumed {_fmt(c.assumed)}")
    base.update(test=f"{c.test}, {holm_txt}", ci_low=lo, ci_high=hi, evidence=evidence)
    band = f"the band {_fmt(c.assumed - delta)} to {_fmt(c.assumed + delta)} around the assumption"
    if p_adj < st.alpha:
        over = c.realised < c.assumed
        word = "overestimated" if over else "underestimated"
        return Verdict(**base, label=f"refuted-{word}",
                       sentence=f"Refuted: {fact}; the interval lies outside {band}, so the assumption {word} it "
                                f"(Holm-adjusted {_p(p_adj)}).")
    if tost_adj < st.alpha and delta > 0:
        return Verdict(**base, label="consistent",
                       sentence=f"Consistent: {fact}; its {_level(2 * st.alpha / tost_h)} interval {_fmt(tlo)} to "
                                f"{_fmt(thi)} lies within {band} (TOST, Holm-adjusted {_p(tost_adj)}).")
    reason = ("a zero assumption has no band" if delta <= 0 else
              f"the data can show neither that it lies outside nor that it lies within {band} (TOST, Holm-adjusted "
              f"{_p(tost_adj)})")
    return Verdict(**base, label="inconclusive",
                   sentence=f"Inconclusive: {fact}; {reason}.")


def judge_volumes(params: ParameterSet, *, treatments: pl.DataFrame | None = None,
                  window: tuple[int, int] | None = None, costs: pl.DataFrame | None = None,
                  settings: VolumeSettings = VolumeSettings(),
                  tested: Sequence[str] = VOLUME_ASSUMPTIONS) -> tuple[Verdict, ...]:
    """Verdicts on participants, course length and cost per participant (module docstring).

    ``treatments``: the participants (``person_id``, ``start_year``, optional ``end_year``; control-arm persons
    already removed); ``window``: the first and last calendar year the delivery observes; ``costs``: one row per
    participant with ``amount`` (kroner, positive = cost) and optional ``price_year``; None = no cost file.
    """
    unknown = [a for a in tested if a not in VOLUME_ASSUMPTIONS]
    if unknown:
        raise ValueError(f"unknown volume assumption(s) {', '.join(unknown)}; known: {', '.join(VOLUME_ASSUMPTIONS)}")
    cohorts = None
    if treatments is not None and window is not None:
        cohorts = observed_cohorts(treatments, first_year=window[0], last_year=window[1])
    checks = {PARTICIPANTS: lambda: _participants(params, cohorts, settings),
              COURSE_YEARS: lambda: _course_years(params, treatments, None if window is None else window[1], settings),
              COST: lambda: _cost(params, costs, settings)}
    done = [checks[a]() for a in VOLUME_ASSUMPTIONS if a in tested]
    family = [c for c in done if c.gate is None]
    p_raw = [float(c.p_value) for c in family]  # type: ignore[arg-type]
    t_raw = [float(c.tost_p) for c in family]  # type: ignore[arg-type]
    adj = dict(zip((c.assumption for c in family), holm(p_raw), strict=True))
    div = dict(zip((c.assumption for c in family), holm_divisors(p_raw, settings.alpha), strict=True))
    tadj = dict(zip((c.assumption for c in family), holm(t_raw), strict=True))
    tdiv = dict(zip((c.assumption for c in family), holm_divisors(t_raw, settings.alpha), strict=True))
    return tuple(_verdict(c, adj.get(c.assumption), div.get(c.assumption), tadj.get(c.assumption),
                          tdiv.get(c.assumption), len(family), settings) for c in done)


def realised_cohorts_from(verdicts: Sequence[Mapping[str, Any]]) -> dict[int, int] | None:
    """The realised participants per cohort year recorded by a ``participants`` verdict (its ``evidence["cohorts"]``),
    from verdict records (:meth:`Verdict.to_record` or stored rows); None when there is none."""
    for v in verdicts:
        if v.get("assumption") == PARTICIPANTS:
            rows = (v.get("evidence") or {}).get("cohorts") or []
            return {int(r["year"]): int(r["realised"]) for r in rows} or None
    return None
