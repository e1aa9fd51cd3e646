"""Plain functions behind the evaluation assets: spec loading, effects, verdicts, proposal, projections.

Dagster assets in ``pipeline/defs`` are thin wrappers around these; a notebook can call them directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from som_models.calibration import propose
from som_models.estimators import RealisedEffects, estimate_realised_effects, success_indicator
from som_models.evaluation_spec import EvaluationSpec, parse_evaluation_spec
from som_models.parameters import ParameterError, ParameterSet, parse_parameter_set
from som_models.projection import Projection, project
from som_models.verdicts import Verdict, judge

VERDICT_SCHEMA = {
    "assumption": pl.Utf8, "outcome": pl.Utf8, "label": pl.Utf8, "test": pl.Utf8, "statistic": pl.Float64,
    "p_value": pl.Float64, "p_adjusted": pl.Float64, "margin": pl.Float64, "assumed": pl.Float64,
    "realised": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64, "sentence": pl.Utf8, "evidence": pl.Utf8,
}


@dataclass(frozen=True)
class LoadedSpec:
    path: Path
    spec: EvaluationSpec
    seed: ParameterSet
    seed_path: Path


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParameterError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ParameterError(f"{path}: not valid YAML ({exc})") from None


def load_spec(path: str | Path) -> LoadedSpec:
    """Parse an evaluation spec and the seed parameter file it names (relative to the spec)."""
    path = Path(path).resolve()
    try:
        spec = parse_evaluation_spec(read_yaml(path))
    except ParameterError as exc:
        raise ParameterError(f"{path}: {exc}") from None
    seed_path = (path.parent / spec.parameters).resolve()
    try:
        seed = parse_parameter_set(read_yaml(seed_path))
    except ParameterError as exc:
        raise ParameterError(f"{seed_path}: {exc}") from None
    if seed.intervention != spec.intervention:
        raise ParameterError(f"{path}: intervention {spec.intervention!r} does not match {seed_path.name}'s {seed.intervention!r}")
    return LoadedSpec(path, spec, seed, seed_path)


def outcomes_for(params: ParameterSet) -> list[str]:
    """The success indicator first, then every consequence item (each a panel outcome column)."""
    return [params.success_measure.name, *(c.item for c in params.consequences)]


def realised_effects(panel: pl.DataFrame, treatments: pl.DataFrame, spec: EvaluationSpec, params: ParameterSet) -> RealisedEffects:
    """Event-time effects of the intervention on the success indicator and each consequence item."""
    missing = [c.item for c in params.consequences if c.item not in panel.columns]
    if missing:
        raise ParameterError(f"consequence item(s) {', '.join(missing)} are not panel outcomes (panel has {', '.join(panel.columns)})")
    sm = params.success_measure
    data = success_indicator(panel, name=sm.name, outcome=sm.outcome, rule=sm.rule)
    if spec.intervention_code is not None:
        treatments = treatments.filter(pl.col("intervention") == spec.intervention_code)
        if treatments.height == 0:
            raise ParameterError(f"no persons with intervention code {spec.intervention_code!r} in the intervention register")
    return estimate_realised_effects(data, treatments, outcomes=outcomes_for(params), control=spec.control,
                                     base_period=spec.base_period, alpha=spec.verdict.alpha, min_e=params.course_years)


def pretrend_frame(effects: RealisedEffects) -> pl.DataFrame:
    return pl.DataFrame(
        [{"outcome": k, "statistic": v.statistic, "df": v.df, "p_value": v.p_value} for k, v in effects.pretrends.items()],
        schema={"outcome": pl.Utf8, "statistic": pl.Float64, "df": pl.Int64, "p_value": pl.Float64},
    )


def verdicts(params: ParameterSet, estimates: pl.DataFrame, pretrends: pl.DataFrame, spec: EvaluationSpec) -> tuple[Verdict, ...]:
    pre = dict(pretrends.select("outcome", "p_value").iter_rows())
    return judge(params, estimates, pre, spec.verdict)


def verdict_frame(items: tuple[Verdict, ...]) -> pl.DataFrame:
    import json

    rows = []
    for v in items:
        rec = v.to_record()
        rec["evidence"] = json.dumps(rec["evidence"], default=float)
        rows.append(rec)
    return pl.DataFrame(rows, schema=VERDICT_SCHEMA)


def proposal_document(params: ParameterSet, estimates: pl.DataFrame, spec: EvaluationSpec, *, run_label: str) -> tuple[dict, str, tuple]:
    """The proposed parameter document, the reason and the list of changes."""
    p = propose(params, estimates, policy=spec.update_policy, prior_cv=spec.prior_cv, alpha=spec.verdict.alpha,
                evidence_label=run_label)
    doc = dict(p.document)
    doc.setdefault("provenance", {})
    doc["provenance"] = {"updated_by": spec.evaluation, "policy": spec.update_policy, "changes": list(p.changes)}
    parse_parameter_set(doc)  # the proposal must itself be a valid parameter set
    return doc, p.reason, p.changes


def projections(before: ParameterSet, after: ParameterSet) -> dict[str, Projection]:
    return {"before": project(before), "after": project(after)}
