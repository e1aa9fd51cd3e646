"""Duration assumptions of an evaluation spec: an assumed hazard ratio on the time to an event, tested by Cox.

Many consequences are times to an event — exit from homelessness, first conviction after the start, return to
self-support. An evaluation spec states such an assumption in its ``durations:`` list (``docs/evaluation-spec.md``):
the event, read from a panel column, the follow-up, and the assumed **hazard ratio** of the intervention (treated
against the comparison group; < 1 = the event comes later / less often, > 1 = sooner). The evaluation builds one
row per person (and stratum) from the person-year panel (:func:`person_durations`), fits a Cox model
(:func:`som_models.estimators.survival.duration_effects`: Efron ties, robust standard errors clustered at the
level of assignment) and pairs the realised log hazard ratio with the assumed one (:func:`duration_comparisons`),
so the verdict comes from the same :func:`som_models.verdicts.judge` as every other assumption, in the same Holm
family (the assumption is named ``duration:<name>`` in the spec's ``assumptions:``).

**Time.** The panel is yearly. For a person with origin ``o`` (the start year of their cohort / their
randomisation year) follow-up year ``k = 1, 2, …`` is calendar year ``o + from + k − 1`` (``from`` =
``follow_up_from``, default 1: the start year itself is partly before the start and is not follow-up). The
event happens in follow-up year ``k`` when ``k`` is the first follow-up year whose value of the column meets the
event rule (``zero``: = 0; ``positive``: > 0; ``at_least``/``at_most``: ≥ / ≤ ``value``); ``time = k``,
``event = 1``. Otherwise the person is censored at the last follow-up year observed without the event:
follow-up ends at the first of (i) the horizon (``time ≤ horizon``), (ii) the panel's last period, (iii) for a
not-yet-treated comparison person, the year before their own start, (iv) the first follow-up year in which the
person has no row or a missing value (died, emigrated, not delivered) — the years after a gap are not used.
Events and censoring in the same year are tied with the censored person still at risk (they were observed
through that year), as R ``survival`` treats ties between events and censoring.

**Persons already in the event state before the start** (rule ``baseline``): the baseline year is the person's
last observed year before the origin ``o`` (always before the intervention). ``exclude`` (default) leaves out
persons whose baseline value meets the event rule (nobody can exit homelessness who was not homeless) and persons
without a baseline year; ``keep`` keeps everybody (the event is then the first qualifying year in follow-up, e.g.
the first conviction after the start, whatever happened before). Persons without any follow-up year are left
out. The counts of every exclusion are reported per arm.

**Designs** (the spec's ``design``):

* ``rct`` — the randomised persons (treatments with an arm ``T``/``C``), origin = their randomisation year,
  ``T`` = 1; strata = randomisation years when there are several.
* ``staggered`` — cohort-aligned (stacked) comparison: for each cohort ``g`` (first treatment year), its
  treated persons and, with origin ``g``, the comparison persons: never treated (``control: never``), also the
  not yet treated (``control: notyet``: persons starting after ``g``, censored after their own year ``g' − 1``).
  One stratum per cohort (its own baseline hazard); a person in several stacks is one cluster. There is no
  differencing: the comparison rests on the baseline restriction and the duration's ``covariates`` (measured in
  the baseline year) — selection on observables, not parallel trends.
* ``matched`` — the matched comparison of :func:`som_models.estimators.matching.match_comparison` (the
  design's ``match_on``/``exact``/``pre_periods``/…, matched on the duration's column), one stratum per cohort,
  the match weights as case weights.

**Estimand and test.** The log hazard ratio ``β`` of the treated in a Cox model stratified by cohort, adjusted
for the duration's ``covariates``; the assumption is ``log(HR_assumed)``; the refutation test and TOST
(margin ``δ = equivalence_margin · |log HR_assumed|``) are those of :mod:`som_models.verdicts` on that scale.
An assumed HR of exactly 1 has no relative margin and cannot be shown consistent. The **pre-trend gate does not
apply** (a time to a first event after the start has no pre-period path to test); the verdict's evidence says so.
With a yearly panel the event times are grouped; Efron's ties make the Cox estimate close to the grouped-time
proportional-hazards effect when the yearly event probability is moderate (tests/test_duration_assumptions.py).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from som_models.comparison import Comparison
from som_models.estimators._numerics import NotEstimable
from som_models.estimators.results import ESTIMATES_SCHEMA
from som_models.estimators.survival import duration_effects
from som_models.parameters.schema import ParameterError, _int, _keys, _num, _str
from som_models.verdicts import FEW_CLUSTERS, VERY_FEW_CLUSTERS, WILD_DRAWS, WILD_SEED, AssignmentInfo, VerdictSettings

#: prefix of a duration assumption's name in the spec's ``assumptions:`` and in the verdicts
DURATION = "duration:"
EVENT_RULES = ("zero", "positive", "at_least", "at_most")
BASELINE_RULES = ("exclude", "keep")
DURATION_DESIGNS = ("rct", "staggered", "matched")
_ENTRY = {"name": True, "column": True, "event": True, "value": False, "horizon": True, "hazard_ratio": True,
          "follow_up_from": False, "baseline": False, "covariates": False, "description": False}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

#: the duration output: the estimates table (DESIGN §3.3; ``outcome`` = ``duration:<name>``; estimands
#: ``log_hazard_ratio``, ``hazard_ratio``, ``km`` by arm ``group`` and follow-up year ``event_time``,
#: ``survival_difference``) and, on the ``log_hazard_ratio`` row, the level of inference and the details
DURATION_SCHEMA: dict[str, Any] = {
    **ESTIMATES_SCHEMA, "cluster": pl.Utf8, "clusters": pl.Int64, "treated_clusters": pl.Int64,
    "cluster_scores": pl.List(pl.Float64), "details": pl.Utf8,
}
#: why the pre-trend gate is not applied to a duration assumption (stated in every duration verdict's evidence)
PRETREND_NOT_APPLICABLE = ("not applicable: the time to a first event after the start has no pre-period path to "
                           "test; the comparison rests on the design (randomisation, or the cohort-aligned or matched "
                           "comparison with the baseline rule and covariates)")


@dataclass(frozen=True)
class DurationAssumption:
    """One entry of the spec's ``durations:`` (see the module docstring)."""

    name: str
    column: str
    event: str
    horizon: int
    hazard_ratio: float
    value: float | None = None
    follow_up_from: int = 1
    baseline: str = "exclude"
    covariates: tuple[str, ...] = ()
    description: str = ""

    @property
    def assumption(self) -> str:
        """The name in ``assumptions:`` and in the verdicts: ``duration:<name>``."""
        return DURATION + self.name

    @property
    def log_hazard_ratio(self) -> float:
        return math.log(self.hazard_ratio)

    def event_text(self, column: str | None = None) -> str:
        """The event rule in words, e.g. ``shelter_nights = 0``."""
        col = column or self.column
        if self.event in ("zero", "positive"):
            return f"{col} = 0" if self.event == "zero" else f"{col} > 0"
        return f"{col} {'≥' if self.event == 'at_least' else '≤'} {self.value:g}"

    def event_expr(self, column: str) -> pl.Expr:
        """True in a year whose value of ``column`` meets the event rule."""
        c = pl.col(column)
        if self.event == "zero":
            return c == 0
        if self.event == "positive":
            return c > 0
        if self.value is None:  # refused by the parser
            raise ValueError(f"duration {self.name}: event {self.event} needs a value")
        return c >= self.value if self.event == "at_least" else c <= self.value


