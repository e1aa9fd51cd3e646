"""Plain functions behind the evaluation assets: spec loading, effects, verdicts, proposal, projections.

Dagster assets in ``pipeline/defs`` are thin wrappers around these. There is one evaluation path: every way in
(``som evaluate`` on a delivery or a handed-over panel, the sensor, the schedule, a backfill) runs the Dagster
graph (:func:`pipeline.runner.run_evaluation`), so the same checks run and the same report is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

from pipeline import jsonio
from som_models.calibration import propose
from som_models.duration_assumptions import (
    DURATION_SCHEMA,
    duration_comparisons,
    duration_inference,
    estimate_durations,
)
from som_models.estimators import RealisedEffects, aggregate, estimate_realised_effects, success_indicator
from som_models.estimators.dispatch import estimate
from som_models.estimators.results import ESTIMATES_SCHEMA, DidResult
from som_models.evaluation_spec import (
    COURSE_PATH,
    EFFECT_PATH,
    PERSON,
    SUCCESS_RATE,
    EvaluationSpec,
    parse_evaluation_spec,
)
from som_models.evidence import CarryError, CarryStep, EvidenceWindow, RootChoice, carry_evidence
from som_models.parameters import ParameterError, ParameterSet, parse_parameter_set
from som_models.plausibility import ImplausibleProposal, Problem, plausibility_problems
from som_models.projection import Projection, project
from som_models.projection.ledger import compare_ledgers
from som_models.sequential import LookHistory, PriorLook
from som_models.verdicts import FEW_CLUSTERS, AssignmentInfo, PathCovariance, Verdict, judge
from som_models.volume_verdicts import VOLUME_ASSUMPTIONS, VolumeSettings, judge_volumes, realised_cohorts_from
from som_reference.strict_yaml import load_yaml

VERDICT_SCHEMA = {
    "assumption": pl.Utf8, "outcome": pl.Utf8, "label": pl.Utf8, "test": pl.Utf8, "statistic": pl.Float64,
    "p_value": pl.Float64, "p_adjusted": pl.Float64, "margin": pl.Float64, "assumed": pl.Float64,
    "realised": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64, "sentence": pl.Utf8, "evidence": pl.Utf8,
}
PRETREND_SCHEMA = {
    "outcome": pl.Utf8, "statistic": pl.Float64, "df": pl.Int64, "p_value": pl.Float64,
    "event_times": pl.List(pl.Int64), "event_cov": pl.List(pl.Float64),
    "cluster": pl.Utf8, "clusters": pl.Int64, "treated_clusters": pl.Int64,
    "n_units": pl.Int64, "cluster_scores": pl.List(pl.Float64),
    "ri_p": pl.Float64, "ri_tost_p": pl.Float64, "ri_detail": pl.Utf8,
}
#: the randomised arm as the dispatcher's rct design reads it (1 = intervention arm T, 0 = control arm C)
ARM_COLUMN = "arm_T"


@dataclass(frozen=True)
class LoadedSpec:
    path: Path
    spec: EvaluationSpec
    seed: ParameterSet
    seed_path: Path

    def data_path(self, name: str) -> Path | None:
        """A ``data.*`` path of the spec (``delivery``, ``panel``, ``treatments``) resolved against the spec file."""
        value = getattr(self.spec.data, name, None) if self.spec.data is not None else None
        return None if value is None else (self.path.parent / value).resolve()


def read_yaml(path: Path) -> Any:
    try:
        return load_yaml(path)
    except FileNotFoundError:
        raise ParameterError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ParameterError(f"{path}: is a folder, not a YAML file") from None
    except UnicodeDecodeError:
        raise ParameterError(f"{path}: not a UTF-8 text file") from None
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split()).removeprefix(f"{path}: ")  # the loader's own errors name the file too
        raise ParameterError(f"{path}: not valid YAML ({detail})") from None


def _named(path: Path, exc: Exception) -> str:
    """``exc``'s message beginning with ``path`` (once)."""
    message = str(exc)
    return message if message.startswith(f"{path}: ") else f"{path}: {message}"


def load_spec(path: str | Path) -> LoadedSpec:
    """Parse an evaluation spec and the seed parameter file it names (relative to the spec)."""
    path = Path(path).resolve()
    try:
        spec = parse_evaluation_spec(read_yaml(path))
    except ParameterError as exc:
        raise ParameterError(_named(path, exc)) from None
    seed_path = (path.parent / spec.parameters).resolve()
    try:
        seed = parse_parameter_set(read_yaml(seed_path))
    except ParameterError as exc:
        raise ParameterError(_named(seed_path, exc)) from None
    if seed.intervention != spec.intervention:
        raise ParameterError(f"{path}: intervention {spec.intervention!r} does not match "
                             f"{seed_path.name}'s {seed.intervention!r}")
    unknown = sorted(set(spec.outcomes) - set(outcomes_for(seed)) - {seed.success_measure.outcome})
    if unknown:
        raise ParameterError(f"{path}: outcomes: {', '.join(unknown)} is not a consequence item or the success outcome of "
                             f"{seed_path.name}")
    if spec.reestimate_consequences:
        bad = sorted(set(spec.reestimate_consequences) - {c.item for c in seed.consequences})
        if bad:
            raise ParameterError(f"{path}: reestimate_consequences: {', '.join(bad)} is not a consequence item of "
                                 f"{seed_path.name}")
    if spec.assumptions is not None:
        known = [*assumption_names(seed), *(d.assumption for d in spec.durations)]
        bad = [a for a in spec.assumptions if a not in known]
        if bad:
            effects = [a for a in known if a not in VOLUME_ASSUMPTIONS]
            raise ParameterError(f"{path}: assumptions: {', '.join(bad)} is not an assumption of {seed_path.name} "
                                 f"(it has {', '.join(effects)}) nor a volume assumption ({', '.join(VOLUME_ASSUMPTIONS)})")
    return LoadedSpec(path, spec, seed, seed_path)


def assumption_names(params: ParameterSet) -> list[str]:
    """The assumptions a parameter set states: ``success_rate``, ``effect_path:<item>`` per consequence item,
    ``course_path:<item>`` per causal course-year profile (:mod:`som_models.verdicts`) and the volume, course-length
    and cost assumptions (:data:`som_models.volume_verdicts.VOLUME_ASSUMPTIONS`)."""
    return [SUCCESS_RATE, *(f"{EFFECT_PATH}{c.item}" for c in params.consequences),
            *(f"{COURSE_PATH}{c.item}" for c in params.consequences if c.course is not None and c.course.kind != "descriptive"),
            *VOLUME_ASSUMPTIONS]


def assumptions_version(store, loaded: LoadedSpec):
    """The parameter version under test, seeding the store from the spec's parameter file the first time.

    ``parameter_version`` in the spec picks a version (any status but ``rejected``); by default it is the
    latest approved version. Returns the store's ``VersionRecord``.
    """
    from pipeline.store import StoreError

    seed = loaded.seed
    latest = store.ensure_parameter_set(loaded.spec.intervention, seed.to_dict(), title=seed.title,
                                        source=loaded.seed_path.name)
    wanted = loaded.spec.parameter_version
    if wanted is None or wanted == latest.version:
        return latest
    record = store.get_version(loaded.spec.intervention, wanted)
    if record.status == "rejected":
        raise StoreError(f"parameter_version {wanted} of {loaded.spec.intervention!r} was rejected; evaluate an "
                         "approved or superseded version")
    return record


def outcomes_for(params: ParameterSet) -> list[str]:
    """The success indicator first, then every consequence item (each a panel outcome column)."""
    return [params.success_measure.name, *(c.item for c in params.consequences)]


def map_outcomes(panel: pl.DataFrame, spec: EvaluationSpec) -> pl.DataFrame:
    """Rename the panel columns named in the spec's ``outcomes`` mapping to the item names they measure.

    Idempotent: an item already present (and its source column absent) counts as mapped.
    """
    renames = {}
    for item, col in spec.outcomes.items():
        if col == item:
            continue
        if col in panel.columns:
            if item in panel.columns:
                raise ParameterError(f"outcomes: the panel has both {col!r} and {item!r}; {item} would be ambiguous")
            renames[col] = item
        elif item not in panel.columns:
            raise ParameterError(f"outcomes: panel column {col!r} (for {item}) not found; panel has {', '.join(panel.columns)}")
    return panel.rename(renames) if renames else panel


