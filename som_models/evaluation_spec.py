"""The evaluation spec: which intervention, which data, which parameter version, design and decision settings.

Strict: an unknown key is an error naming it. The format, with an example, is documented in
``docs/evaluation-spec.md``. Paths inside the spec (``parameters``, ``data.*``) are relative to the spec file;
they are kept as written here and resolved by the caller (``pipeline.evaluation.load_spec``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from som_models.calibration import POLICIES
from som_models.parameters.schema import ParameterError, _int, _keys, _num, _str
from som_models.verdicts import PATH_TESTS, VerdictSettings, consistency_problem

_ALLOWED = {
    "evaluation": True, "intervention": True, "intervention_code": False, "title": False, "parameters": True,
    "parameter_version": False,
    "data": False, "outcomes": False, "design": False, "control": False, "base_period": False, "alpha": False,
    "equivalence_margin": False, "consistency": False, "path_test": False, "min_persons": False,
    "update_policy": False, "prior_cv": False, "reestimate_consequences": False, "min_cell": False, "notes": False,
}
_DATA = {"delivery": False, "panel": False, "treatments": False, "columns": False}
_COLUMNS = {"person_id": False, "year": False, "start_year": False}


@dataclass(frozen=True)
class DataSource:
    """Where the evaluation's data come from: a register delivery folder, or a panel (+ treatments) file.

    ``columns`` maps the canonical names ``person_id``, ``year`` and ``start_year`` to the file's columns;
    without a treatments file the panel itself must carry the first treatment year (``start_year``;
    0 or empty = never treated).
    """

    delivery: str | None = None
    panel: str | None = None
    treatments: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)


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
    #: the parameter version under test: None = the latest approved version in the store
    parameter_version: int | None = None
    data: DataSource | None = None
    #: panel column of each consequence item / success-measure outcome (default: the same name)
    outcomes: Mapping[str, str] = field(default_factory=dict)
    #: consequence items whose profiles are re-estimated from the data (None = every item, () = none)
    reestimate_consequences: tuple[str, ...] | None = None
    #: the intervention's code in the register (``INDSATS``) and in a manifest's ``interventions`` list
    intervention_code: str | None = None


def _data(obj: Any) -> DataSource:
    _keys(obj, "data", _DATA)
    delivery = _str(obj["delivery"], "data.delivery") if obj.get("delivery") is not None else None
    panel = _str(obj["panel"], "data.panel") if obj.get("panel") is not None else None
    treatments = _str(obj["treatments"], "data.treatments") if obj.get("treatments") is not None else None
    if delivery and (panel or treatments):
        raise ParameterError("data: give either delivery or panel (+ treatments), not both")
    if treatments and not panel:
        raise ParameterError("data.treatments: needs data.panel")
    columns = _keys(obj.get("columns", {}) or {}, "data.columns", _COLUMNS)
    if columns and not panel:
        raise ParameterError("data.columns: only applies to a panel")
    return DataSource(delivery, panel, treatments, {k: _str(v, f"data.columns.{k}") for k, v in columns.items()})


def _outcomes(obj: Any) -> dict[str, str]:
    if not isinstance(obj, Mapping):
        raise ParameterError(f"outcomes: expected a mapping of item: panel column, got {type(obj).__name__}")
    out = {_str(k, "outcomes"): _str(v, f"outcomes.{k}") for k, v in obj.items()}
    columns = list(out.values())
    dup = sorted({c for c in columns if columns.count(c) > 1})
    if dup:
        raise ParameterError(f"outcomes: panel column(s) {', '.join(dup)} mapped to more than one item")
    return out


def _reestimate(obj: Any) -> tuple[str, ...] | None:
    if obj is True or obj == "all":
        return None
    if obj is False or obj == "none":
        return ()
    if isinstance(obj, list):
        return tuple(_str(x, f"reestimate_consequences[{k}]") for k, x in enumerate(obj))
    raise ParameterError(f"reestimate_consequences: expected true, false, all, none or a list of items, got {obj!r}")


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
    margin = _num(doc.get("equivalence_margin", 0.5), "equivalence_margin", minimum=0)
    if margin <= 0:
        raise ParameterError(f"equivalence_margin: must be > 0 (a share of the assumption), got {margin}")
    consistency = doc.get("consistency", "tost")
    if consistency_problem(consistency):
        raise ParameterError(consistency_problem(consistency))
    path_test = doc.get("path_test", "mean")
    if path_test not in PATH_TESTS:
        raise ParameterError(f"path_test: {path_test!r} is not one of {', '.join(PATH_TESTS)}")
    version = doc.get("parameter_version", "approved")
    if version in (None, "approved", "latest-approved"):
        version = None
    else:
        version = _num(version, "parameter_version", integer=True, minimum=1)
    return EvaluationSpec(
        evaluation=_str(doc["evaluation"], "evaluation"),
        intervention=_str(doc["intervention"], "intervention"),
        title=str(doc.get("title", "")),
        parameters=_str(doc["parameters"], "parameters"),
        design=design,
        control=control,
        base_period=base,
        verdict=VerdictSettings(alpha=alpha, margin=margin,
                                min_persons=_int(doc.get("min_persons", 20), "min_persons", minimum=1),
                                consistency=consistency, path_test=path_test),
        update_policy=policy,
        prior_cv=_num(doc.get("prior_cv", 0.5), "prior_cv", minimum=0),
        min_cell=_int(doc.get("min_cell", 5), "min_cell", minimum=1),
        document=dict(doc),
        parameter_version=version,
        data=_data(doc["data"]) if doc.get("data") is not None else None,
        outcomes=_outcomes(doc.get("outcomes", {}) or {}),
        reestimate_consequences=_reestimate(doc.get("reestimate_consequences", True)),
        intervention_code=(_str(doc["intervention_code"], "intervention_code")
                           if doc.get("intervention_code") is not None else None),
    )