def _entry(obj: Any, k: int) -> DurationAssumption:
    path = f"durations[{k}]"
    _keys(obj, path, _ENTRY)
    name = _str(obj["name"], f"{path}.name")
    if not _NAME.match(name):
        raise ParameterError(f"{path}.name: {name!r} must start with a letter and hold only letters, digits and _")
    path = f"durations[{k}] ({name})"
    event = _str(obj["event"], f"{path}.event")
    if event not in EVENT_RULES:
        raise ParameterError(f"{path}.event: {event!r} is not one of {', '.join(EVENT_RULES)}")
    value = None
    if event in ("at_least", "at_most"):
        if obj.get("value") is None:
            raise ParameterError(f"{path}.value: event {event} needs a value (the threshold)")
        value = _num(obj["value"], f"{path}.value")
    elif obj.get("value") is not None:
        raise ParameterError(f"{path}.value: only for event at_least or at_most (event is {event})")
    hr = _num(obj["hazard_ratio"], f"{path}.hazard_ratio")
    if not hr > 0:
        raise ParameterError(f"{path}.hazard_ratio: the assumed hazard ratio must be > 0, got {hr:g}")
    baseline = obj.get("baseline", "exclude")
    if baseline not in BASELINE_RULES:
        raise ParameterError(f"{path}.baseline: {baseline!r} is not one of {', '.join(BASELINE_RULES)}")
    covs = obj.get("covariates", []) or []
    if isinstance(covs, str):
        covs = [covs]
    if not isinstance(covs, list):
        raise ParameterError(f"{path}.covariates: expected a list of panel columns, got {covs!r}")
    covariates = tuple(_str(c, f"{path}.covariates[{j}]") for j, c in enumerate(covs))
    if len(set(covariates)) != len(covariates):
        raise ParameterError(f"{path}.covariates: a column is listed twice")
    return DurationAssumption(
        name=name, column=_str(obj["column"], f"{path}.column"), event=event, value=value,
        horizon=_int(obj["horizon"], f"{path}.horizon", minimum=1), hazard_ratio=hr,
        follow_up_from=_int(obj.get("follow_up_from", 1), f"{path}.follow_up_from", minimum=0),
        baseline=baseline, covariates=covariates, description=str(obj.get("description", "") or ""))