def realised_effects(panel: pl.DataFrame, treatments: pl.DataFrame, spec: EvaluationSpec, params: ParameterSet, *,
                     assigned_by: str | None = None) -> RealisedEffects:
    """Event-time effects of the intervention on the success indicator and each consequence item.

    The estimation is :func:`som_models.estimators.dispatch.estimate` with the spec's ``design:`` block; the
    ``overall`` mean starts after the course (``min_e`` = the parameter set's course years); the event-time rows
    of the course (``e = 0 … K − 1``) test and update the course-year effects (``course_path:<item>``).

    * ``staggered`` / ``matched``: the cohort of a person is the first ``start_year`` in ``treatments``;
      persons in a randomised control arm (``arm`` = ``C``) did not receive the intervention and are compared,
      never counted as treated.
    * ``rct``: the persons of ``treatments`` with an arm (``T`` = 1, ``C`` = 0), randomised in their
      ``start_year``; everybody else in the panel is left out.

    Standard errors are clustered at :func:`cluster_level` (``assigned_by``: the delivery manifest's level of
    assignment). The metadata record ``cluster``, ``clusters`` and ``treated_clusters`` (see :func:`pretrend_frame`).
    """
    data, treatments = _estimation_inputs(panel, treatments, spec, params)
    block = spec.estimation
    cluster = cluster_level(spec, assigned_by)
    data = data.select(effects_columns(data, spec, params, cluster))
    if block.design == "rct":
        data = randomised_sample(data, treatments)
        settings = block.settings(alpha=spec.verdict.alpha, min_e=params.course_years, arm_col=ARM_COLUMN,
                                  start="start_year")
        result = estimate(data, outcomes=outcomes_for(params), id_col="person_id", time_col="year", settings=settings)
        arms = data.group_by("person_id").agg(pl.col(ARM_COLUMN).first())
        return replace(result, metadata={**result.metadata, "cluster": None, "clusters": arms.height,
                                         "treated_clusters": int(arms.get_column(ARM_COLUMN).sum())})
    treatments = _treated(treatments)
    if cluster is not None:
        data, cluster = assignment_cluster(data, treatments, cluster)
    years = calendar_event_times(data.get_column("year").unique().to_list(),
                                 treatments.get_column("start_year").drop_nulls().unique().to_list())
    first = min((e for e, d in years.items() if d >= params.course_years), default=params.course_years)
    settings = block.settings(alpha=spec.verdict.alpha, min_e=first, cluster=cluster)
    result = estimate_realised_effects(data, treatments, outcomes=outcomes_for(params), settings=settings)
    if all(e == d for e, d in years.items()):
        return result
    return relabel_event_times(result, years)


def effects_columns(data: pl.DataFrame, spec: EvaluationSpec, params: ParameterSet, cluster: str | None) -> list[str]:
    """The panel columns the realised-effects estimation reads: person, year, the outcomes, the design's columns
    (covariates, matching, weights, cluster) — so that the joins and the estimators copy nothing else."""
    block = spec.estimation
    wanted = ["person_id", "year", *outcomes_for(params), *block.columns(), block.options.get("weight_col"), cluster,
              spec.assigned_by, "start_year", ARM_COLUMN]
    return [c for c in dict.fromkeys(wanted) if c is not None and c in data.columns]


