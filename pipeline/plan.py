"""The planning side in the pipeline: the design and variances of an evaluation plan from a spec and a baseline,
and where a plan is stored (``<workdir>/plans/<intervention>-v<version>.json``, beside the version it plans).

The science is :mod:`som_models.planning`; this module only reads the inputs (a baseline panel, or a delivery
ingested on the fly) and writes the result. ``som plan`` (:mod:`pipeline.commands.plan`) and the report use it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipeline import jsonio
from pipeline.atomic import write_text_atomic
from som_models.evaluation_spec import EvaluationSpec
from som_models.parameters.schema import ParameterSet
from som_models.planning import (
    EvaluationPlan,
    PlanSettings,
    RolloutDesign,
    default_components,
    estimate_components,
    plan_evaluation,
    value_of_information,
)

PLANS = "plans"


def plan_path(workdir: Path, intervention: str, version: int | None) -> Path:
    return Path(workdir) / PLANS / f"{intervention}-v{version if version is not None else 'seed'}.json"


def save_plan(workdir: Path, plan: EvaluationPlan) -> Path:
    return write_text_atomic(plan_path(workdir, plan.intervention, plan.version), jsonio.dumps(plan.to_dict()))


def load_plan(workdir: Path | None, intervention: str, version: int | None) -> dict[str, Any] | None:
    """The stored plan of ``intervention`` version ``version`` (None when there is none)."""
    if workdir is None:
        return None
    path = plan_path(workdir, intervention, version)
    return jsonio.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def read_baseline(path: Path) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """A baseline panel file (Parquet or CSV) and, when a ``treatments.parquet`` sits beside it, the treatments."""
    if not path.is_file():
        raise ValueError(f"{path}: baseline panel not found")
    panel = pl.read_parquet(path) if path.suffix.lower() == ".parquet" else pl.read_csv(path)
    sibling = path.with_name("treatments.parquet")
    return panel, (pl.read_parquet(sibling) if sibling.is_file() and sibling != path else None)


def baseline_from_delivery(folder: Path, key: bytes) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Ingest a delivery into a temporary folder (the same path as ``som ingest``) and read its panel."""
    from pipeline.registers import ingest as run_ingest

    with tempfile.TemporaryDirectory(prefix="som-plan-") as tmp:
        result = run_ingest(folder, Path(tmp), key)
        return pl.read_parquet(result.panel), pl.read_parquet(result.treatments)


def _cohort_clusters(panel: pl.DataFrame, treatments: pl.DataFrame, level: str) -> dict[int, int]:
    first = panel.sort("year").group_by("person_id", maintain_order=True).agg(pl.col(level).first())
    starts = treatments.group_by("person_id").agg(pl.col("start_year").min())
    joined = starts.join(first, on="person_id", how="inner")
    return {int(r["start_year"]): int(r["n"]) for r in
            joined.group_by("start_year").agg(pl.col(level).n_unique().alias("n")).to_dicts()}


def observed_cohort_sizes(params: ParameterSet, panel: pl.DataFrame | None,
                          treatments: pl.DataFrame | None) -> tuple[dict[int, int], dict[int, str]]:
    """Cohort sizes for the plan: persons by the year of their first start in the baseline's treatments
    (:func:`som_models.volume_verdicts.observed_cohorts`, the count the participants verdict makes) for every year
    the baseline panel covers, the parameter set's cohorts for the later years. Returns ``(cohorts, source per
    cohort)``; without treatments every cohort is the parameter set's."""
    from som_models.volume_verdicts import observed_cohorts

    assumed = {int(y): int(n) for y, n in params.cohorts}
    if treatments is None or panel is None or not treatments.height:
        return assumed, {g: "parameter set" for g in assumed}
    last = int(panel.get_column("year").max())  # type: ignore[arg-type]
    first = min(min(assumed), int(panel.get_column("year").min()))  # type: ignore[arg-type]
    seen = {y: n for y, n in observed_cohorts(treatments, first_year=first, last_year=last).items() if n > 0}
    cohorts = {**{g: n for g, n in assumed.items() if g > last}, **seen}
    sources = {g: ("observed" if g in seen else "parameter set") for g in cohorts}
    return dict(sorted(cohorts.items())), dict(sorted(sources.items()))