def parse_durations(obj: Any, *, design: str, control: str = "never") -> tuple[DurationAssumption, ...]:
    """The spec's ``durations:`` list, strictly validated (errors name the entry and the key); ``design`` /
    ``control`` are the spec's, checked against the designs durations support."""
    if obj is None:
        return ()
    if not isinstance(obj, list) or not obj:
        raise ParameterError(f"durations: expected a non-empty list of duration assumptions, got {obj!r}")
    if design not in DURATION_DESIGNS:
        raise ParameterError(f"durations: the {design!r} design has no duration estimator (supported: "
                             f"{', '.join(DURATION_DESIGNS)})")
    out = tuple(_entry(x, k) for k, x in enumerate(obj))
    names = [d.name for d in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ParameterError(f"durations: {', '.join(dup)} named twice")
    return out


# ------------------------------------------------------------------------------------------------- data


def comparison_units(treatments: pl.DataFrame, persons: pl.Series, *, design: str,
                     control: str = "never") -> pl.DataFrame:
    """Who is compared with whom, from when: one row per (stratum, person) with ``person_id``, ``stratum`` (the
    origin year of follow-up), ``treated`` (1/0) and ``end_year`` (last calendar year the person may be followed
    as comparison: the year before their own start for a not-yet-treated person; null = no such limit).

    ``treatments``: ``person_id``, ``start_year`` and, for ``rct``, ``arm`` (``T``/``C``); ``persons``: every
    person of the panel (the never-treated pool of the ``staggered`` design). ``matched`` units come from
    :func:`matched_units`.
    """
    schema: dict[str, Any] = {"person_id": treatments.schema.get("person_id", pl.Utf8), "stratum": pl.Int64,
                              "treated": pl.Int8, "end_year": pl.Int64}
    if design == "rct":
        if "arm" not in treatments.columns:
            raise ParameterError("durations, design rct: the treatments have no arm column (T or C)")
        units = (treatments.filter(pl.col("arm").is_in(["T", "C"]))
                 .group_by("person_id").agg(pl.col("start_year").cast(pl.Int64).min().alias("stratum"),
                                            pl.col("arm").n_unique().alias("_arms"), pl.col("arm").first()))
        if units.filter(pl.col("_arms") > 1).height:
            raise ParameterError(f"durations, design rct: {units.filter(pl.col('_arms') > 1).height} person(s) are "
                                 "listed in both arms")
        return units.select("person_id", "stratum", (pl.col("arm") == "T").cast(pl.Int8).alias("treated"),
                            pl.lit(None, dtype=pl.Int64).alias("end_year")).sort("stratum", "person_id")
    if design != "staggered":
        raise ParameterError(f"durations: comparison_units serves the rct and staggered designs, not {design!r}")
    took = treatments
    if "arm" in took.columns:  # a randomised control arm did not receive the intervention
        took = took.filter(pl.col("arm").is_null() | (pl.col("arm") != "C"))
    starts = (took.filter(pl.col("start_year").is_not_null() & (pl.col("start_year") > 0))
              .group_by("person_id").agg(pl.col("start_year").cast(pl.Int64).min().alias("g")))
    never = (pl.DataFrame({"person_id": persons.unique()}).cast({"person_id": schema["person_id"]})
             .join(starts, on="person_id", how="anti"))
    frames = []
    for g in sorted(starts.get_column("g").unique().to_list()):
        treated = starts.filter(pl.col("g") == g).select("person_id", pl.lit(1, dtype=pl.Int8).alias("treated"),
                                                         pl.lit(None, dtype=pl.Int64).alias("end_year"))
        comp = never.select("person_id", pl.lit(0, dtype=pl.Int8).alias("treated"),
                            pl.lit(None, dtype=pl.Int64).alias("end_year"))
        parts = [treated, comp]
        if control == "notyet":
            parts.append(starts.filter(pl.col("g") > g).select(
                "person_id", pl.lit(0, dtype=pl.Int8).alias("treated"), (pl.col("g") - 1).alias("end_year")))
        frames.append(pl.concat(parts).with_columns(pl.lit(g, dtype=pl.Int64).alias("stratum")))
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames).select(list(schema)).cast(pl.Schema(schema))


