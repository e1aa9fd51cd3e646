"""The evaluation spec: which intervention, which parameter seed, design and decision settings (strict)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from som_models.calibration import POLICIES
from som_models.parameters.schema import ParameterError, _keys, _num, _str
from som_models.verdicts import VerdictSettings

_ALLOWED = {
    "evaluation": True, "intervention": True, "title": False, "parameters": True, "design": False,
    "control": False, "base_period": False, "alpha": False, "equivalence_margin": False, "min_persons": False,
    "update_policy": False, "prior_cv": False, "min_cell": False, "notes": False, "intervention_code": False,
}


@dataclass(frozen=True)
class EvaluationSpec:
    evaluation: str
    intervention: str
    title: str
    parameters: str
    design: str
    control: str
    base_period: str
    verdict: VerdictSettings
    update_policy: str
    prior_cv: float
    min_cell: int
    document: Mapping[str, Any]
    intervention_code: str | None = None


def parse_evaluation_spec(doc: Mapping[str, Any]) -> EvaluationSpec:
    """Validate an evaluation spec; ``parameters`` is the seed parameter file (relative to the spec)."""
    _keys(doc, "", _ALLOWED)
    design = doc.get("design", "staggered")
    if design != "staggered":
        raise ParameterError(f"design: {design!r} is not supported yet (supported: staggered)")
    control = doc.get("control", "never")
    if control not in ("never", "notyet"):
        raise ParameterError(f"control: {control!r} is not one of never, notyet")
    base = doc.get("base_period", "varying")
    if base not in ("varying", "universal"):
        raise ParameterError(f"base_period: {base!r} is not one of varying, universal")
    policy = doc.get("update_policy", "precision_weighted")
    if policy not in POLICIES:
        raise ParameterError(f"update_policy: {policy!r} is not one of {', '.join(POLICIES)}")
    alpha = _num(doc.get("alpha", 0.05), "alpha", minimum=0)
    if not 0 < alpha < 0.5:
        raise ParameterError(f"alpha: must be in (0, 0.5), got {alpha}")
    return EvaluationSpec(
        evaluation=_str(doc["evaluation"], "evaluation"),
        intervention=_str(doc["intervention"], "intervention"),
        title=str(doc.get("title", "")),
        parameters=_str(doc["parameters"], "parameters"),
        design=design,
        control=control,
        base_period=base,
        verdict=VerdictSettings(alpha=alpha, margin=_num(doc.get("equivalence_margin", 0.5), "equivalence_margin", minimum=0),
                                min_persons=_num(doc.get("min_persons", 20), "min_persons", integer=True, minimum=1)),
        update_policy=policy,
        prior_cv=_num(doc.get("prior_cv", 0.5), "prior_cv", minimum=0),
        min_cell=_num(doc.get("min_cell", 5), "min_cell", integer=True, minimum=1),
        document=dict(doc),
        intervention_code=_str(doc["intervention_code"], "intervention_code") if doc.get("intervention_code") is not None else None,
    )