def build_design(params: ParameterSet, level: str | None, panel: pl.DataFrame | None,
                 treatments: pl.DataFrame | None, *, controls: int | None = None,
                 treated_clusters: int | None = None, participants: pl.DataFrame | None = None) -> RolloutDesign:
    """The roll-out design: cohort sizes observed in the baseline's treatments where it has them, else the
    parameter set's (:func:`observed_cohort_sizes`; the design records which); comparison persons from the
    baseline (its never-treated persons) unless ``controls`` is given; with a level of assignment, treated clusters
    per cohort from the baseline's treatments (or ``treated_clusters`` in all, split over the cohorts) and the rest
    as comparison. ``participants``: the treatments of the intervention's participants (default ``treatments``),
    counted for the cohort sizes."""
    cohorts, sources = observed_cohort_sizes(params, panel, treatments if participants is None else participants)
    if controls is None:
        if panel is None:
            raise ValueError("the number of comparison persons is unknown: give a baseline (--baseline/--delivery) "
                             "or --controls")
        persons = panel.get_column("person_id").n_unique()
        treated = 0 if treatments is None else treatments.get_column("person_id").n_unique()
        controls = persons - treated if treatments is not None else persons - sum(cohorts.values())
    if level is None:
        return RolloutDesign(cohorts, int(controls), params.course_years, cohort_sources=sources)
    if panel is None or level not in panel.columns:
        raise ValueError(f"the intervention is assigned by {level!r}, but the baseline panel has no column {level!r}")
    total = panel.get_column(level).n_unique()
    if treated_clusters is not None:
        per = {g: max(1, round(treated_clusters * n / sum(cohorts.values()))) for g, n in cohorts.items()}
    elif treatments is not None and treatments.height:
        seen = _cohort_clusters(panel, treatments, level)
        missing = sorted(set(cohorts) - set(seen))
        if missing:
            raise ValueError(f"cohort year(s) {missing} of the parameter set have no treated persons in the baseline's "
                             "treatments, so their clusters are unknown: give --treated-clusters")
        per = {g: seen[g] for g in cohorts}
    else:
        raise ValueError(f"assigned by {level}: give --treated-clusters (the baseline has no treatments)")
    control_clusters = max(1, total - sum(per.values()))
    return RolloutDesign(cohorts, int(controls), params.course_years, level, per, control_clusters, sources)


def variances(params: ParameterSet, panel: pl.DataFrame | None, treatments: pl.DataFrame | None,
              level: str | None, outcome_columns: Mapping[str, str]) -> tuple[dict, str]:
    """Variance components of the success indicator and every consequence item: from the baseline when given, else
    the knowledge base's stated defaults. Returns ``(components, source sentence)``."""
    from som_models.estimators.event_study import success_indicator
    from som_models.parameters.schema import DESCRIPTIVE

    sm = params.success_measure
    if sm is None:
        raise ValueError(f"parameter set {params.intervention!r} has no success_measure: the success rate cannot be planned")
    items = [c.item for c in params.consequences if c.kind != DESCRIPTIVE]
    if panel is None:
        return default_components([sm.name, *items], params.target_group), "knowledge-base defaults (no baseline given)"
    panel = panel.rename({src: item for item, src in outcome_columns.items() if src in panel.columns and src != item})
    panel = success_indicator(panel, name=sm.name, outcome=sm.outcome, rule=sm.rule)
    comps = estimate_components(panel, [sm.name, *items], treatments=treatments, cluster=level,
                                source="baseline panel (untreated person-years)")
    return comps, "baseline panel: untreated person-years" + (f", clusters by {level}" if level else "")