def matched_units(match_weights: pl.DataFrame) -> pl.DataFrame:
    """Units of the ``matched`` design from :class:`som_models.estimators.matching.MatchResult` ``weights``
    (``group, unit, role, weight``): ``person_id``, ``stratum`` (= cohort), ``treated``, ``end_year`` (null),
    ``weight`` (the match weight: a case weight of the Cox model)."""
    return match_weights.select(pl.col("unit").alias("person_id"), pl.col("group").cast(pl.Int64).alias("stratum"),
                                (pl.col("role") == "treated").cast(pl.Int8).alias("treated"),
                                pl.lit(None, dtype=pl.Int64).alias("end_year"), pl.col("weight").cast(pl.Float64))


STATUS_USED = "used"
STATUS_BASELINE_EVENT = "event at baseline"
STATUS_NO_BASELINE = "no baseline year"
STATUS_NO_FOLLOW_UP = "no follow-up year"
STATUS_NO_COVARIATE = "covariate missing at baseline"


def person_durations(panel: pl.DataFrame, units: pl.DataFrame, assumption: DurationAssumption, *,
                     last_year: int, column: str | None = None) -> pl.DataFrame:
    """One row per unit (``person_id`` × ``stratum``) with the follow-up of the duration (module docstring).

    ``panel``: ``person_id``, ``year``, the event column (``column``, default the assumption's) and the
    covariates; ``units``: :func:`comparison_units` (or :func:`matched_units`); ``last_year``: the panel's last
    period (follow-up is censored there). Returns the units' columns plus ``baseline_year``, ``first_year`` (the
    calendar year of follow-up year 1), ``time`` (follow-up years to the event or to censoring), ``event`` (1/0),
    the covariates' baseline values and ``status`` (``used`` or why the unit is left out: ``event at baseline``,
    ``no baseline year``, ``covariate missing at baseline``, ``no follow-up year``); ``time``/``event`` are null
    for units left out.
    """
    col = column or assumption.column
    covs = list(assumption.covariates)
    need = ["person_id", "year", col, *covs]
    missing = [c for c in need if c not in panel.columns]
    if missing:
        raise ParameterError(f"duration {assumption.name}: panel column(s) {', '.join(missing)} not found")
    rows = (panel.select(need).filter(pl.col(col).is_not_null())
            .with_columns(assumption.event_expr(col).alias("_hit")))
    keys = ["person_id", "stratum"]
    joined = units.select(keys).join(rows, on="person_id", how="inner")
    # baseline: the last observed year before the origin
    base = (joined.filter(pl.col("year") < pl.col("stratum")).sort("year")
            .group_by(keys).agg(pl.col("year").last().alias("baseline_year"), pl.col("_hit").last().alias("_base_hit"),
                                *[pl.col(c).last().alias(c) for c in covs]))
    out = units.with_columns((pl.col("stratum") + assumption.follow_up_from).alias("first_year"))
    cap = pl.min_horizontal(pl.col("first_year") + assumption.horizon - 1, pl.lit(last_year, dtype=pl.Int64),
                            pl.col("end_year").fill_null(last_year))
    out = out.with_columns(cap.alias("_last"))
    follow = (joined.join(out.select(*keys, "first_year", "_last"), on=keys, how="inner")
              .filter((pl.col("year") >= pl.col("first_year")) & (pl.col("year") <= pl.col("_last")))
              .sort("year")
              .with_columns((pl.col("year") - pl.col("first_year")).alias("_k"),
                            pl.int_range(pl.len()).over(keys).alias("_idx"))
              .filter(pl.col("_k") == pl.col("_idx"))  # the consecutive run from follow-up year 1; a gap ends it
              .group_by(keys).agg(pl.len().alias("_observed"),
                                  (pl.col("_k").filter(pl.col("_hit")).min() + 1).alias("_event_time")))
    out = (out.join(base, on=keys, how="left").join(follow, on=keys, how="left")
           .with_columns(pl.col("_observed").fill_null(0)))
    no_cov = pl.any_horizontal(*[pl.col(c).is_null() for c in covs]) if covs else pl.lit(False)
    exclude = pl.lit(assumption.baseline == "exclude")
    status = (pl.when(exclude & pl.col("baseline_year").is_null()).then(pl.lit(STATUS_NO_BASELINE))
              .when(exclude & pl.col("_base_hit").fill_null(False)).then(pl.lit(STATUS_BASELINE_EVENT))
              .when(no_cov).then(pl.lit(STATUS_NO_COVARIATE))
              .when(pl.col("_observed") == 0).then(pl.lit(STATUS_NO_FOLLOW_UP))
              .otherwise(pl.lit(STATUS_USED)))
    out = out.with_columns(status.alias("status"))
    used = pl.col("status") == STATUS_USED
    out = out.with_columns(
        pl.when(used).then(pl.coalesce("_event_time", "_observed")).otherwise(None).cast(pl.Int64).alias("time"),
        pl.when(used).then(pl.col("_event_time").is_not_null().cast(pl.Int8)).otherwise(None).alias("event"))
    return out.drop("_last", "_base_hit", "_observed", "_event_time").sort(keys)