def _estimation_inputs(panel: pl.DataFrame, treatments: pl.DataFrame, spec: EvaluationSpec,
                       params: ParameterSet) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The panel with the spec's outcomes and the success indicator, and the treatments of the spec's
    intervention (a clear error when it has none)."""
    panel = prepare_outcomes(panel, spec, params)
    sm = params.success_measure
    data = success_indicator(panel, name=sm.name, outcome=sm.outcome, rule=sm.rule)
    if spec.intervention_code is not None and "intervention" in treatments.columns:
        treatments = treatments.filter(pl.col("intervention") == spec.intervention_code)
        if treatments.height == 0:
            raise ParameterError(f"no persons with intervention code {spec.intervention_code!r} in the intervention register")
    return data, treatments


def _treated(treatments: pl.DataFrame) -> pl.DataFrame:
    """The treatments without the randomised control arm (``arm`` = ``C``: compared, never counted as treated)."""
    if "arm" in treatments.columns:
        return treatments.filter(pl.col("arm").is_null() | (pl.col("arm") != "C"))
    return treatments


#: random assignments drawn by the evaluation's randomisation inference when they are too many to enumerate
RI_DRAWS, RI_SEED = 9999, 20_211


def rollout_inference(panel: pl.DataFrame, treatments: pl.DataFrame, spec: EvaluationSpec, params: ParameterSet,
                      effects: RealisedEffects, *, assigned_by: str | None = None) -> dict[str, dict[str, Any]]:
    """Randomisation inference over the roll-out for each tested assumption whose outcome rests on at most
    :data:`som_models.verdicts.VERY_FEW_CLUSTERS` treated clusters (staggered design, clustered at assignment):
    per outcome ``{"ri_p", "ri_tost_p", "ri_detail"}`` (:func:`som_models.estimators.randomisation.rollout_path_inference`;
    the tested event times, the assumed path and the margin are the verdict's own, from
    :func:`som_models.verdicts.comparisons`). Where the roll-out cannot be permuted (adoption varies within
    clusters, a period is missing) ``ri_p`` is null and ``ri_detail`` says why — the verdict then stays
    inconclusive and gives that reason. Empty when no outcome has so few treated clusters."""
    from som_models.estimators.event_study import with_cohort
    from som_models.estimators.randomisation import RolloutNotPermutable, rollout_path_inference
    from som_models.verdicts import VERY_FEW_CLUSTERS, comparisons

    meta = effects.metadata
    cluster = cluster_level(spec, assigned_by) if spec.estimation.design == "staggered" else None
    by_outcome: Mapping[str, Mapping[str, int]] = meta.get("clusters_by_outcome") or {}  # type: ignore[assignment]
    if cluster is None:
        return {}

    def treated_clusters(outcome: str) -> int | None:
        counts = by_outcome.get(outcome) or {"treated_clusters": meta.get("treated_clusters")}
        return counts.get("treated_clusters")

    comps = [c for c in comparisons(params, effects.table, {}, spec.verdict)
             if (spec.assumptions is None or c.assumption in spec.assumptions) and c.kind != "descriptive"
             and (k := treated_clusters(c.outcome)) is not None and k <= VERY_FEW_CLUSTERS]
    if not comps:
        return {}
    data, treatments = _estimation_inputs(panel, treatments, spec, params)
    treatments = _treated(treatments)
    data, column = assignment_cluster(data, treatments, cluster)
    data = with_cohort(data, treatments)
    events = effects.table.filter(pl.col("estimand") == "event")
    note = " (unconditional statistic; the design's covariates are not used)" if spec.estimation.covariates else ""
    out: dict[str, dict[str, Any]] = {}
    for c in comps:
        path = {int(p["event_time"]): float(p["assumed"]) for p in c.path
                if p.get("used") and p.get(c.year_key) in c.years}
        nuisance = {int(e): float(v) for e, v in events.filter(pl.col("outcome") == c.outcome)
                    .select("event_time", "estimate").iter_rows() if e is not None and e >= 0 and v is not None
                    and int(e) not in path}
        if not path:
            continue
        try:
            ri = rollout_path_inference(data, outcome=c.outcome, id_col="person_id", time_col="year",
                                        group_col="start_year", cluster_col=column, path=path, nuisance=nuisance,
                                        control=spec.control, margin=spec.verdict.margin * abs(c.assumed),
                                        draws=RI_DRAWS, seed=RI_SEED)
        except RolloutNotPermutable as exc:
            out[c.outcome] = {"ri_p": None, "ri_tost_p": None, "ri_detail": str(exc)}
            continue
        out[c.outcome] = {"ri_p": ri.p_value, "ri_tost_p": ri.tost_p, "ri_detail": ri.describe() + note}
    return out


def calendar_event_times(periods, cohorts) -> dict[int, int]:
    """Event time in the estimator's periods → years since start, for a panel whose years are not consecutive.

    The staggered estimators count event time in observed periods (``e = pos(t) − pos(g*)``, R ``did``'s
    convention; on survey waves 1975/1978 a 1976 cohort's 1978 wave is ``e = 0``), while a parameter set counts
    years since the start (``t − g``; consequence year 1 is ``K`` years after it). Each event time whose cells
    all lie the same number of years after their cohort's start gets that number; on consecutive years this is
    the identity. A panel on which one event time mixes cohorts at different distances (cohorts starting at
    different offsets between waves) cannot be matched to consequence years: an error says so.
    """
    obs = sorted(int(p) for p in periods)
    distances: dict[int, set[int]] = {}
    for g in sorted(int(c) for c in cohorts if c and int(c) > 0):
        first = next((k for k, t in enumerate(obs) if t >= g), None)
        if first is None or first == 0:
            continue
        for k, t in enumerate(obs):
            distances.setdefault(k - first, set()).add(t - g)
    mixed = sorted(e for e, d in distances.items() if len(d) > 1)
    if mixed:
        raise ParameterError(f"panel: the years are not consecutive and event time {mixed[0]} lies "
                             f"{' and '.join(str(d) for d in sorted(distances[mixed[0]]))} years after different cohorts' "
                             "start, so the effects cannot be matched to the parameter set's consequence years")
    return {e: next(iter(d)) for e, d in sorted(distances.items())}


def relabel_event_times(effects: RealisedEffects, years: Mapping[int, int]) -> RealisedEffects:
    """The effects with event times in years since start (:func:`calendar_event_times`): the tidy table's
    ``event_time``, and the event times of the per-outcome covariance (carried in the metadata)."""
    mapping = pl.DataFrame({"event_time": list(years), "_years": list(years.values())},
                           schema={"event_time": pl.Int64, "_years": pl.Int64})
    table = (effects.table.join(mapping, on="event_time", how="left")
             .with_columns(pl.coalesce("_years", "event_time").alias("event_time")).drop("_years")
             .select(effects.table.columns))
    note = "years since start (the panel's periods are not consecutive; the estimator's periods relabelled)"
    return replace(effects, table=table, metadata={**effects.metadata, "event_time_unit": note,
                                                   "event_time_years": {int(e): int(d) for e, d in years.items()}})


def cluster_level(spec: EvaluationSpec, assigned_by: str | None = None) -> str | None:
    """The panel column the standard errors are clustered by (None = the person).

    In order: the spec's ``design.cluster`` (``person`` or a column); else the level at which the intervention
    was assigned — the spec's ``assigned_by``, else the delivery manifest's (``assigned_by``); else the person.
    A design that cannot cluster (``rct``, ``matched``) refuses a known level of assignment unless the spec
    says ``design.cluster: person`` explicitly (its standard errors would otherwise overstate the precision).
    """
    block = spec.estimation
    if block.cluster is not None:
        return None if block.cluster == PERSON else block.cluster
    level = spec.assigned_by or assigned_by
    if level is None or level == PERSON:
        return None
    if block.design != "staggered":
        raise ParameterError(f"the intervention was assigned by {level}, but the {block.design} design cannot cluster its "
                             "standard errors; set design.cluster: person to accept person-level inference explicitly")
    return level


def assignment_cluster(data: pl.DataFrame, treatments: pl.DataFrame, column: str) -> tuple[pl.DataFrame, str]:
    """The cluster of each person at assignment: ``column`` itself when it is constant within person, else a new
    column ``{column}_at_assignment`` holding the value in the person's first treatment year (the last observed
    year before it, else the first observed) and, for persons never treated, in their first observed year."""
    if column not in data.columns:
        raise ParameterError(f"panel: cluster column {column!r} not found; has {', '.join(data.columns)}")
    nulls = data.get_column(column).null_count()
    if nulls:
        raise ParameterError(f"panel: cluster column {column!r} is empty in {nulls} row(s)")
    pairs = data.select("person_id", column).unique()
    if pairs.height == pairs.get_column("person_id").n_unique():
        return data, column
    starts = treatments.group_by("person_id").agg(pl.col("start_year").cast(pl.Int64).min().alias("_start"))
    rows = (data.select("person_id", "year", column).join(starts, on="person_id", how="left")
            .with_columns(pl.when(pl.col("_start").is_null()).then(0)
                          .when(pl.col("year") <= pl.col("_start")).then(1).otherwise(2).alias("_rank"),
                          pl.when(pl.col("year") <= pl.col("_start")).then(-pl.col("year"))
                          .otherwise(pl.col("year")).alias("_order")))
    name = f"{column}_at_assignment"
    chosen = rows.sort("person_id", "_rank", "_order").group_by("person_id").agg(pl.col(column).first().alias(name))
    return data.join(chosen, on="person_id", how="left"), name


def randomised_sample(data: pl.DataFrame, treatments: pl.DataFrame) -> pl.DataFrame:
    """The panel rows of the randomised persons with their arm (:data:`ARM_COLUMN`: 1 = ``T``, 0 = ``C``) and
    their randomisation year (``start_year``); a clear error when the data have no arm."""
    if "arm" not in treatments.columns:
        raise ParameterError("design rct: the treatments have no arm column (the intervention register's ARM, or map "
                             "data.columns.arm of a handed-over panel)")
    missing = treatments.filter(pl.col("arm").is_null()).get_column("person_id").n_unique()
    if missing:
        raise ParameterError(f"design rct: {missing} person(s) of the treatments have no arm (T or C)")
    units = treatments.group_by("person_id").agg(pl.col("start_year").cast(pl.Int64).min(),
                                                 pl.col("arm").n_unique().alias("_arms"), pl.col("arm").first())
    moved = units.filter(pl.col("_arms") > 1).height
    if moved:
        raise ParameterError(f"design rct: {moved} person(s) are listed in both arms")
    units = units.select("person_id", "start_year", (pl.col("arm") == "T").cast(pl.Float64).alias(ARM_COLUMN))
    return data.drop([c for c in ("start_year", ARM_COLUMN) if c in data.columns]).join(units, on="person_id", how="inner")


def _event_scores(effects: RealisedEffects) -> dict[str, tuple[list[int], np.ndarray, np.ndarray | None, int]]:
    """Per outcome: event times (in the estimates table's labels), the cross-products ``Ψ'Ψ`` (k × k) of the units'
    influence functions ``Ψ`` (n × k) of the dynamic aggregation, the clusters' sums ``S`` (G × k; None when not
    clustered) and ``n`` — from the influence functions chunk by chunk of units when the estimator defers them
    (:meth:`~som_models.estimators._influence.DeferredColumns.rows_view`), so ``Ψ`` is never held whole."""
    out = {}
    years: Mapping[int, int] = effects.metadata.get("event_time_years") or {}  # type: ignore[assignment]
    for outcome, result in (getattr(effects, "results", None) or {}).items():
        if not isinstance(result, DidResult):  # the rct design exposes no influence functions per event time
            continue
        try:
            dyn = aggregate(result, "dynamic")
        except ValueError:
            continue
        if not dyn.influence:
            continue
        times = sorted(dyn.influence)
        clusters = getattr(result, "clusters", None)
        cross, sums = _score_moments(dyn.influence, times, clusters)
        out[outcome] = ([years.get(e, e) for e in times], cross, sums, int(result.n_units))
    return out


#: units per chunk when the influence functions are read chunk by chunk (:func:`_score_moments`)
_SCORE_CHUNK = 1 << 16


def _score_moments(influence: Mapping[int, np.ndarray], times: list[int], clusters) -> tuple[np.ndarray, np.ndarray | None]:
    """``Ψ'Ψ`` and, when ``clusters`` (a code per unit) is given, ``S_c = Σ_{i∈c} ψ_i`` of the columns ``times`` of
    ``influence`` — accumulated over chunks of units when it can be read so, else from its dense columns."""
    view = influence.rows_view(times) if hasattr(influence, "rows_view") else None
    n = view.shape[0] if view is not None else len(np.asarray(influence[times[0]]))
    codes = None
    if clusters is not None and np.asarray(clusters).size == n:
        codes = np.asarray(clusters, dtype=np.int64)
    cross = np.zeros((len(times), len(times)))
    sums = np.zeros((int(codes.max()) + 1, len(times))) if codes is not None else None
    for r0 in range(0, n, _SCORE_CHUNK):
        r1 = min(n, r0 + _SCORE_CHUNK)
        block = (view.rows(r0, r1) if view is not None
                 else np.column_stack([np.asarray(influence[e], dtype=float)[r0:r1] for e in times]))
        cross += block.T @ block
        if sums is not None and codes is not None:
            np.add.at(sums, codes[r0:r1], block)
    return cross, sums


def event_covariances(effects: RealisedEffects) -> dict[str, PathCovariance]:
    """Covariance of each outcome's event-time ATTs from the units' influence functions.

    ``Ψ`` holds, per event time, the influence function of the dynamic aggregation (the same one whose
    ``Σ ψ² / n²`` is the event-time variance). Not clustered: ``V = Ψᵀ Ψ / n²``; clustered (the result's
    ``clusters``): ``V = G/(G − 1) · Σ_c S_c S_cᵀ / n²`` with ``S_c`` the sum of ``Ψ``'s rows in cluster ``c`` —
    the dispatcher's cluster-robust variance, so the diagonal reproduces the reported standard errors.
    """
    return _covariances(_event_scores(effects))


def _covariances(scores: Mapping[str, tuple[list[int], np.ndarray, np.ndarray | None, int]]) -> dict[str, PathCovariance]:
    """:func:`event_covariances` from the outcomes' :func:`_event_scores` (computed once per evaluation)."""
    out: dict[str, PathCovariance] = {}
    for outcome, (times, cross, sums, n) in scores.items():
        if sums is not None:
            g = sums.shape[0]
            gram = (g / (g - 1) if g > 1 else float("nan")) * (sums.T @ sums)
        else:
            gram = cross
        out[outcome] = PathCovariance.from_array(times, gram / float(n) ** 2)
    return out


