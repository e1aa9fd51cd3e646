"""The evaluation plan as a Dagster asset, made when a parameter version is approved (issue 14 item 1).

* ``evaluation_plan`` (group ``plan``, partitioned by evaluation) — plans the approved parameter version of the
  partition's evaluation (run config ``version``; 0 = the latest approved) with
  :func:`pipeline.plan.plan_version`, the same function as ``som plan``, and stores the plan beside the version
  (``<workdir>/plans/<intervention>-v<version>.json``). The baseline is the newest complete delivery in the landing
  folder that applies to the evaluation (its panel, treatments, cost file); with none, the knowledge base's
  variances and the run config's ``controls``.
* ``approval_sensor`` — every ``SOM_SENSOR_INTERVAL`` seconds reads the approved version of every evaluation's
  intervention from the parameter store and requests one ``plan_job`` run per approved version that has no stored
  plan yet (run key ``plan|{evaluation}|v{version}``: an approval is planned once). Approvals happen outside
  Dagster (``som params approve``), so a sensor — not an asset dependency — is what notices them.
"""

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import dagster as dg

from pipeline.defs.partitions import EVALUATIONS, evaluation_specs
from pipeline.defs.resources import SomSettings

#: revision of the plan's computation (the code version Dagster records is ``{package version}.r{revision}``, as for
#: the evaluation assets in :mod:`pipeline.defs.assets`)
REVISION = 1


def _code_version() -> str:
    from pipeline.version import code_version

    return f"{code_version().split('+', 1)[0]}.r{REVISION}"


class PlanConfig(dg.Config):
    """Which version to plan (0 = the latest approved) and, without a delivery, the comparison persons."""

    version: int = 0
    controls: int = 0
    voi_draws: int = 20_000
    sim_draws: int = 2000


def newest_delivery(landing: Path, intervention_code: str | None) -> Path | None:
    """The newest complete delivery of the latest vintage in ``landing`` that applies to an evaluation of
    ``intervention_code`` (None: none landed)."""
    from pipeline.defs.automation import applies
    from pipeline.landing import scan_landing

    found = [d for d in scan_landing(landing) if d.complete and applies(intervention_code, d.interventions)]
    if not found:
        return None
    latest = max(str(d.vintage) for d in found)
    return [d for d in found if str(d.vintage) == latest][-1].folder


@dg.asset(group_name="plan", partitions_def=EVALUATIONS, code_version=_code_version(),
          description="The evaluation plan of the approved parameter version: per assumption the minimum detectable "
                      "deviation by data vintage, the vintage by which it is decidable and its value of information.")
def evaluation_plan(context: dg.AssetExecutionContext, som: SomSettings, config: PlanConfig) -> dict:
    from pipeline import evaluation as ev
    from pipeline.plan import plan_version
    from pipeline.registers import load_key
    from som_models.parameters import parse_parameter_set

    loaded = ev.load_spec(som.spec_path(context.partition_key))
    with som.store() as store:
        record = ev.assumptions_version(store, loaded) if not config.version else store.get_version(
            loaded.spec.intervention, config.version)
        if config.version and record.status not in ("approved", "superseded"):
            raise ValueError(f"version {config.version} of {loaded.spec.intervention} is {record.status}, not approved")
    folder = newest_delivery(som.landing_path(), loaded.spec.intervention_code)
    plan, path = plan_version(som.workdir_path(), loaded, parse_parameter_set(record.content), record.version,
                              delivery=folder, key=None if folder is None else load_key(som.workdir_path()),
                              controls=config.controls or None, voi_draws=config.voi_draws,
                              sim_draws=config.sim_draws)
    decidable = {d["assumption"]: {"refute_from": d["refutable_from"], "confirm_from": d["confirmable_from"]}
                 for d in plan.decidable()}
    context.add_output_metadata({
        "intervention": plan.intervention, "version": record.version, "plan_path": dg.MetadataValue.path(str(path)),
        "baseline": str(folder) if folder else "none (knowledge-base variances)",
        "variances": plan.variance_source, "decidable": dg.MetadataValue.json(decidable),
    })
    return {"intervention": plan.intervention, "version": record.version, "path": str(path),
            "decidable": decidable}


plan_job = dg.define_asset_job("plan_job", selection=dg.AssetSelection.assets(evaluation_plan),
                               description="Plans an approved parameter version (evaluation_plan).")


def approval_requests(specs: Mapping[str, Path], approved: Mapping[str, int], workdir: Path,
                      known_evaluations: Iterable[str] | None = None) -> dg.SensorResult:
    """The sensor's decision (a plain function, tested directly): ``specs`` evaluation id → spec file,
    ``approved`` intervention → its approved version. One request per evaluation whose intervention's approved
    version has no stored plan."""
    from pipeline.evaluation import read_yaml
    from pipeline.plan import plan_path

    requests, waiting = [], []
    for evaluation, path in sorted(specs.items()):
        intervention = (read_yaml(path) or {}).get("intervention")
        version = approved.get(intervention) if isinstance(intervention, str) else None
        if version is None:
            continue
        if plan_path(workdir, intervention, version).is_file():
            waiting.append(f"{evaluation}: v{version} planned")
            continue
        requests.append(dg.RunRequest(run_key=f"plan|{evaluation}|v{version}", partition_key=evaluation,
                                      run_config={"ops": {"evaluation_plan": {"config": {"version": version}}}},
                                      tags={"som/plan_version": str(version)}))
    new = sorted({r.partition_key for r in requests} - set(known_evaluations or ())) if known_evaluations is not None \
        else []
    return dg.SensorResult(run_requests=requests,
                           skip_reason=None if requests else ("; ".join(waiting) or "no approved version to plan"),
                           dynamic_partitions_requests=[EVALUATIONS.build_add_request(new)] if new else [])


@dg.sensor(job=plan_job, minimum_interval_seconds=int(os.environ.get("SOM_SENSOR_INTERVAL", "60")),
           default_status=dg.DefaultSensorStatus.STOPPED,
           description="Plans each newly approved parameter version (evaluation_plan).")
def approval_sensor(context: dg.SensorEvaluationContext, som: SomSettings) -> dg.SensorResult:
    with som.store() as store:
        approved = {r["intervention"]: r["approved_version"] for r in store.interventions()
                    if r.get("approved_version") is not None}
    return approval_requests(evaluation_specs(som.evaluations_path()), approved, som.workdir_path(),
                             context.instance.get_dynamic_partitions(EVALUATIONS.name))