# ------------------------------------------------------------------------------------------- estimation


def _counts(d: pl.DataFrame, min_cell: int) -> dict[str, Any]:
    """Persons, events and exclusions per arm, each count below ``min_cell`` shown as suppressed."""
    def n(x: int) -> int | str:
        return x if x == 0 or x >= min_cell else f"suppressed (<{min_cell})"

    out: dict[str, Any] = {}
    for arm, label in ((1, "treated"), (0, "comparison")):
        a = d.filter(pl.col("treated") == arm)
        u = a.filter(pl.col("status") == STATUS_USED)
        out[label] = {"persons": n(u.get_column("person_id").n_unique()), "units": n(u.height),
                      "events": n(int(u.get_column("event").sum() or 0)),
                      "left_out": {s: n(int(c)) for s, c in a.filter(pl.col("status") != STATUS_USED)
                                   .group_by("status").len().sort("status").iter_rows()}}
    return out


def _row(outcome: str, estimand: str, **kw: Any) -> dict[str, Any]:
    return {**{k: None for k in DURATION_SCHEMA}, "outcome": outcome, "estimand": estimand, **kw}


def estimate_durations(panel: pl.DataFrame, treatments: pl.DataFrame, assumptions: Sequence[DurationAssumption], *,
                       design: str, control: str = "never", cluster: str | None = None, alpha: float = 0.05,
                       min_cell: int = 5, columns: Mapping[str, str] | None = None,
                       matching: Mapping[str, Any] | None = None) -> pl.DataFrame:
    """Cox estimates of every duration assumption (one :data:`DURATION_SCHEMA` frame).

    ``panel``: ``person_id``, ``year``, the event columns (``columns`` maps a duration's ``column`` to the
    panel's name when the spec's ``outcomes:`` renamed it), covariates and the ``cluster`` column (constant
    within person; None = the person); ``treatments``: ``person_id``, ``start_year`` (+ ``arm``). ``matching``:
    the design's matching options (``match_on``, ``exact``, ``pre_periods``, ``ratio``, ``caliper``,
    ``replace``, ``seed``). An assumption that cannot be estimated gets one ``log_hazard_ratio`` row without an
    estimate, its reason in ``details``.
    """
    columns = columns or {}
    last_year = int(panel.get_column("year").max())  # type: ignore[arg-type]
    base_units = None
    if design in ("rct", "staggered"):
        base_units = comparison_units(treatments, panel.get_column("person_id"), design=design, control=control)
    elif design != "matched":
        raise ParameterError(f"durations: the {design!r} design has no duration estimator")
    rows: list[dict[str, Any]] = []
    for a in assumptions:
        col = columns.get(a.column, a.column)
        outcome = a.assumption
        details: dict[str, Any] = {
            "design": design, "control": control if design == "staggered" else None, "event": a.event_text(col),
            "follow_up": f"years {a.follow_up_from}..{a.follow_up_from + a.horizon - 1} after the start year "
                         f"(follow-up year 1 = start year + {a.follow_up_from}), censored at {last_year}",
            "baseline_rule": a.baseline, "covariates": list(a.covariates), "hazard_ratio_assumed": a.hazard_ratio,
            "pretrend_gate": PRETREND_NOT_APPLICABLE, "cluster": cluster or "person"}
        try:
            units = base_units if base_units is not None else _matched(panel, treatments, col, matching or {})
            data = person_durations(panel, units, a, last_year=last_year, column=col)
            details["counts"] = _counts(data, min_cell)
            used = data.filter(pl.col("status") == STATUS_USED)
            if cluster is not None:
                used = used.join(panel.select("person_id", cluster).unique("person_id"), on="person_id", how="left")
            res = _fit(used, a, cluster=cluster, alpha=alpha)
        except (ValueError, NotEstimable) as exc:
            if isinstance(exc, ParameterError):
                raise
            rows.append(_row(outcome, "log_hazard_ratio",
                             details=json.dumps({**details, "not_estimable": str(exc)}, ensure_ascii=False)))
            continue
        cox = res.cox
        details.update(strata=int(cox.n_strata), cox_converged=bool(cox.converged), ties=cox.ties,
                       hazard_ratio=res.hazard_ratio, standard_errors=f"robust (sandwich), clustered by "
                       f"{cluster or 'person'} ({cox.n_clusters} clusters)", weighted=design == "matched")
        cl_col = cluster or "person_id"
        n_clusters = used.get_column(cl_col).n_unique()
        n_treated_cl = used.filter(pl.col("treated") == 1).get_column(cl_col).n_unique()
        scores = None
        if cluster is not None and n_treated_cl < FEW_CLUSTERS and cox.cluster_dfbeta is not None:
            scores = [float(x) for x in cox.cluster_dfbeta[:, 0]]
        for r in res.table.iter_rows(named=True):
            extra = {}
            if r["estimand"] == "log_hazard_ratio":
                extra = {"cluster": cluster, "clusters": n_clusters, "treated_clusters": n_treated_cl,
                         "cluster_scores": scores, "details": json.dumps(details, ensure_ascii=False)}
            rows.append(_row(outcome, r["estimand"], **{k: r[k] for k in ESTIMATES_SCHEMA if k not in ("outcome",
                                                                                                 "estimand")}, **extra))
    return pl.DataFrame(rows, schema=DURATION_SCHEMA) if rows else pl.DataFrame(schema=DURATION_SCHEMA)