def pretrend_frame(effects: RealisedEffects, rollout: Mapping[str, Mapping[str, Any]] | None = None) -> pl.DataFrame:
    """One row per outcome: the Wald pre-trend test, the covariance of its event-time estimates and the level of
    inference.

    ``event_cov`` is the row-major ``k × k`` matrix over ``event_times`` (used by the joint path test of
    the verdicts; null when the estimator does not expose influence functions). ``statistic`` / ``p_value`` are
    NaN where the design has no pre-trend test (``rct``: its pre-randomisation rows are balance checks).
    ``cluster`` is the column the standard errors are clustered by (null = the person), ``clusters`` and
    ``treated_clusters`` how many clusters (persons when not clustered) and how many of them hold a treated
    person — per outcome (the dispatcher's ``clusters_by_outcome`` when outcomes differ). ``ri_p`` / ``ri_tost_p`` /
    ``ri_detail``: the randomisation inference of :func:`rollout_inference` (``rollout``), null when not run.
    """
    rollout = rollout or {}
    scores = _event_scores(effects)  # one pass over the influence functions
    cov = _covariances(scores)
    meta = effects.metadata
    by_outcome: Mapping[str, Mapping[str, int]] = meta.get("clusters_by_outcome") or {}  # type: ignore[assignment]
    rows = []
    for k in effects.results:
        v = effects.pretrends.get(k)
        c = cov.get(k)
        counts = by_outcome.get(k) or {"clusters": meta.get("clusters"), "treated_clusters": meta.get("treated_clusters")}
        rows.append({"outcome": k, "statistic": v.statistic if v else float("nan"), "df": v.df if v else 0,
                     "p_value": v.p_value if v else float("nan"),
                     "event_times": list(c.event_times) if c else None,
                     "event_cov": [x for row in c.matrix for x in row] if c else None,
                     "cluster": meta.get("cluster"), "clusters": counts.get("clusters"),
                     "treated_clusters": counts.get("treated_clusters"), **_few_cluster_scores(scores.get(k), counts),
                     **{f: (rollout.get(k) or {}).get(f) for f in ("ri_p", "ri_tost_p", "ri_detail")}})
    return pl.DataFrame(rows, schema=PRETREND_SCHEMA)


def _few_cluster_scores(scores, counts: Mapping[str, Any]) -> dict[str, Any]:
    """The clusters' summed influence functions (row-major k × G over ``event_times``) and ``n`` of an outcome
    clustered with fewer than :data:`som_models.verdicts.FEW_CLUSTERS` treated clusters — what the verdicts'
    wild cluster bootstrap needs; nulls otherwise (person-level inference or enough clusters)."""
    treated = counts.get("treated_clusters")
    if scores is None or scores[2] is None or treated is None or treated >= FEW_CLUSTERS:
        return {"n_units": None, "cluster_scores": None}
    _, _, sums, n = scores
    return {"n_units": n, "cluster_scores": [float(x) for x in sums.T.ravel()]}


def covariance_from_frame(pretrends: pl.DataFrame) -> dict[str, PathCovariance]:
    """The :class:`PathCovariance` per outcome stored in a :func:`pretrend_frame` (empty if absent)."""
    if "event_times" not in pretrends.columns or "event_cov" not in pretrends.columns:
        return {}
    out = {}
    for row in pretrends.select("outcome", "event_times", "event_cov").to_dicts():
        times, flat = row["event_times"], row["event_cov"]
        if not times or not flat or len(flat) != len(times) ** 2:
            continue
        out[row["outcome"]] = PathCovariance.from_array(times, np.asarray(flat, dtype=float).reshape(len(times), len(times)))
    return out