def observed_volume_values(params: ParameterSet, panel: pl.DataFrame | None, participants: pl.DataFrame | None,
                           costs: pl.DataFrame | None) -> dict[str, np.ndarray | None]:
    """The individual values the simulated plans resample (:mod:`som_models.planning.volumes`), measured as the
    verdicts measure them (:mod:`som_models.volume_verdicts`): course lengths in years of the completed cohorts
    (``course_days / 365.25``, else ``end_year − start_year``) and the cost file's amounts per participant (in the
    parameter set's price year). None where the baseline has none."""
    from som_models.volume_verdicts import COST, COURSE_YEARS, first_starts

    out: dict[str, np.ndarray | None] = {COURSE_YEARS: None, COST: None}
    if participants is not None and panel is not None and participants.height:
        last = int(panel.get_column("year").max())  # type: ignore[arg-type]
        starts = first_starts(participants).with_columns(
            (pl.col("end_year").is_null() | (pl.col("end_year") > last)).alias("_ongoing"))
        open_cohorts = starts.filter(pl.col("_ongoing")).get_column("start_year").unique().implode()
        done = starts.filter(~pl.col("start_year").is_in(open_cohorts))
        if done.height >= 2:
            if done.get_column("course_days").null_count() == 0:
                out[COURSE_YEARS] = done.get_column("course_days").to_numpy().astype(float) / 365.25
            else:
                out[COURSE_YEARS] = (done.get_column("end_year") - done.get_column("start_year")).to_numpy().astype(float)
    if costs is not None and costs.height >= 2:
        values = costs.get_column("amount").cast(pl.Float64).to_numpy()
        if "price_year" in costs.columns:
            from som_models.projection.prices import load_price_index

            index = load_price_index(params.price_index)
            years = costs.get_column("price_year").cast(pl.Int64).fill_null(params.price_year).to_numpy()
            values = values * np.array([index.factor(int(y), params.price_year, "costs.price_year") for y in years])
        out[COST] = values
    return out


def make_plan(params: ParameterSet, spec: EvaluationSpec, *, panel: pl.DataFrame | None,
              treatments: pl.DataFrame | None, level: str | None, version: int | None, until: int | None = None,
              controls: int | None = None, treated_clusters: int | None = None, voi_draws: int = 20_000,
              voi_seed: int | None = None, costs: pl.DataFrame | None = None, sim_draws: int = 2000,
              sim_seed: int | None = None) -> EvaluationPlan:
    """The plan of ``params`` under ``spec`` (the science behind :func:`plan_version`; the notebook calls it).

    Cohort sizes are observed where the baseline's treatments have them (:func:`build_design`); the course length
    and cost per participant are planned by simulation with ``sim_draws`` draws and ``sim_seed`` (default: the
    parameter set's Monte Carlo seed), recorded in the plan."""
    from dataclasses import replace

    from pipeline.evaluation import intervention_participants
    from som_models.volume_verdicts import VOLUME_ASSUMPTIONS

    participants = None if treatments is None else intervention_participants(treatments, spec)
    design = build_design(params, level, panel, treatments, controls=controls, treated_clusters=treated_clusters,
                          participants=participants)
    comps, source = variances(params, panel, treatments, level, spec.outcomes)
    first = min(design.cohorts)
    longest = max((len(c.units) for c in params.consequences), default=1)
    last = until if until is not None else max(design.cohorts) + params.course_years + longest
    settings = PlanSettings(alpha=spec.verdict.alpha, margin=spec.verdict.margin, sequential=spec.verdict.sequential,
                            min_persons=spec.verdict.min_persons, volume_margin=spec.volume_margin,
                            sim_draws=sim_draws,
                            sim_seed=int(sim_seed if sim_seed is not None else params.monte_carlo.seed))
    tested = None
    if spec.assumptions is not None:
        plannable = {"success_rate", *VOLUME_ASSUMPTIONS, *(f"effect_path:{c.item}" for c in params.consequences)}
        tested = [a for a in spec.assumptions if a in plannable]
    plan = plan_evaluation(params, design, comps, vintages=range(first, last + 1), settings=settings, tested=tested,
                           version=version, variance_source=source,
                           volume_values=observed_volume_values(params, panel, participants, costs))
    voi = value_of_information(params, draws=voi_draws, seed=voi_seed)
    follow_up = (spec.document.get("follow_up_costs") or {}) if isinstance(spec.document, Mapping) else {}
    voi["follow_up_cost"] = dict(follow_up)
    unplanned = [a for a in (spec.assumptions or ()) if tested is not None and a not in tested]
    notes = plan.notes + ((f"Tested but not planned (no plan for this kind of assumption yet): "
                           f"{', '.join(unplanned)}.",) if unplanned else ())
    return replace(plan, value_of_information=voi, notes=notes)


