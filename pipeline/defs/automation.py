"""Automation: the evaluation job, a sensor on the landing folder and a rerun schedule.

* ``landing_sensor`` — every ``SOM_SENSOR_INTERVAL`` seconds (default 60) scans the landing folder; a new,
  complete delivery (manifest present, files present, checksums matching) registers its vintage as a
  dynamic partition and requests one run per applicable evaluation, with run key
  ``{evaluation}|{vintage}|{fingerprint}`` so the same delivery never runs twice; incomplete deliveries are
  skipped with their reason. An evaluation applies when its spec's intervention code appears in the
  manifest's ``interventions`` list (if the manifest has none, every evaluation applies).
* ``rerun_schedule`` — ``0 3 1 * *`` (03:00 on the 1st of each month, Europe/Copenhagen) reruns every
  evaluation on the latest vintage, e.g. after a parameter version was approved.
"""

import os

import dagster as dg

from pipeline.defs.partitions import VINTAGES, evaluation_specs
from pipeline.landing import scan_landing

evaluation_job = dg.define_asset_job(
    "evaluation_job", selection=dg.AssetSelection.all(), description="The whole evaluation loop for one evaluation × vintage.",
    executor_def=dg.in_process_executor,
)


def _landing_dir() -> str:
    from pipeline.workdir import resolve_workdir

    return os.environ.get("SOM_LANDING", "") or str(resolve_workdir() / "landing")


def _applicable(spec_path, interventions) -> bool:
    if interventions is None:
        return True
    from pipeline.evaluation import read_yaml

    code = (read_yaml(spec_path) or {}).get("intervention_code")
    return code is None or code in interventions


def landing_requests(landing, known_vintages, evaluations_dir=None, cursor: str | None = None) -> dg.SensorResult:
    """The sensor's decision for one scan (a plain function, tested directly).

    The cursor is the JSON list of run keys already requested, so a delivery is requested once (Dagster also
    refuses a run key it has seen; the cursor keeps the sensor's own answer honest: "nothing new").
    """
    import json

    seen = set(json.loads(cursor)) if cursor else set()
    deliveries = scan_landing(landing)
    specs = evaluation_specs(evaluations_dir)
    requests, new_vintages, skipped = [], [], []
    for d in deliveries:
        if not d.complete:
            skipped.append(d.reason)
            continue
        if d.vintage not in known_vintages and d.vintage not in new_vintages:
            new_vintages.append(d.vintage)
        for evaluation, path in specs.items():
            key = f"{evaluation}|{d.vintage}|{d.fingerprint}"
            if _applicable(path, d.interventions) and key not in seen:
                seen.add(key)
                requests.append(dg.RunRequest(
                    run_key=key,
                    partition_key=dg.MultiPartitionKey({"evaluation": evaluation, "vintage": d.vintage}),
                    tags={"som/delivery": d.folder.name},
                ))
    skip = None if requests else ("; ".join(skipped) or f"no new complete delivery in {landing}")
    return dg.SensorResult(
        run_requests=requests, skip_reason=skip, cursor=json.dumps(sorted(seen)),
        dynamic_partitions_requests=[VINTAGES.build_add_request(new_vintages)] if new_vintages else [],
    )


@dg.sensor(job=evaluation_job, minimum_interval_seconds=int(os.environ.get("SOM_SENSOR_INTERVAL", "60")),
           default_status=dg.DefaultSensorStatus.STOPPED,
           description="Starts evaluation runs when a complete delivery lands in the landing folder.")
def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    known = set(context.instance.get_dynamic_partitions(VINTAGES.name))
    return landing_requests(_landing_dir(), known, cursor=context.cursor)


@dg.schedule(job=evaluation_job, cron_schedule="0 3 1 * *", execution_timezone="Europe/Copenhagen",
             default_status=dg.DefaultScheduleStatus.STOPPED,
             description="Monthly rerun of every evaluation on the latest data vintage.")
def rerun_schedule(context: dg.ScheduleEvaluationContext):
    vintages = sorted(context.instance.get_dynamic_partitions(VINTAGES.name))
    if not vintages:
        return dg.SkipReason("no data vintage registered yet")
    latest = vintages[-1]
    return [
        dg.RunRequest(run_key=f"rerun|{evaluation}|{latest}|{context.scheduled_execution_time:%Y%m%d}",
                      partition_key=dg.MultiPartitionKey({"evaluation": evaluation, "vintage": latest}))
        for evaluation in sorted(evaluation_specs())
    ]