def _matched(panel: pl.DataFrame, treatments: pl.DataFrame, column: str, opts: Mapping[str, Any]) -> pl.DataFrame:
    from som_models.estimators.matching import match_comparison

    took = treatments
    if "arm" in took.columns:
        took = took.filter(pl.col("arm").is_null() | (pl.col("arm") != "C"))
    starts = took.group_by("person_id").agg(pl.col("start_year").cast(pl.Int64).min().alias("_g"))
    data = panel.join(starts, on="person_id", how="left").with_columns(pl.col("_g").fill_null(0))
    match_on, exact = list(opts.get("match_on", ())), list(opts.get("exact", ()))
    pre = int(opts.get("pre_periods", 1))
    m = match_comparison(data, outcome=column, id_col="person_id", time_col="year", group_col="_g",
                         covariates=match_on, exact=exact, pre_periods=pre,
                         method="nearest" if (match_on or pre) else "exact", ratio=int(opts.get("ratio", 1)),
                         caliper=opts.get("caliper", 0.2), replace=bool(opts.get("replace", True)),
                         seed=int(opts.get("seed", 0)))
    return matched_units(m.weights)


def _fit(used: pl.DataFrame, a: DurationAssumption, *, cluster: str | None, alpha: float):
    if used.height == 0:
        raise ValueError("no person has a follow-up year under the duration's rules")
    arms = set(used.get_column("treated").unique().to_list())
    if arms != {0, 1}:
        raise ValueError("no " + ("comparison" if 1 in arms else "treated") + " person has a follow-up year under the "
                         "duration's rules")
    if not int(used.get_column("event").sum() or 0):
        raise ValueError(f"no event ({a.event_text()}) was observed in follow-up")
    data = used.with_columns(pl.format("{}:{}", "stratum", "person_id").alias("_unit"),
                             pl.col("time").cast(pl.Float64), pl.col("event").cast(pl.Float64))
    weighted = "weight" in data.columns
    strata = "stratum" if data.get_column("stratum").n_unique() > 1 else None
    kw: dict[str, Any] = {"group_col": "treated"} if weighted else {"arm_col": "treated"}
    return duration_effects(data, id_col="_unit", time_col="time", event_col="event", covariates=a.covariates,
                            strata_col=strata, weight_col="weight" if weighted else None,
                            cluster_col=cluster or "person_id", km_times=list(range(1, a.horizon + 1)),
                            outcome=a.assumption, alpha=alpha, **kw)