def realised_vs_planned(plan: Mapping[str, Any] | None, verdicts: Sequence[Mapping[str, Any]], last_year: int, *,
                        min_cell: int = 5) -> list[dict[str, Any]]:
    """Realised against planned precision after an evaluation, as rows: ``assumption``, ``vintage`` (the planned
    vintage compared: the last one not after ``last_year``, the last register year the evaluated delivery holds —
    e.g. the largest ``time`` of its estimates; a plan's vintages are register years, not delivery labels such as
    ``2023-06``), ``planned_se``, ``realised_se`` (the
    verdict's ``evidence["se"]``; None when withheld — fewer than ``min_cell`` persons — or not estimated) and
    ``ratio`` = realised / planned. ``plan`` is a stored plan (:func:`load_plan`); verdicts are verdict records.
    A ratio well below 1 says the plan was too pessimistic (e.g. more persons treated than planned), above 1 the
    reverse (a larger design effect, attrition, a noisier outcome)."""
    from pipeline.disclosure import is_small

    if not plan:
        return []
    if isinstance(last_year, bool) or not isinstance(last_year, int):
        raise ValueError(f"last_year must be a register year (an integer such as 2022), got {last_year!r}")
    year = last_year
    by_name = {v.get("assumption"): v for v in verdicts}
    rows = []
    for a in plan.get("assumptions", []):
        v = by_name.get(a["assumption"])
        planned = [r for r in a.get("vintages", []) if int(r["vintage"]) <= year]
        if v is None or not planned:
            continue
        r = planned[-1]
        evidence = v.get("evidence") or {}
        se = evidence.get("se")
        if se is None or se != se or is_small(evidence.get("n_treated"), min_cell):
            se = None
        p = float(r["se"])
        rows.append({"assumption": a["assumption"], "vintage": int(r["vintage"]), "planned_se": p,
                     "realised_se": None if se is None else float(se),
                     "ratio": None if se is None or not p else float(se) / p})
    return rows


def plan_version(workdir: Path, loaded, params: ParameterSet, version: int | None, *, baseline: Path | None = None,
                 delivery: Path | None = None, key: bytes | None = None, **options: Any) -> tuple[EvaluationPlan, Path]:
    """Plan ``params`` (parameter version ``version``; None = the spec's seed file) of the loaded spec ``loaded``
    and store the plan beside the version (:func:`plan_path`). The one path of ``som plan`` and of the Dagster
    asset ``evaluation_plan`` that plans each approved version.

    The baseline is a panel file (``baseline``) or a delivery folder (``delivery``, ingested on the fly with the
    pseudonymisation ``key``; its cost file, or the spec's ``data.costs``, gives the cost values); neither: the
    knowledge base's variances and ``options["controls"]``. ``options`` go to :func:`make_plan`."""
    from pipeline.evaluation import cluster_level, cost_file, read_costs

    if baseline is not None and delivery is not None:
        raise ValueError("give a baseline panel or a delivery, not both")
    panel = treatments = None
    level = cluster_level(loaded.spec)
    if baseline is not None:
        panel, treatments = read_baseline(Path(baseline))
    elif delivery is not None:
        from pipeline.registers.handover import assignment_level

        if key is None:
            raise ValueError("planning from a delivery needs the pseudonymisation key")
        panel, treatments = baseline_from_delivery(Path(delivery), key)
        level = cluster_level(loaded.spec, assignment_level(Path(delivery)))
    costs_path = cost_file(loaded, delivery)
    costs = None if costs_path is None else read_costs(costs_path)
    plan = make_plan(params, loaded.spec, panel=panel, treatments=treatments, level=level, version=version,
                     costs=costs, **options)
    return plan, save_plan(Path(workdir), plan)
