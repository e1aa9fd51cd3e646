"""Automation: the evaluation job, a sensor on the landing folder and a monthly rerun schedule.

* ``landing_sensor`` — every ``SOM_SENSOR_INTERVAL`` seconds (default 60) scans the landing folder. A
  complete delivery (see :mod:`pipeline.landing`) registers its vintage as a dynamic partition and requests
  one run per applicable evaluation, pinned to that folder: the run config of the ``delivery`` asset names the
  folder, its fingerprint and data hash, and the tags ``som/delivery``/``som/fingerprint`` (``som/supersedes``
  when it corrects an earlier delivery of the same vintage). Run keys are ``{evaluation}|{vintage}|{fingerprint}``.
  A request is not made when the parameter store already holds a run of that evaluation on that vintage with
  the same data hash (e.g. ``som evaluate`` ran it): the tick's skip reason says so. Incomplete deliveries
  are skipped with their reason.
* ``rerun_schedule`` — ``0 3 1 * *`` (03:00 on the 1st of each month, Europe/Copenhagen) reruns, on the
  latest vintage's current delivery, every evaluation that applies to it, e.g. after a parameter version
  was approved.

An evaluation applies to a delivery when its spec's ``intervention_code`` is in the manifest's
``interventions`` list, or the manifest lists none, or the spec names no code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import dagster as dg

from pipeline.defs.delivery_config import delivery_run_config, delivery_tags
from pipeline.defs.partitions import EVALUATIONS, VINTAGES, evaluation_specs
from pipeline.defs.resources import SomSettings
from pipeline.landing import LandedDelivery, deliveries_of, scan_landing, superseded_by

evaluation_job = dg.define_asset_job(
    # every asset except the plan group (evaluation_plan: its own job) and the knowledge group
    # (consequence_profiles runs on its own, with its own config)
    "evaluation_job", selection=dg.AssetSelection.all() - dg.AssetSelection.groups("plan", "knowledge"),
    description="The whole evaluation loop for one evaluation × vintage (executor: see pipeline.defs.executor).",
)


def intervention_codes(specs: dict[str, Path]) -> dict[str, str | None]:
    """Evaluation id → the ``intervention_code`` of its spec (None when the spec names none)."""
    from pipeline.evaluation import read_yaml

    return {evaluation: (read_yaml(path) or {}).get("intervention_code") for evaluation, path in specs.items()}


def applies(code: str | None, interventions: Iterable[str] | None) -> bool:
    """Whether an evaluation of intervention ``code`` applies to a delivery listing ``interventions``."""
    return interventions is None or code is None or code in interventions


def _read_cursor(cursor: str | None) -> tuple[set[str], dict[str, str]]:
    """(run keys handled, fingerprint → data hash) from the cursor (an older cursor is a plain key list)."""
    if not cursor:
        return set(), {}
    state = json.loads(cursor)
    if isinstance(state, list):
        return set(state), {}
    return set(state.get("keys", [])), dict(state.get("hashes", {}))


def _partition(evaluation: str, vintage: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"evaluation": evaluation, "vintage": vintage})


def landing_requests(landing, known_vintages, evaluations_dir=None, cursor: str | None = None,
                     store_runs: Callable[[], Iterable] | None = None,
                     known_evaluations: Iterable[str] | None = None) -> dg.SensorResult:
    """The sensor's decision for one scan (a plain function, tested directly).

    The cursor holds the run keys already handled (requested, or skipped because the store holds their
    result) and the data hash of each fingerprint seen, so a tick reads no file of a delivery it has seen.
    ``store_runs`` returns the parameter store's run records (evaluation_id, data_vintage, data_hash); it is
    called at most once, and only when a delivery has a run key not handled yet. Every evaluation of the
    folder not in ``known_evaluations`` is registered as a partition key (``None``: register none).
    """
    from pipeline.registers.files import DeliveryError, delivery_hash, read_manifest

    handled, hashes = _read_cursor(cursor)
    deliveries = scan_landing(landing, verified=set(hashes))
    codes = intervention_codes(evaluation_specs(evaluations_dir))
    requests, new_vintages, skipped = [], [], []
    evaluated: dict[tuple, str] | None = None
    for d in deliveries:
        if not d.complete:
            skipped.append(d.reason)
            continue
        if d.vintage not in known_vintages and d.vintage not in new_vintages:
            new_vintages.append(d.vintage)
        todo = [e for e, code in codes.items()
                if applies(code, d.interventions) and f"{e}|{d.vintage}|{d.fingerprint}" not in handled]
        if not todo:
            continue
        if d.fingerprint not in hashes:
            try:
                hashes[d.fingerprint] = delivery_hash(read_manifest(d.folder), verify=True)
            except (DeliveryError, OSError) as exc:
                skipped.append(f"{d.folder.name}: {exc}")
                continue
        data_hash = hashes[d.fingerprint]
        if evaluated is None:
            evaluated = {(r.evaluation_id, r.data_vintage, r.data_hash): r.id for r in (store_runs() if store_runs else [])}
        previous = superseded_by(deliveries, d)
        supersedes = previous.fingerprint if previous else ""
        for evaluation in todo:
            key = f"{evaluation}|{d.vintage}|{d.fingerprint}"
            handled.add(key)
            done = evaluated.get((evaluation, d.vintage, data_hash))
            if done:
                skipped.append(f"{d.folder.name}: {evaluation} on vintage {d.vintage} already evaluated on these data "
                               f"(store run {done[:12]}, data sha256 {data_hash[:12]})")
                continue
            requests.append(dg.RunRequest(
                run_key=key, partition_key=_partition(evaluation, d.vintage),
                run_config=delivery_run_config(d, data_hash=data_hash, supersedes=supersedes),
                tags=delivery_tags(d, data_hash=data_hash, supersedes=supersedes)))
    skip = None if requests else ("; ".join(skipped) or f"no new complete delivery in {landing}")
    partitions = [VINTAGES.build_add_request(new_vintages)] if new_vintages else []
    new_evaluations = [] if known_evaluations is None else sorted(set(codes) - set(known_evaluations))
    if new_evaluations:
        partitions.append(EVALUATIONS.build_add_request(new_evaluations))
    return dg.SensorResult(
        run_requests=requests, skip_reason=skip, cursor=json.dumps({"keys": sorted(handled), "hashes": hashes}),
        dynamic_partitions_requests=partitions,
    )


@dg.sensor(job=evaluation_job, minimum_interval_seconds=int(os.environ.get("SOM_SENSOR_INTERVAL", "60")),
           default_status=dg.DefaultSensorStatus.STOPPED,
           description="Starts evaluation runs when a complete delivery lands in the landing folder.")
def landing_sensor(context: dg.SensorEvaluationContext, som: SomSettings) -> dg.SensorResult:
    known = set(context.instance.get_dynamic_partitions(VINTAGES.name))

    def store_runs():
        with som.store() as store:
            return store.runs()

    return landing_requests(som.landing_path(), known, som.evaluations_path(), context.cursor, store_runs,
                            known_evaluations=context.instance.get_dynamic_partitions(EVALUATIONS.name))


def schedule_requests(vintages: Iterable[str], landing, evaluations_dir=None, *, tick: str = "",
                      known_evaluations: Iterable[str] | None = None) -> list[dg.RunRequest] | dg.SkipReason:
    """The schedule's decision: runs of the applicable evaluations on the latest vintage's current delivery.

    Only evaluations registered as partition keys (``known_evaluations``; ``None`` = every spec) are rerun: a
    schedule cannot register keys, and an evaluation that never ran is started by the sensor or by hand."""
    ordered = sorted(vintages)
    if not ordered:
        return dg.SkipReason("no data vintage registered yet")
    latest = ordered[-1]
    found = deliveries_of(landing, latest)
    if not found:
        return dg.SkipReason(f"no complete delivery of the latest vintage {latest} in {landing}")
    current: LandedDelivery = found[-1]
    codes = intervention_codes(evaluation_specs(evaluations_dir))
    chosen = sorted(e for e, code in codes.items() if applies(code, current.interventions)
                    and (known_evaluations is None or e in set(known_evaluations)))
    if not chosen:
        return dg.SkipReason(f"no evaluation applies to the interventions {', '.join(current.interventions or ())} "
                             f"of delivery {current.folder.name} (vintage {latest})")
    supersedes = found[-2].fingerprint if len(found) > 1 else ""
    return [
        dg.RunRequest(run_key=f"rerun|{evaluation}|{latest}|{current.fingerprint}|{tick}",
                      partition_key=_partition(evaluation, latest),
                      run_config=delivery_run_config(current, supersedes=supersedes),
                      tags=delivery_tags(current, supersedes=supersedes))
        for evaluation in chosen
    ]


@dg.schedule(job=evaluation_job, cron_schedule="0 3 1 * *", execution_timezone="Europe/Copenhagen",
             default_status=dg.DefaultScheduleStatus.STOPPED,
             description="Monthly rerun of the applicable evaluations on the latest data vintage.")
def rerun_schedule(context: dg.ScheduleEvaluationContext, som: SomSettings):
    vintages = context.instance.get_dynamic_partitions(VINTAGES.name)
    return schedule_requests(vintages, som.landing_path(), som.evaluations_path(),
                             tick=f"{context.scheduled_execution_time:%Y%m%d}",
                             known_evaluations=context.instance.get_dynamic_partitions(EVALUATIONS.name))
