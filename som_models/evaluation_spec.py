"""The evaluation spec: which intervention, which data, which parameter version, design and decision settings.

Strict: an unknown key is an error naming it. The format, with an example, is documented in
``docs/evaluation-spec.md``. Paths inside the spec (``parameters``, ``data.*``) are relative to the spec file;
they are kept as written here and resolved by the caller (``pipeline.evaluation.load_spec``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from som_models.calibration import POLICIES
from som_models.duration_assumptions import DURATION, DurationAssumption, parse_durations
from som_models.estimators.dispatch import EstimationSettings, settings_problems
from som_models.evidence import OVERLAP_POLICIES
from som_models.parameters.schema import ParameterError, _int, _keys, _num, _str
from som_models.sequential import DEFAULT_RULE
from som_models.sequential import RULES as SEQUENTIAL_RULES
from som_models.verdicts import PATH_TESTS, VerdictSettings, consistency_problem
from som_models.volume_verdicts import VOLUME_ASSUMPTIONS

_ALLOWED = {
    "evaluation": True, "intervention": True, "intervention_code": False, "title": False, "parameters": True,
    "parameter_version": False,
    "data": False, "outcomes": False, "design": False, "control": False, "base_period": False, "alpha": False,
    "equivalence_margin": False, "consistency": False, "path_test": False, "sequential": False,
    "min_persons": False,
    "update_policy": False, "prior_cv": False, "reestimate_consequences": False, "min_cell": False,
    "min_cell_override": False, "notes": False,
    "assumptions": False, "assigned_by": False, "durations": False, "overlap": False, "volume_margin": False,
    "alerts": False, "follow_up_costs": False,
}
#: the agency's small-cell floor: ``min_cell`` below it needs ``min_cell_override: {value, reason}`` (Statistics
#: Denmark's output rules for research access: no published cell of fewer than 5 persons)
MIN_CELL_FLOOR = 5
_DATA = {"delivery": False, "panel": False, "treatments": False, "columns": False, "costs": False}
_COLUMNS = {"person_id": False, "year": False, "start_year": False, "arm": False}
#: the keys of a ``design:`` mapping — every option ``som estimate`` has (the arm and the randomisation period of
#: the ``rct`` design come from the data: the treatments' ``arm`` and ``start_year``)
_DESIGN = {"design": False, "control": False, "base_period": False, "covariates": False, "method": False,
           "cluster": False, "bootstrap": False, "bootstrap_weights": False, "seed": False, "match_on": False,
           "exact": False, "pre_periods": False, "caliper": False, "ratio": False, "replace": False}
#: ``cluster`` value that means "the person" (the unit): no clustering beyond the person
PERSON = "person"
#: the assumption names a parameter set has: ``success_rate`` and ``effect_path:<consequence item>``
SUCCESS_RATE = "success_rate"
EFFECT_PATH = "effect_path:"
#: the course-year effects of a consequence item (``consequences.<item>.course``; :mod:`som_models.verdicts`)
COURSE_PATH = "course_path:"


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
    #: a cost file (one row per participant: BELOEB, optional PRISAAR); else the delivery's ``costs.*`` if any
    costs: str | None = None


@dataclass(frozen=True)
class DesignBlock:
    """The spec's ``design:`` — which estimator of :mod:`som_models.estimators.dispatch` and how.

    ``options`` holds the settings given in the spec besides ``design`` (``control``, ``base_period``,
    ``covariates``, ``method``, ``bootstrap``, ``seed``, matching options …), under the names of
    :class:`~som_models.estimators.dispatch.EstimationSettings`. ``cluster`` is what the spec says about the
    level of inference: None (not said: the level at which the intervention was assigned when the spec's
    ``assigned_by`` or the delivery tells it, else the person), ``"person"``, or a panel column
    (e.g. ``municipality``).
    """

    design: str = "staggered"
    options: Mapping[str, Any] = field(default_factory=dict)
    cluster: str | None = None

    @property
    def covariates(self) -> tuple[str, ...]:
        return tuple(self.options.get("covariates", ()))

    def columns(self) -> tuple[str, ...]:
        """Panel columns the design reads besides the outcomes (covariates, matching columns, the cluster)."""
        cols = [*self.covariates, *self.options.get("match_on", ()), *self.options.get("exact", ())]
        if self.cluster not in (None, PERSON):
            cols.append(self.cluster)
        return tuple(dict.fromkeys(cols))

    def settings(self, *, alpha: float, min_e: int | None, cluster: str | None = None, arm_col: str | None = None,
                 start: int | str | None = None) -> EstimationSettings:
        """The dispatcher's settings: this block with the evaluation's ``alpha`` and ``min_e`` (course years),
        the resolved cluster column (None = the person) and, for ``rct``, the arm column and randomisation period."""
        return EstimationSettings(design=self.design, alpha=alpha, min_e=min_e, aggregations=("dynamic",),
                                  cluster=cluster, arm_col=arm_col, start=start, **dict(self.options))


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
    #: the estimator (``design:``); ``design``, ``control`` and ``base_period`` above repeat its choices
    estimation: DesignBlock = field(default_factory=DesignBlock)
    #: the assumptions tested (``success_rate``, ``effect_path:<item>``, ``course_path:<item>``); None = every
    #: assumption of the parameters
    assumptions: tuple[str, ...] | None = None
    #: the level at which the intervention was assigned (a panel column such as ``municipality``), if the spec says
    assigned_by: str | None = None
    #: duration assumptions (``durations:``): an assumed hazard ratio on a time to an event, tested by a Cox model
    #: (:mod:`som_models.duration_assumptions`); named ``duration:<name>`` in ``assumptions``
    durations: tuple[DurationAssumption, ...] = ()
    #: evidence overlapping what informs the version under test: ``root`` (update the root prior) or ``refuse``
    overlap: str = "root"
    #: alert thresholds raised after each evaluation (:mod:`som_models.alerts`)
    alerts: Any = None
    #: relative equivalence margin of the volume, course-length and cost verdicts (:mod:`som_models.volume_verdicts`)
    volume_margin: float = 0.2


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
    costs = _str(obj["costs"], "data.costs") if obj.get("costs") is not None else None
    return DataSource(delivery, panel, treatments, {k: _str(v, f"data.columns.{k}") for k, v in columns.items()}, costs)


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


def _names(obj: Any, path: str) -> tuple[str, ...]:
    if isinstance(obj, str):
        obj = [obj]
    if not isinstance(obj, list) or not obj:
        raise ParameterError(f"{path}: expected a non-empty list of column names, got {obj!r}")
    out = tuple(_str(x, f"{path}[{k}]") for k, x in enumerate(obj))
    dup = sorted({x for x in out if out.count(x) > 1})
    if dup:
        raise ParameterError(f"{path}: {', '.join(dup)} listed twice")
    return out


def _design(doc: Mapping[str, Any], alpha: float) -> DesignBlock:
    """The ``design:`` block: a name (``design: staggered``, with the top-level ``control`` / ``base_period``
    of older specs) or a mapping of the dispatcher's options, checked with
    :func:`~som_models.estimators.dispatch.settings_problems` (messages name ``design.<option>``)."""
    raw = doc.get("design", "staggered")
    if isinstance(raw, Mapping):
        _keys(raw, "design", _DESIGN)
        for key in ("control", "base_period"):
            if key in doc:
                raise ParameterError(f"{key}: with a design: mapping give it inside it (design.{key})")
        block = dict(raw)
        where = "design.design"
    else:
        block = {"design": raw}
        block.update({k: doc[k] for k in ("control", "base_period") if k in doc})
        where = "design"
    design = _str(block.pop("design", "staggered"), where)
    options: dict[str, Any] = {}
    for key, value in block.items():
        path = f"design.{key}" if where != "design" else key
        if key in ("covariates", "match_on", "exact"):
            options[key] = _names(value, path)
        elif key in ("bootstrap", "seed", "pre_periods", "ratio"):
            options[key] = _int(value, path)
        elif key == "caliper":
            options[key] = _num(value, path)
        elif key == "replace":
            if not isinstance(value, bool):
                raise ParameterError(f"{path}: expected true or false, got {value!r}")
            options[key] = value
        elif key == "cluster":
            continue
        else:
            options[key] = _str(value, path)
    cluster = _str(block["cluster"], "design.cluster") if block.get("cluster") is not None else None
    # The arm and the randomisation period of the rct design come from the data (treatments' arm, start_year).
    probe = SimpleNamespace(**{**{f: getattr(EstimationSettings, f, None) for f in EstimationSettings.__dataclass_fields__},
                               "aggregations": ("dynamic",), "match_on": (), "exact": (), "covariates": (),
                               **options, "design": design, "alpha": alpha, "arm_col": "arm", "start": "start_year",
                               "cluster": None if cluster in (None, PERSON) else cluster})
    names = {f: (f"design.{f}" if where != "design" or f not in ("design", "control", "base_period") else f)
             for f in EstimationSettings.__dataclass_fields__}
    names["design"] = where
    problems = settings_problems(probe, names)
    if problems:
        raise ParameterError("; ".join(problems))
    return DesignBlock(design, options, cluster)


def _assumptions(obj: Any, durations: tuple[DurationAssumption, ...] = ()) -> tuple[str, ...] | None:
    if obj is None or obj == "all":
        return None
    if not isinstance(obj, list) or not obj:
        raise ParameterError(f"assumptions: expected all or a non-empty list such as [success_rate, effect_path:<item>], "
                             f"got {obj!r}")
    out = tuple(_str(x, f"assumptions[{k}]") for k, x in enumerate(obj))
    declared = [d.assumption for d in durations]
    for k, name in enumerate(out):
        if name.startswith(DURATION):
            if name not in declared:
                raise ParameterError(f"assumptions[{k}]: {name!r} is not one of the spec's durations "
                                     f"({', '.join(declared) if declared else 'the spec has none'})")
        elif name != SUCCESS_RATE and name not in VOLUME_ASSUMPTIONS and not any(
                name.startswith(prefix) and len(name) > len(prefix) for prefix in (EFFECT_PATH, COURSE_PATH)):
            raise ParameterError(f"assumptions[{k}]: {name!r} is not success_rate or effect_path:<consequence item> or "
                                 f"course_path:<consequence item> (or "
                                 f"duration:<name> of the spec's durations, or a volume assumption: "
                                 f"{', '.join(VOLUME_ASSUMPTIONS)})")
    dup = sorted({x for x in out if out.count(x) > 1})
    if dup:
        raise ParameterError(f"assumptions: {', '.join(dup)} listed twice")
    return out


def _choice(doc: Mapping[str, Any], key: str, default: str, options: Sequence[str]) -> str:
    """``doc[key]`` (``default`` when absent), refused with a message naming the key unless one of ``options``."""
    value = doc.get(key, default)
    if value not in options:
        raise ParameterError(f"{key}: {value!r} is not one of {', '.join(options)}")
    return value


def parse_evaluation_spec(doc: Mapping[str, Any]) -> EvaluationSpec:
    """Validate an evaluation spec; ``parameters`` is the seed parameter file (relative to the spec)."""
    _keys(doc, "", _ALLOWED)
    policy = doc.get("update_policy", "precision_weighted")
    if policy not in POLICIES:
        raise ParameterError(f"update_policy: {policy!r} is not one of {', '.join(POLICIES)}")
    alpha = _num(doc.get("alpha", 0.05), "alpha", minimum=0)
    if not 0 < alpha < 0.5:
        raise ParameterError(f"alpha: must be in (0, 0.5), got {alpha}")
    block = _design(doc, alpha)
    margin = _num(doc.get("equivalence_margin", 0.5), "equivalence_margin", minimum=0)
    if margin <= 0:
        raise ParameterError(f"equivalence_margin: must be > 0 (a share of the assumption), got {margin}")
    consistency = doc.get("consistency", "tost")
    if consistency_problem(consistency):
        raise ParameterError(consistency_problem(consistency))
    path_test = _choice(doc, "path_test", "mean", PATH_TESTS)
    durations = parse_durations(doc.get("durations"), design=block.design,
                                control=block.options.get("control", "never"))
    overlap = _choice(doc, "overlap", "root", OVERLAP_POLICIES)
    sequential = _choice(doc, "sequential", DEFAULT_RULE, SEQUENTIAL_RULES)
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
        design=block.design,
        control=block.options.get("control", "never"),
        base_period=block.options.get("base_period", "varying"),
        verdict=VerdictSettings(alpha=alpha, margin=margin,
                                min_persons=_int(doc.get("min_persons", 20), "min_persons", minimum=1),
                                consistency=consistency, path_test=path_test, sequential=sequential),
        update_policy=policy,
        prior_cv=_num(doc.get("prior_cv", 0.5), "prior_cv", minimum=0),
        min_cell=_min_cell(doc),
        document=dict(doc),
        parameter_version=version,
        data=_data(doc["data"]) if doc.get("data") is not None else None,
        outcomes=_outcomes(doc.get("outcomes", {}) or {}),
        reestimate_consequences=_reestimate(doc.get("reestimate_consequences", True)),
        intervention_code=(_str(doc["intervention_code"], "intervention_code")
                           if doc.get("intervention_code") is not None else None),
        estimation=block,
        assumptions=_assumptions(doc.get("assumptions"), durations),
        assigned_by=_str(doc["assigned_by"], "assigned_by") if doc.get("assigned_by") is not None else None,
        durations=durations,
        overlap=overlap,
        volume_margin=_volume_margin(doc.get("volume_margin", 0.2)),
        alerts=_alerts(doc.get("alerts")),
    )


def _min_cell(doc: Mapping[str, Any]) -> int:
    """``min_cell`` (default :data:`MIN_CELL_FLOOR`); below the floor only with a matching, reasoned override.

    ``min_cell: 3`` must come with ``min_cell_override: {value: 3, reason: "..."}`` (the same value and a non-empty
    reason); the spec document, override included, is stored with every run, so the exception is on record.
    An override with ``min_cell`` at or above the floor is refused too (it would record an exception that is
    not taken).
    """
    value = _int(doc.get("min_cell", MIN_CELL_FLOOR), "min_cell", minimum=1)
    override = doc.get("min_cell_override")
    if override is None:
        if value < MIN_CELL_FLOOR:
            raise ParameterError(f"min_cell: {value} is below the agency's small-cell floor of {MIN_CELL_FLOOR}; a lower "
                                 f"threshold needs an explicit override recorded with the run: min_cell_override: "
                                 f"{{value: {value}, reason: \"why (e.g. the data owner's approval)\"}}")
        return value
    _keys(override, "min_cell_override", {"value": True, "reason": True})
    wanted = _int(override["value"], "min_cell_override.value", minimum=1)
    _str(override["reason"], "min_cell_override.reason")
    if wanted != value:
        raise ParameterError(f"min_cell_override.value: {wanted} does not match min_cell {value} (state the same "
                             "threshold in both)")
    if value >= MIN_CELL_FLOOR:
        raise ParameterError(f"min_cell_override: min_cell {value} is not below the floor of {MIN_CELL_FLOOR}; "
                             "remove the override")
    return value


def _alerts(obj: Any) -> Any:
    from som_models.alerts import parse_alerts

    try:
        return parse_alerts(obj)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None


def _volume_margin(obj: Any) -> float:
    margin = _num(obj, "volume_margin", minimum=0)
    if margin <= 0:
        raise ParameterError(f"volume_margin: must be > 0 (a share of the assumption), got {margin}")
    return margin