# -------------------------------------------------------------------------------------------- verdicts


def _lhr_row(frame: pl.DataFrame, a: DurationAssumption) -> dict[str, Any] | None:
    rows = frame.filter((pl.col("outcome") == a.assumption) & (pl.col("estimand") == "log_hazard_ratio")).to_dicts()
    return rows[0] if rows else None


def duration_comparisons(frame: pl.DataFrame, assumptions: Sequence[DurationAssumption]) -> list[Comparison]:
    """Each duration assumption paired with its realised log hazard ratio (:data:`DURATION_SCHEMA` ``frame``),
    for :func:`som_models.verdicts.judge` (``extra=``). ``n_treated`` = treated persons with follow-up."""
    out = []
    for a in assumptions:
        row = _lhr_row(frame, a)
        details = json.loads(row["details"]) if row and row.get("details") else {}
        what = f"log hazard ratio of the time to {details.get('event') or a.event_text()} ({a.name})"
        est, se = (row or {}).get("estimate"), (row or {}).get("se")
        ok = est is not None and se is not None and math.isfinite(est) and math.isfinite(se) and se > 0
        realised, realised_se = (float(est), float(se)) if ok and est is not None and se is not None else (None, None)
        if row is None:
            reason = "the duration was not estimated (no duration estimates in the evaluation's output)"
        else:
            reason = details.get("not_estimable", "")
        source = ("Cox proportional hazards (Efron ties), log hazard ratio treated vs comparison"
                  + (", stratified by cohort" if details.get("strata", 1) > 1 else "")
                  + (f", {details.get('standard_errors')}" if details.get("standard_errors") else ""))
        out.append(Comparison(
            assumption=a.assumption, outcome=a.assumption, assumed=a.log_hazard_ratio,
            realised=realised, se=realised_se,
            level_source=source if ok else (reason or "the Cox model could not be fitted"),
            n_treated=int((row or {}).get("n_treated") or 0), pretrend_p=None, path=(),
            unit="log hazard ratio (treated vs comparison; < 0 = the event comes later)", shape=None, years=(),
            what=what, kind="duration",
            details={**details, "hazard_ratio_assumed": a.hazard_ratio}))
    return out