def inference_from_frame(pretrends: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Per outcome, the level of inference stored in a :func:`pretrend_frame`: ``{"cluster": column or None
    (the person), "clusters": G, "treated_clusters": G₁}`` (empty when the frame predates these columns)."""
    if not {"cluster", "clusters", "treated_clusters"} <= set(pretrends.columns):
        return {}
    extra = [c for c in ("n_units", "cluster_scores", "event_times", "ri_p", "ri_tost_p", "ri_detail")
             if c in pretrends.columns]
    out = {}
    for r in pretrends.select("outcome", "cluster", "clusters", "treated_clusters", *extra).to_dicts():
        info = {"cluster": r["cluster"], "clusters": r["clusters"], "treated_clusters": r["treated_clusters"],
                "n_units": r.get("n_units"), "cluster_scores": None, "ri_p": r.get("ri_p"),
                "ri_tost_p": r.get("ri_tost_p"), "ri_detail": r.get("ri_detail")}
        flat, times = r.get("cluster_scores"), r.get("event_times")
        if flat and times and len(flat) % len(times) == 0:
            g = len(flat) // len(times)
            info["cluster_scores"] = {int(t): tuple(flat[i * g:(i + 1) * g]) for i, t in enumerate(times)}
        out[r["outcome"]] = info
    return out


def descriptive_contrast(panel: pl.DataFrame, treatments: pl.DataFrame, spec: EvaluationSpec,
                         params: ParameterSet) -> pl.DataFrame:
    """SØM's success-vs-non-success contrast by consequence year for the parameter set's *descriptive* consequence
    profiles (:func:`som_models.descriptive.estimate_descriptive`: within the persons of the intervention register,
    regression-adjusted for birth year and sex where the panel has them); an empty table when there are none.
    A descriptive profile is tested against this contrast, never against the causal effect path."""
    from som_models.descriptive import estimate_descriptive
    from som_models.estimators import CONSEQUENCE_SCHEMA

    if not any(c.kind == "descriptive" for c in params.consequences):
        return pl.DataFrame(schema=CONSEQUENCE_SCHEMA)
    panel = prepare_outcomes(panel, spec, params)
    if spec.intervention_code is not None and "intervention" in treatments.columns:
        treatments = treatments.filter(pl.col("intervention") == spec.intervention_code)
    res = estimate_descriptive(panel, treatments, params,
                               covariates=tuple(c for c in ("birth_year",) if c in panel.columns),
                               factors=tuple(c for c in ("sex",) if c in panel.columns), alpha=spec.verdict.alpha)
    return pl.DataFrame(schema=CONSEQUENCE_SCHEMA) if res is None else res.table


def duration_estimates(panel: pl.DataFrame, treatments: pl.DataFrame, spec: EvaluationSpec, params: ParameterSet, *,
                       assigned_by: str | None = None) -> pl.DataFrame:
    """Cox estimates of the spec's duration assumptions (:func:`som_models.duration_assumptions.estimate_durations`;
    an empty :data:`~som_models.duration_assumptions.DURATION_SCHEMA` frame when the spec has none).

    The same data as :func:`realised_effects`: the intervention's persons (``intervention_code``), the spec's
    design (``rct``: the arms; ``staggered``: cohorts against never / not-yet treated; ``matched``: the design's
    matching options) and standard errors clustered at :func:`cluster_level` (the person's cluster at assignment,
    :func:`assignment_cluster`). A duration's ``column`` may name the panel column or, when the spec's
    ``outcomes:`` maps it, the item it is mapped to.
    """
    if not spec.durations:
        return pl.DataFrame(schema=DURATION_SCHEMA)
    panel, treatments = _estimation_inputs(panel, treatments, spec, params)
    block = spec.estimation
    cluster = cluster_level(spec, assigned_by)
    if cluster is not None:
        panel, cluster = assignment_cluster(panel, _treated(treatments), cluster)
    renamed = {col: item for item, col in spec.outcomes.items()}
    matching = {k: v for k, v in block.options.items()
                if k in ("match_on", "exact", "pre_periods", "ratio", "caliper", "replace", "seed")}
    return estimate_durations(panel, treatments, spec.durations, design=block.design,
                              control=block.options.get("control", "never"), cluster=cluster, alpha=spec.verdict.alpha,
                              min_cell=spec.min_cell, columns=renamed, matching=matching)


def duration_summary(durations: pl.DataFrame) -> pl.DataFrame:
    """The hazard-ratio and survival-difference rows of :func:`duration_estimates` (what the Dagster metadata and
    the store show; the per-arm Kaplan–Meier rows stay in the asset)."""
    return (durations.filter(pl.col("estimand").is_in(["log_hazard_ratio", "hazard_ratio", "survival_difference"]))
            .select("outcome", "estimand", "event_time", "estimate", "se", "ci_low", "ci_high", "n_treated", "n_control"))


def look_history(store, evaluation: str, *, data_hash: str, data_vintage: str | None) -> LookHistory:
    """The earlier looks of ``evaluation`` stored in the parameter store, for the verdicts on ``data_hash``
    (:mod:`som_models.sequential`: a rerun on the same data is the same look again)."""
    prior = (PriorLook.from_record(r["sequential"], r["data_vintage"]) for r in store.look_records(evaluation))
    return LookHistory(data_hash=data_hash, vintage=data_vintage, prior=tuple(p for p in prior if p is not None))


def verdicts(params: ParameterSet, estimates: pl.DataFrame, pretrends: pl.DataFrame, spec: EvaluationSpec,
             covariance: Mapping[str, PathCovariance] | None = None,
             descriptive: pl.DataFrame | None = None, durations: pl.DataFrame | None = None,
             looks: LookHistory | None = None) -> tuple[Verdict, ...]:
    """The verdicts of :func:`som_models.verdicts.judge` with the spec's settings on the assumptions the spec
    tests (``assumptions:``; the Holm family is exactly these), with the covariance and the level of inference
    per outcome from ``pretrends`` (:func:`pretrend_frame`) and, in the pipeline, the earlier looks of the
    evaluation (:func:`look_history`: error control over repeated looks at cumulative vintages). The spec's
    duration assumptions are judged in the same family from ``durations`` (:func:`duration_estimates`; their
    level of inference is on its ``log_hazard_ratio`` rows)."""
    pre = dict(pretrends.select("outcome", "p_value").iter_rows())
    if covariance is None:
        covariance = covariance_from_frame(pretrends)
    inference = {outcome: AssignmentInfo(clusters=int(i["clusters"]), treated_clusters=int(i["treated_clusters"]),
                                         level=i["cluster"] or "person", cluster_scores=i.get("cluster_scores"),
                                         n_units=i.get("n_units"), exact_p=i.get("ri_p"),
                                         exact_tost_p=i.get("ri_tost_p"), ri_detail=i.get("ri_detail"))
                 for outcome, i in inference_from_frame(pretrends).items()
                 if i["clusters"] is not None and i["treated_clusters"] is not None}
    extra = []
    if spec.durations:
        frame = durations if durations is not None else pl.DataFrame(schema=DURATION_SCHEMA)
        extra = duration_comparisons(frame, spec.durations)
        inference.update(duration_inference(frame, spec.durations, spec.verdict))
    # the volume verdicts (participants, course length, cost) are judged apart (:func:`volume_verdicts`)
    tested = None if spec.assumptions is None else [a for a in spec.assumptions if a not in VOLUME_ASSUMPTIONS]
    return judge(params, estimates, pre, spec.verdict, covariance=covariance, tested=tested,
                 inference=inference, descriptive=descriptive if descriptive is not None and descriptive.height else None,
                 extra=extra, looks=looks)


def cost_file(loaded: LoadedSpec, delivery_folder: str | Path | None) -> Path | None:
    """The cost file of an evaluation: the spec's ``data.costs`` (relative to the spec), else the delivery's file
    ``costs.*`` listed in its manifest, else None."""
    named = loaded.data_path("costs")
    if named is not None:
        return named
    if delivery_folder is None:
        return None
    from pipeline.registers import read_manifest
    from pipeline.registers.costs import delivery_cost_files

    manifest = read_manifest(Path(delivery_folder))
    found = delivery_cost_files(manifest)
    if len(found) > 1:
        raise ParameterError(f"delivery {manifest.folder}: more than one cost file ({', '.join(found)})")
    return manifest.folder / found[0] if found else None


def read_costs(path: Path) -> pl.DataFrame:
    """A cost file as ``amount`` (kroner per participant, positive = cost) and ``price_year`` (null = the parameter
    set's price year): :func:`pipeline.registers.costs.read_cost_file` (columns ``BELOEB`` and optional ``PRISAAR``;
    finite, not negative, within the plausible range); errors name the file, column, rule and rows."""
    from pipeline.registers.costs import read_cost_file
    from pipeline.registers.files import DeliveryError

    if not Path(path).is_file():
        raise ParameterError(f"cost file {path}: not found")
    try:
        return read_cost_file(path)
    except DeliveryError as exc:
        raise ParameterError(f"cost file {path}: {exc}") from None


def intervention_participants(treatments: pl.DataFrame, spec: EvaluationSpec) -> pl.DataFrame:
    """The persons who received the intervention: the spec's ``intervention_code`` (when the register has several)
    and not a randomised control arm (``arm`` = ``C``)."""
    if spec.intervention_code is not None and "intervention" in treatments.columns:
        treatments = treatments.filter(pl.col("intervention") == spec.intervention_code)
    if "arm" in treatments.columns:
        treatments = treatments.filter(pl.col("arm").is_null() | (pl.col("arm") != "C"))
    return treatments


def observed_window(period_start: str, period_end: str) -> tuple[int, int]:
    """The calendar years a delivery observes whole: from the year of ``period_start`` to the year of
    ``period_end`` (the year before when the period ends before 31 December)."""
    import datetime as dt

    start, end = dt.date.fromisoformat(period_start), dt.date.fromisoformat(period_end)
    last = end.year if (end.month, end.day) == (12, 31) else end.year - 1
    return start.year, max(last, start.year)


def volume_verdicts(params: ParameterSet, treatments: pl.DataFrame, spec: EvaluationSpec, *,
                    window: tuple[int, int], costs: pl.DataFrame | None) -> tuple[Verdict, ...]:
    """Verdicts on participants per cohort, course length and cost per participant
    (:func:`som_models.volume_verdicts.judge_volumes`) with the spec's ``alpha``, ``volume_margin`` and
    ``min_persons`` — those of them the spec's ``assumptions:`` names (all when it names none)."""
    tested = VOLUME_ASSUMPTIONS if spec.assumptions is None else tuple(
        a for a in VOLUME_ASSUMPTIONS if a in spec.assumptions)
    if not tested:
        return ()
    settings = VolumeSettings(alpha=spec.verdict.alpha, margin=spec.volume_margin, min_persons=spec.verdict.min_persons)
    return judge_volumes(params, treatments=intervention_participants(treatments, spec), window=window, costs=costs,
                         settings=settings, tested=tested)


