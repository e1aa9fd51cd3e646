"""Plain functions behind the evaluation assets: spec loading, effects, verdicts, proposal, projections.

Dagster assets in ``pipeline/defs`` are thin wrappers around these. There is one evaluation path: every way in
(``som evaluate`` on a delivery or a handed-over panel, the sensor, the schedule, a backfill) runs the Dagster
graph (:func:`pipeline.runner.run_evaluation`), so the same checks run and the same report is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import polars as pl
import yaml

from pipeline import jsonio

from som_models.calibration import propose
from som_models.estimators import RealisedEffects, aggregate, estimate_realised_effects, success_indicator
from som_models.estimators.dispatch import EstimationSettings
from som_models.evaluation_spec import EvaluationSpec, parse_evaluation_spec
from som_models.parameters import ParameterError, ParameterSet, parse_parameter_set
from som_models.projection import Projection, project
from som_models.verdicts import PathCovariance, Verdict, judge
from som_reference.strict_yaml import load_yaml

VERDICT_SCHEMA = {
    "assumption": pl.Utf8, "outcome": pl.Utf8, "label": pl.Utf8, "test": pl.Utf8, "statistic": pl.Float64,
    "p_value": pl.Float64, "p_adjusted": pl.Float64, "margin": pl.Float64, "assumed": pl.Float64,
    "realised": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64, "sentence": pl.Utf8, "evidence": pl.Utf8,
}
PRETREND_SCHEMA = {
    "outcome": pl.Utf8, "statistic": pl.Float64, "df": pl.Int64, "p_value": pl.Float64,
    "event_times": pl.List(pl.Int64), "event_cov": pl.List(pl.Float64),
}


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
        raise ParameterError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None


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
    unknown = sorted(set(spec.outcomes) - set(outcomes_for(seed)) - {seed.success_measure.outcome})
    if unknown:
        raise ParameterError(f"{path}: outcomes: {', '.join(unknown)} is not a consequence item or the success outcome of "
                             f"{seed_path.name}")
    if spec.reestimate_consequences:
        bad = sorted(set(spec.reestimate_consequences) - {c.item for c in seed.consequences})
        if bad:
            raise ParameterError(f"{path}: reestimate_consequences: {', '.join(bad)} is not a consequence item of {seed_path.name}")
    return LoadedSpec(path, spec, seed, seed_path)


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


def realised_effects(panel: pl.DataFrame, treatments: pl.DataFrame, spec: EvaluationSpec, params: ParameterSet) -> RealisedEffects:
    """Event-time effects of the intervention on the success indicator and each consequence item.

    The estimation is :func:`som_models.estimators.dispatch.estimate` with the spec's design block; the
    ``overall`` mean starts after the course (``min_e`` = the parameter set's course years).
    """
    panel = prepare_outcomes(panel, spec, params)
    sm = params.success_measure
    data = success_indicator(panel, name=sm.name, outcome=sm.outcome, rule=sm.rule)
    if spec.intervention_code is not None and "intervention" in treatments.columns:
        treatments = treatments.filter(pl.col("intervention") == spec.intervention_code)
        if treatments.height == 0:
            raise ParameterError(f"no persons with intervention code {spec.intervention_code!r} in the intervention register")
    settings = EstimationSettings(design=spec.design, control=spec.control, base_period=spec.base_period,
                                  alpha=spec.verdict.alpha, min_e=params.course_years, aggregations=("dynamic",))
    return estimate_realised_effects(data, treatments, outcomes=outcomes_for(params), settings=settings)


def event_covariances(effects: RealisedEffects) -> dict[str, PathCovariance]:
    """Covariance of each outcome's event-time ATTs: ``V = Ψᵀ Ψ / n²`` from the units' influence functions.

    ``Ψ`` holds, per event time, the influence function of the dynamic aggregation (the same one whose
    ``Σ ψ² / n²`` is the event-time variance), so the diagonal reproduces the reported standard errors.
    """
    out: dict[str, PathCovariance] = {}
    for outcome, result in (getattr(effects, "results", None) or {}).items():
        try:
            dyn = aggregate(result, "dynamic")
        except ValueError:
            continue
        if not dyn.influence:
            continue
        times = sorted(dyn.influence)
        psi = np.column_stack([np.asarray(dyn.influence[e], dtype=float) for e in times])
        out[outcome] = PathCovariance.from_array(times, psi.T @ psi / float(result.n_units) ** 2)
    return out


def pretrend_frame(effects: RealisedEffects) -> pl.DataFrame:
    """One row per outcome: the Wald pre-trend test and the covariance of its event-time estimates.

    ``event_cov`` is the row-major ``k × k`` matrix over ``event_times`` (used by the joint path test of
    the verdicts; null when the estimator does not expose influence functions).
    """
    cov = event_covariances(effects)
    rows = []
    for k, v in effects.pretrends.items():
        c = cov.get(k)
        rows.append({"outcome": k, "statistic": v.statistic, "df": v.df, "p_value": v.p_value,
                     "event_times": list(c.event_times) if c else None,
                     "event_cov": [x for row in c.matrix for x in row] if c else None})
    return pl.DataFrame(rows, schema=PRETREND_SCHEMA)


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


def verdicts(params: ParameterSet, estimates: pl.DataFrame, pretrends: pl.DataFrame, spec: EvaluationSpec,
             covariance: Mapping[str, PathCovariance] | None = None) -> tuple[Verdict, ...]:
    """The verdicts of :func:`som_models.verdicts.judge` with the spec's settings (covariance from ``pretrends``)."""
    pre = dict(pretrends.select("outcome", "p_value").iter_rows())
    if covariance is None:
        covariance = covariance_from_frame(pretrends)
    return judge(params, estimates, pre, spec.verdict, covariance=covariance)


def verdict_frame(items: tuple[Verdict, ...]) -> pl.DataFrame:
    rows = []
    for v in items:
        rec = v.to_record()
        rec["evidence"] = jsonio.dumps(rec["evidence"], indent=None)
        rows.append(rec)
    return pl.DataFrame(rows, schema=VERDICT_SCHEMA)


def proposal_document(params: ParameterSet, estimates: pl.DataFrame, spec: EvaluationSpec, *, run_label: str,
                      consequence_estimates: pl.DataFrame | None = None) -> tuple[dict, str, tuple]:
    """The proposed parameter document, the reason and the list of changes."""
    p = propose(params, estimates, policy=spec.update_policy, prior_cv=spec.prior_cv, alpha=spec.verdict.alpha,
                evidence_label=run_label, items=spec.reestimate_consequences, min_persons=spec.verdict.min_persons,
                consequence_estimates=consequence_estimates)
    doc = dict(p.document)
    doc["provenance"] = {"updated_by": spec.evaluation, "policy": spec.update_policy, "changes": jsonio.to_jsonable(list(p.changes))}
    parse_parameter_set(doc)  # the proposal must itself be a valid parameter set
    return doc, p.reason, p.changes


def store_proposal(store, loaded: LoadedSpec, assumptions: Mapping[str, Any], estimates: pl.DataFrame,
                   verdicts: pl.DataFrame, *, data_vintage: str, data_hash: str, code_version: str,
                   actor: str = "pipeline") -> dict:
    """Record the run, then store its estimates, verdicts and the proposed version in one transaction.

    ``assumptions`` is the version under test (``intervention``, ``version``, ``content``). Returns the
    ``parameter_proposal`` dict of the Dagster asset. The proposed content names the data (vintage and
    hash), never the run, so a rerun on the same data proposes the same content (no new version).
    """
    params = parse_parameter_set(assumptions["content"])
    spec = loaded.spec
    run = store.record_run(evaluation_id=spec.evaluation, intervention=params.intervention, data_vintage=data_vintage,
                           data_hash=data_hash, code_version=code_version, spec=dict(spec.document),
                           tested_version=assumptions["version"])
    label = f"evaluation {spec.evaluation} on vintage {data_vintage} (data sha256 {data_hash[:12]})"
    doc, reason, changes = proposal_document(params, estimates, spec, run_label=label)
    verdict_rows = [{**r, "evidence": json.loads(r["evidence"])} for r in verdicts.to_dicts()]
    record = store.propose_version(
        intervention=params.intervention, parent_version=assumptions["version"], content=doc, reason=reason,
        run_id=run.id, data_vintage=data_vintage, data_hash=data_hash, code_version=code_version,
        evidence={"evaluation": spec.evaluation, "tested_version": assumptions["version"], "changes": jsonio.to_jsonable(list(changes)),
                  "verdicts": [{k: r[k] for k in ("assumption", "label", "sentence")} for r in verdict_rows]},
        estimates=estimates.to_dicts(), verdicts=verdict_rows, actor=actor,
    )
    return {"intervention": record.intervention, "version": record.version, "status": record.status,
            "parent_version": record.parent_version, "content": record.content, "reason": record.reason,
            "run_id": run.id, "reused": record.reused, "code_version": code_version}


def projections(before: ParameterSet, after: ParameterSet) -> dict[str, Projection]:
    return {"before": project(before), "after": project(after)}


def prepare_outcomes(panel: pl.DataFrame, spec: EvaluationSpec, params: ParameterSet) -> pl.DataFrame:
    """Map and check the outcome columns the evaluation needs, cast to float (clear error naming a bad column)."""
    panel = map_outcomes(panel, spec)
    needed = [params.success_measure.outcome, *(c.item for c in params.consequences)]
    for col in dict.fromkeys(needed):
        if col not in panel.columns:
            raise ParameterError(f"panel: outcome column {col!r} not found (map it with the spec's outcomes:); "
                                 f"has {', '.join(panel.columns)}")
        try:
            panel = panel.with_columns(pl.col(col).cast(pl.Float64, strict=True))
        except Exception:
            raise ParameterError(f"panel: outcome column {col!r} is not numeric") from None
    return panel