def duration_inference(frame: pl.DataFrame, assumptions: Sequence[DurationAssumption],
                       settings: VerdictSettings) -> dict[str, AssignmentInfo]:
    """How each duration's treatment was assigned (:class:`~som_models.verdicts.AssignmentInfo`): clusters and
    treated clusters of the Cox fit and, with more than :data:`~som_models.verdicts.VERY_FEW_CLUSTERS` but fewer
    than :data:`~som_models.verdicts.FEW_CLUSTERS` treated clusters, the wild cluster bootstrap-t (Webb weights) of
    realised = assumed and of the TOST from the clusters' summed dfbeta of the log hazard ratio
    (``β̂ − β ≈ Σ_c D_c``, so the scores are ``D_c`` with ``n = 1``)."""
    from som_models.estimators.bootstrap import wild_cluster_bootstrap

    out = {}
    for a in assumptions:
        row = _lhr_row(frame, a)
        if row is None or row.get("clusters") is None or row.get("treated_clusters") is None:
            continue
        info = AssignmentInfo(clusters=int(row["clusters"]), treated_clusters=int(row["treated_clusters"]),
                              level=row.get("cluster") or "person")
        scores, est = row.get("cluster_scores"), row.get("estimate")
        if scores and est is not None and VERY_FEW_CLUSTERS < info.treated_clusters < FEW_CLUSTERS:
            delta = settings.margin * abs(a.log_hazard_ratio)
            wild = wild_cluster_bootstrap(np.asarray(scores, dtype=float), float(est), n=1,
                                          null=a.log_hazard_ratio, draws=WILD_DRAWS, seed=WILD_SEED,
                                          alpha=settings.alpha, margin=delta if delta > 0 else None)
            info = AssignmentInfo(clusters=info.clusters, treated_clusters=info.treated_clusters, level=info.level,
                                  wild_p=float(wild.p_value),
                                  wild_tost_p=None if wild.tost_p is None else float(wild.tost_p))
        out[a.assumption] = info
    return out