def verdict_frame(items: tuple[Verdict, ...]) -> pl.DataFrame:
    rows = []
    for v in items:
        rec = v.to_record()
        rec["evidence"] = jsonio.dumps(rec["evidence"], indent=None)
        rows.append(rec)
    return pl.DataFrame(rows, schema=VERDICT_SCHEMA)


def _update_rule(spec: EvaluationSpec) -> dict[str, Any]:
    """The keyword arguments of :func:`som_models.calibration.propose` an evaluation spec sets — its update rule
    (policy, ``prior_cv``, α, the items re-estimated, ``min_persons``, whether the success rate is tested). The
    proposal uses it, and so does the re-derivation of a carried version from its run's stored spec."""
    return {"policy": spec.update_policy, "prior_cv": spec.prior_cv, "alpha": spec.verdict.alpha,
            "items": spec.reestimate_consequences, "min_persons": spec.verdict.min_persons,
            "update_success": spec.assumptions is None or "success_rate" in spec.assumptions}


def proposal_document(params: ParameterSet, estimates: pl.DataFrame, spec: EvaluationSpec, *, run_label: str,
                      consequence_estimates: pl.DataFrame | None = None,
                      descriptive: pl.DataFrame | None = None, prior: ParameterSet | None = None,
                      root: RootChoice | None = None,
                      realised_cohorts: Mapping[int, int] | None = None) -> tuple[dict, str, tuple]:
    """The proposed parameter document, the reason and the list of changes (causal profiles from the ATT path,
    descriptive ones from the descriptive contrast; a profile keeps its kind; the cohorts already observed with
    their realised participants, ``realised_cohorts``).

    ``prior`` (the parameters of ``root``, :mod:`som_models.evidence`, with the evidence ``root.carried`` carried
    into them) is the prior the update combines with when the evidence overlaps evidence that informs
    ``params``; the reason and ``provenance.prior`` name it and why — ``provenance.prior.carried`` the versions
    whose evidence was carried, ``provenance.prior.not_carried`` those whose values could not be re-derived
    (both only when not empty; the reason then starts with a warning, :attr:`RootChoice.warning`).
    """
    use_root = root is not None and not root.is_current
    label = ""
    if use_root and root is not None:
        label = f"root prior: version {root.version}" + (
            f" with the evidence of version{'s' if len(root.carried) > 1 else ''} "
            f"{', '.join(str(s.version) for s in root.carried)} carried" if root.carried else "")
    p = propose(params, estimates, **_update_rule(spec), evidence_label=run_label,
                consequence_estimates=consequence_estimates,
                descriptive=descriptive if descriptive is not None and descriptive.height else None,
                prior=prior if use_root else None, prior_label=label, realised_cohorts=realised_cohorts)
    doc = dict(p.document)
    doc["provenance"] = {"updated_by": spec.evaluation, "policy": spec.update_policy,
                         "changes": jsonio.to_jsonable(list(p.changes))}
    reason = p.reason
    if root is not None:
        record: dict[str, Any] = {"version": root.version, "reason": root.reason}
        described = root.to_dict()
        if root.carried:
            record["carried"] = described["carried_evidence"]
        if root.not_carried:
            record["not_carried"] = described["not_carried"]
        doc["provenance"]["prior"] = record
        if use_root:
            reason = f"{reason}; {root.reason}"
        if root.warning:
            reason = f"{root.warning}. {reason}"
    parse_parameter_set(doc)  # the proposal must itself be a valid parameter set
    extra = durations_reason(spec)
    return doc, f"{reason.rstrip('.')}. {extra}" if extra else reason, p.changes


def durations_reason(spec: EvaluationSpec) -> str:
    """What the proposal does with the spec's duration assumptions: nothing — an assumed hazard ratio is stated in
    the evaluation spec, not in the parameter set, so no parameter answers to it (said in the proposal's reason;
    empty when the spec has no durations)."""
    tested = [d.assumption for d in spec.durations if spec.assumptions is None or d.assumption in spec.assumptions]
    if not tested:
        return ""
    return (f"Duration assumption{'s' if len(tested) > 1 else ''} {', '.join(tested)} (hazard ratios stated in the "
            "evaluation spec, not parameters of the parameter set) were judged but update no parameter: the "
            "parameters are unchanged for them.")


def _update_prior(store, loaded: LoadedSpec, assumptions: Mapping[str, Any], *, data_vintage: str, data_hash: str,
                  window: Mapping[str, Any] | None):
    """The update's prior (:mod:`som_models.evidence`): the root choice for this evidence and, when the root is not
    the version under test, its parameters with the evidence between the root and the version under test carried
    into them (:func:`_carried_prior`). Raises :class:`pipeline.store.StoreError` when the evidence overlaps and
    the spec says ``overlap: refuse``. Reads the store only."""
    from pipeline.store import StoreError

    spec = loaded.spec
    params = parse_parameter_set(assumptions["content"])
    evidence = EvidenceWindow(evaluation=spec.evaluation, vintage=data_vintage, data_hash=data_hash,
                              **{k: (window or {}).get(k) for k in ("first_year", "last_year", "persons")})
    root = store.evidence_root(params.intervention, assumptions["version"], evidence)
    if not root.is_current and spec.overlap == "refuse" and not root.same_data:
        raise StoreError(f"{loaded.path.name}: the evidence ({evidence.describe()}) overlaps evidence that informs "
                         f"version {assumptions['version']} ({root.reason}); the spec says overlap: refuse, so no "
                         "version is proposed. Use overlap: root to update the root prior, or evaluate the root "
                         f"version (parameter_version: {root.version}).")
    if root.is_current:
        return root, None
    # a carried version that cannot be re-derived is excluded and the root chosen again: older evidence of its
    # evaluation that it superseded is then carried in its place (or stays in the root) instead of being dropped
    failed: dict[int, str] = {}
    while True:
        chosen, prior, new = _carried_prior(store, params.intervention, root, failed)
        if not new:
            return chosen, prior
        failed.update(new)
        root = store.evidence_root(params.intervention, assumptions["version"], evidence, exclude=tuple(sorted(failed)))


def _carried_prior(store, intervention: str, root: RootChoice,
                   failed: Mapping[int, str]) -> tuple[RootChoice, ParameterSet, dict[int, str]]:
    """The root's parameters successively updated with the evidence of ``root.carried``, oldest first
    (:func:`som_models.evidence.carry_evidence`), each re-derived from the store alone — the stored estimates and
    spec of the run that proposed the version, and its change record — the root choice saying what was carried
    and what could not be re-derived (``failed``, from earlier choices, and those found now; their values are not
    carried and the proposal's reason warns), and the versions found now that could not be re-derived."""
    prior = parse_parameter_set(store.get_version(intervention, root.version).content)
    if not root.carried and not root.not_carried and not failed:
        return root, prior, {}
    steps: list[CarryStep] = []
    new: dict[int, str] = {}
    for step in root.carried:
        try:
            steps.append(_carry_step(store, intervention, step.version, step.evidence))
        except CarryError as exc:
            new[step.version] = str(exc)
    carried = carry_evidence(prior, steps)
    new.update({v: why for v, why in carried.not_carried})
    if new:
        return root, prior, new
    # a version that could not be re-derived and now lies between the root and the version under test (a lineage's
    # version numbers increase towards it) is not carried; one the new root lies above is in the root's values
    listed = {s.version for s in root.carried} | {v for v, _ in root.not_carried}
    lost = [(v, why) for v, why in failed.items() if v > root.version and v not in listed]
    return (root.with_carry([c["version"] for c in carried.carried], lost), carried.prior, {})


