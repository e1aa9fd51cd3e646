"""The planning side in the pipeline: the design and variances of an evaluation plan from a spec and a baseline,
and where a plan is stored (``<workdir>/plans/<intervention>-v<version>.json``, beside the version it plans).

The science is :mod:`som_models.planning`; this module only reads the inputs (a baseline panel, or a delivery
ingested on the fly) and writes the result. ``som plan`` (:mod:`pipeline.commands.plan`) and the report use it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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


def build_design(params: ParameterSet, level: str | None, panel: pl.DataFrame | None,
                 treatments: pl.DataFrame | None, *, controls: int | None = None,
                 treated_clusters: int | None = None) -> RolloutDesign:
    """The roll-out design: cohorts from the parameter set; comparison persons from the baseline (its never-treated
    persons) unless ``controls`` is given; with a level of assignment, treated clusters per cohort from the
    baseline's treatments (or ``treated_clusters`` in all, split over the cohorts) and the rest as comparison."""
    cohorts = {int(y): int(n) for y, n in params.cohorts}
    if controls is None:
        if panel is None:
            raise ValueError("the number of comparison persons is unknown: give a baseline (--baseline/--delivery) "
                             "or --controls")
        persons = panel.get_column("person_id").n_unique()
        treated = 0 if treatments is None else treatments.get_column("person_id").n_unique()
        controls = persons - treated if treatments is not None else persons - sum(cohorts.values())
    if level is None:
        return RolloutDesign(cohorts, int(controls), params.course_years)
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
    return RolloutDesign(cohorts, int(controls), params.course_years, level, per, control_clusters)


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


def make_plan(params: ParameterSet, spec: EvaluationSpec, *, panel: pl.DataFrame | None,
              treatments: pl.DataFrame | None, level: str | None, version: int | None, until: int | None = None,
              controls: int | None = None, treated_clusters: int | None = None, voi_draws: int = 20_000,
              voi_seed: int | None = None) -> EvaluationPlan:
    """The plan of ``params`` under ``spec`` (the one entry point of ``som plan`` and the notebook)."""
    from dataclasses import replace

    design = build_design(params, level, panel, treatments, controls=controls, treated_clusters=treated_clusters)
    comps, source = variances(params, panel, treatments, level, spec.outcomes)
    first = min(design.cohorts)
    longest = max((len(c.units) for c in params.consequences), default=1)
    last = until if until is not None else max(design.cohorts) + params.course_years + longest
    settings = PlanSettings(alpha=spec.verdict.alpha, margin=spec.verdict.margin, sequential=spec.verdict.sequential,
                            min_persons=spec.verdict.min_persons, volume_margin=spec.volume_margin)
    tested = None
    if spec.assumptions is not None:
        plannable = {"success_rate", "participants", *(f"effect_path:{c.item}" for c in params.consequences)}
        tested = [a for a in spec.assumptions if a in plannable]
    plan = plan_evaluation(params, design, comps, vintages=range(first, last + 1), settings=settings, tested=tested,
                           version=version, variance_source=source)
    voi = value_of_information(params, draws=voi_draws, seed=voi_seed)
    costs = (spec.document.get("follow_up_costs") or {}) if isinstance(spec.document, Mapping) else {}
    voi["follow_up_cost"] = dict(costs)
    return replace(plan, value_of_information=voi)