def _carry_step(store, intervention: str, version: int, evidence: EvidenceWindow | None) -> CarryStep:
    """What the store holds of version ``version``'s evidence (:class:`som_models.evidence.CarryStep`); raises
    :class:`som_models.evidence.CarryError` when it cannot be re-derived (no run, no change record, a spec that
    no longer parses, a policy other than its record's)."""
    from pipeline.store import StoreError

    record = store.get_version(intervention, version)
    if evidence is None or record.evaluation_run_id is None:
        raise CarryError("not proposed by an evaluation run (seeded or written by hand)")
    try:
        run = store.get_run(record.evaluation_run_id)
    except StoreError as exc:
        raise CarryError(str(exc)) from None
    provenance = record.content.get("provenance")
    if not isinstance(provenance, Mapping) or not isinstance(provenance.get("changes"), list):
        raise CarryError("its content has no change record (provenance.changes)")
    try:
        spec = parse_evaluation_spec(run.spec)
    except (ParameterError, ValueError, KeyError, TypeError) as exc:
        raise CarryError(f"the spec of its run {run.id[:12]} cannot be read ({exc})") from None
    if provenance.get("updated_by") != run.evaluation_id or provenance.get("policy") != spec.update_policy:
        raise CarryError(f"its record (updated by {provenance.get('updated_by')!r}, policy "
                         f"{provenance.get('policy')!r}) is not its run's (evaluation {run.evaluation_id!r}, policy "
                         f"{spec.update_policy!r})")
    estimates = pl.DataFrame(store.estimates_for_run(run.id), schema=ESTIMATES_SCHEMA)
    return CarryStep(version=version, evidence=evidence, estimates=estimates,
                     changes=tuple(provenance["changes"]), content=record.content, rule=_update_rule(spec))


def proposal_candidate(loaded: LoadedSpec, assumptions: Mapping[str, Any], estimates: pl.DataFrame, *,
                       data_vintage: str, data_hash: str, descriptive: pl.DataFrame | None = None,
                       store=None, window: Mapping[str, Any] | None = None,
                       verdicts: pl.DataFrame | None = None) -> dict:
    """The proposal as a pure value — nothing is written: ``intervention``, ``parent_version``, ``content``,
    ``reason``, ``changes``, the data (``data_vintage``, ``data_hash``), the person-year ``window``, the update's
    prior (``prior``: :meth:`som_models.evidence.RootChoice.to_dict`, chosen from ``store`` — read only — when
    given; else the version under test) and the ``alpha`` its plausibility is judged at (:func:`proposal_problems`).
    The ``parameter_candidate`` asset; :func:`store_proposal` writes it. The content names the data (vintage and
    hash), never the run, so a rerun on the same data proposes the same content (no new version). ``verdicts``
    (the verdict frame) gives the realised participants of the cohorts already observed (the volume verdicts)."""
    params = parse_parameter_set(assumptions["content"])
    spec = loaded.spec
    root, prior = (None, None) if store is None else _update_prior(store, loaded, assumptions, data_vintage=data_vintage,
                                                                    data_hash=data_hash, window=window)
    label = f"evaluation {spec.evaluation} on vintage {data_vintage} (data sha256 {data_hash[:12]})"
    cohorts = realised_cohorts_from(_verdict_rows(verdicts)) if verdicts is not None else None
    doc, reason, changes = proposal_document(params, estimates, spec, run_label=label, descriptive=descriptive,
                                             prior=prior, root=root, realised_cohorts=cohorts)
    return {"intervention": params.intervention, "parent_version": assumptions["version"], "content": doc,
            "reason": reason, "changes": jsonio.to_jsonable(list(changes)), "data_vintage": data_vintage,
            "data_hash": data_hash, "alpha": float(spec.verdict.alpha), "window": dict(window) if window else None,
            "prior": None if root is None else root.to_dict()}


def _verdict_rows(verdicts: pl.DataFrame) -> list[dict[str, Any]]:
    """The verdict frame's rows with their evidence parsed (it is stored as JSON text in the frame)."""
    return [{**r, "evidence": json.loads(r["evidence"])} for r in verdicts.to_dicts()]


def proposal_problems(candidate: Mapping[str, Any], assumptions: Mapping[str, Any]) -> tuple[Problem, ...]:
    """What makes ``candidate`` implausible against the version under test (:mod:`som_models.plausibility`)."""
    return plausibility_problems(assumptions["content"], candidate["content"], candidate["changes"],
                                 alpha=float(candidate.get("alpha", 0.05)))


def store_proposal(store, loaded: LoadedSpec, assumptions: Mapping[str, Any], estimates: pl.DataFrame,
                   verdicts: pl.DataFrame, *, data_vintage: str, data_hash: str, code_version: str,
                   actor: str = "pipeline", descriptive: pl.DataFrame | None = None,
                   durations: pl.DataFrame | None = None, window: Mapping[str, Any] | None = None,
                   candidate: Mapping[str, Any] | None = None) -> dict:
    """Check the proposal, then record the run and store its estimates, verdicts and the proposed version in one
    transaction.

    ``assumptions`` is the version under test (``intervention``, ``version``, ``content``); ``candidate`` the
    :func:`proposal_candidate` (computed here, with ``window``, when not given). An implausible candidate raises
    :class:`som_models.plausibility.ImplausibleProposal` before anything is written. The hazard-ratio and
    survival-difference rows of ``durations`` (:func:`duration_summary`) are stored with the estimates. Returns
    the ``parameter_proposal`` dict of the Dagster asset.

    Evidence accounting: the candidate's ``window`` is the panel's person-year window (``first_year``,
    ``last_year``, ``persons``; :func:`som_models.evidence.panel_window`). When it overlaps evidence that informs
    the version under test, the spec's ``overlap`` decides: ``root`` (default) updates the root prior
    (:meth:`pipeline.store.ParameterStore.evidence_root`) — the verdicts still test the version under test —
    and ``refuse`` refuses the proposal (:class:`pipeline.store.StoreError`) before the run is recorded; a
    rerun on the data the version under test came from is not refused (the store links it to that version).
    """
    spec = loaded.spec
    params = parse_parameter_set(assumptions["content"])
    if candidate is None:
        candidate = proposal_candidate(loaded, assumptions, estimates, data_vintage=data_vintage, data_hash=data_hash,
                                       descriptive=descriptive, store=store, window=window, verdicts=verdicts)
    problems = proposal_problems(candidate, assumptions)
    if problems:
        raise ImplausibleProposal(problems, intervention=params.intervention)
    window = candidate.get("window") or window
    prior_record = candidate.get("prior") or {"prior_version": assumptions["version"],
                                              "tested_version": assumptions["version"], "skipped_versions": [],
                                              "overlapping_evidence": [], "reason": "the version under test"}
    prior_version = int(prior_record["prior_version"])
    run = store.record_run(evaluation_id=spec.evaluation, intervention=params.intervention, data_vintage=data_vintage,
                           data_hash=data_hash, code_version=code_version, spec=dict(spec.document),
                           tested_version=assumptions["version"])
    doc, reason, changes = candidate["content"], candidate["reason"], candidate["changes"]
    verdict_rows = _verdict_rows(verdicts)
    record = store.propose_version(
        intervention=params.intervention, parent_version=assumptions["version"], content=doc, reason=reason,
        run_id=run.id, data_vintage=data_vintage, data_hash=data_hash, code_version=code_version,
        evidence={"evaluation": spec.evaluation, "tested_version": assumptions["version"],
                  "changes": jsonio.to_jsonable(list(changes)), "prior": prior_record,
                  "verdicts": [{k: r[k] for k in ("assumption", "label", "sentence")} for r in verdict_rows]},
        estimates=[*estimates.to_dicts(), *(duration_summary(durations).to_dicts() if durations is not None else [])],
        verdicts=verdict_rows, actor=actor, window=window,
        prior_version=None if prior_version == assumptions["version"] else prior_version,
    )
    return {"intervention": record.intervention, "version": record.version, "status": record.status,
            "parent_version": record.parent_version, "content": record.content, "reason": record.reason,
            "run_id": run.id, "reused": record.reused, "code_version": code_version,
            "prior_version": prior_version, "prior_reason": prior_record["reason"]}


def projections(before: ParameterSet, after: ParameterSet) -> dict[str, Projection]:
    return {"before": project(before), "after": project(after)}


def projections_document(before: ParameterSet, after: ParameterSet) -> dict[str, Any]:
    """The ``projections`` asset's value: ``before`` / ``after`` (:meth:`Projection.to_dict` of the version under
    test and of the proposal) and ``udvalg_comparison`` — projected (the version under test) vs realised (the
    proposal, updated from the registers) per udvalg (:func:`som_models.projection.ledger.compare_ledgers`)."""
    out: dict[str, Any] = {k: v.to_dict() for k, v in projections(before, after).items()}
    out["udvalg_comparison"] = compare_ledgers(out["before"]["udvalg"], out["after"]["udvalg"])
    return out


def udvalg_comparison(before: Mapping[str, Any], after: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Projected vs realised per udvalg of two stored parameter documents (the version under test, the proposal):
    ``projections_document(...)["udvalg_comparison"]``; None without a proposal or when a document is not a
    calculation document."""
    if after is None:
        return None
    try:
        return projections_document(parse_parameter_set(before), parse_parameter_set(after))["udvalg_comparison"]
    except (ParameterError, ValueError, KeyError, TypeError):
        return None
def panel_columns_read(columns: Sequence[str], spec: EvaluationSpec, params: ParameterSet) -> list[str]:
    """The columns of a register panel the evaluation reads (the ``effects`` asset scans only these): every
    column except the register outcomes no part of the evaluation needs (:func:`needed_columns`: the success
    measure's outcome, the consequence items under the spec's ``outcomes:`` mapping, the durations, the design).
    Person, year, demographics, kommune and every other non-outcome column are kept, so the designs, the
    randomisation inference, the descriptive contrast and the durations see what they saw on the whole panel."""
    from pipeline.registers.config import outcome_registers

    # the items' own columns too: a spec may map an item to another column (a handed-over panel's name) and
    # still run on a register panel that has the item's column (map_outcomes accepts either)
    needed = {*needed_columns(spec, params), params.success_measure.outcome, *(c.item for c in params.consequences)}
    unused = set(outcome_registers()) - needed
    return [c for c in columns if c not in unused]


def needed_columns(spec: EvaluationSpec, params: ParameterSet) -> dict[str, list[str]]:
    """Panel column → what needs it: the success measure's outcome and each consequence item (under the spec's
    ``outcomes:`` mapping, the column named in brackets), the durations' columns and the design's columns — the
    columns :func:`prepare_outcomes` demands."""
    out: dict[str, list[str]] = {}

    def need(col: str, why: str) -> None:
        if why not in out.setdefault(col, []):
            out[col].append(why)

    for what, item in (("the success measure's outcome", params.success_measure.outcome),
                       *(("the consequence item", c.item) for c in params.consequences)):
        col = spec.outcomes.get(item, item)
        need(col, f"{what} {item}" + (f" ({col})" if col != item else ""))
    for d in spec.durations:
        for col in (d.column, *d.covariates):
            need(col, f"the duration {d.name} ({col})")
    for col in spec.estimation.columns():
        need(col, f"the design ({col})")
    return out


def tested_parameters(store, loaded: LoadedSpec) -> ParameterSet:
    """The parameter set the evaluation will test, looked up without writing anything: the spec's
    ``parameter_version`` or else the latest approved version in ``store`` (as :func:`assumptions_version` picks
    it), and the spec's seed file while the store does not know the intervention (``store`` ``None``: no store
    yet). A requested version the store lacks falls back to the seed here; :func:`assumptions_version` refuses it."""
    from pipeline.store import StoreError

    if store is None:
        return loaded.seed
    try:
        wanted = loaded.spec.parameter_version
        record = (store.latest_approved(loaded.spec.intervention) if wanted is None
                  else store.get_version(loaded.spec.intervention, wanted))
    except StoreError:
        return loaded.seed
    return parse_parameter_set(record.content)


def check_delivery_registers(loaded: LoadedSpec, manifest, params: ParameterSet | None = None) -> None:
    """Refuse (:class:`ParameterError`, one line) an evaluation that needs a panel column of a register the register
    delivery ``manifest`` neither delivers nor lists — such a register yields no column (docs/registers.md) — naming
    each such register, the items that need it and the delivery. ``params`` is the parameter set under test
    (:func:`tested_parameters`; the spec's seed when not given): its success measure and consequence items are
    what the evaluation needs. Panel deliveries are checked against their columns when staged
    (:func:`prepare_outcomes`)."""
    from pipeline.registers.config import REGISTERS, delivered_registers, outcome_registers

    if getattr(manifest, "kind", "registers") != "registers":
        return
    have = delivered_registers(manifest.files, manifest.registers)
    source = outcome_registers()
    lacking: dict[str, list[str]] = {}
    for col, whys in needed_columns(loaded.spec, params if params is not None else loaded.seed).items():
        reg = source.get(col)
        if reg is not None and reg not in have:
            lacking.setdefault(reg, []).extend(whys)
    if lacking:
        parts = [f"register {reg} ({REGISTERS[reg].title}) is needed by {', '.join(whys)}"
                 for reg, whys in sorted(lacking.items())]
        raise ParameterError(f"{loaded.path.name}: {'; '.join(parts)}, but delivery {manifest.folder.name} (vintage "
                             f"{manifest.vintage}) neither delivers nor lists it; deliver the register or evaluate "
                             "without those items")


def prepare_outcomes(panel: pl.DataFrame, spec: EvaluationSpec, params: ParameterSet) -> pl.DataFrame:
    """Map and check the outcome columns the evaluation needs, cast to float (clear error naming a bad column)."""
    panel = map_outcomes(panel, spec)
    needed = [params.success_measure.outcome, *(c.item for c in params.consequences)]
    for col in dict.fromkeys(needed):
        if col not in panel.columns:
            from pipeline.registers.config import outcome_registers

            reg = outcome_registers().get(col)
            source = (f"; from registers it comes from {reg} (a register neither delivered nor listed yields no column)"
                      if reg is not None else "")
            raise ParameterError(f"panel: outcome column {col!r} not found (map it with the spec's outcomes:){source}; "
                                 f"has {', '.join(panel.columns)}")
        try:
            panel = panel.with_columns(pl.col(col).cast(pl.Float64, strict=True))
        except Exception:
            raise ParameterError(f"panel: outcome column {col!r} is not numeric") from None
    renamed = {c: item for item, c in spec.outcomes.items()}
    for d in spec.durations:
        for col in (renamed.get(d.column, d.column), *d.covariates):
            if col not in panel.columns:
                raise ParameterError(f"panel: column {col!r} of duration {d.name} (durations:) not found; has "
                                     f"{', '.join(panel.columns)}")
            if not panel.schema[col].is_numeric():
                try:
                    panel = panel.with_columns(pl.col(col).cast(pl.Float64, strict=True))
                except Exception:
                    raise ParameterError(f"panel: column {col!r} of duration {d.name} is not numeric") from None
    block = spec.estimation
    wanted = [*block.columns(), *([spec.assigned_by] if spec.assigned_by not in (None, PERSON) and block.cluster is None
                                  else [])]
    missing = [c for c in dict.fromkeys(wanted) if c not in panel.columns]
    if missing:
        raise ParameterError(f"panel: column(s) {', '.join(missing)} named by the spec's design (covariates, matching, "
                             f"cluster or assigned_by) not found; has {', '.join(panel.columns)}")
    return panel
