"""Run retention: a daily schedule deletes finished Dagster runs older than ``SOM_RUN_RETENTION_DAYS``.

Dagster keeps every run and its event log until deleted; its instance config only purges sensor and
schedule ticks (``retention`` in ``deploy/dagster.yaml``). With ``SOM_RUN_RETENTION_DAYS`` unset or 0 runs are
kept. Deleting a run removes its Dagster record and event log (step logs, asset materialisation events);
the parameter store's runs, verdicts, versions and audit log — the evaluation's record — are not touched,
nor are stored asset values or reports.
"""


import datetime as dt
import os

import dagster as dg

RETENTION_ENV = "SOM_RUN_RETENTION_DAYS"
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def purge_runs(instance: dg.DagsterInstance, days: int, now: dt.datetime | None = None) -> int:
    """Delete finished runs last updated more than ``days`` days before ``now``; return how many."""
    if days <= 0:
        return 0
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=days)
    deleted = 0
    while True:
        records = instance.get_run_records(filters=dg.RunsFilter(statuses=FINISHED, updated_before=cutoff), limit=100)
        if not records:
            return deleted
        for record in records:
            instance.delete_run(record.dagster_run.run_id)
            deleted += 1


class RetentionConfig(dg.Config):
    days: int = 0


@dg.op(description="Delete finished Dagster runs older than the configured number of days.")
def purge_old_runs(context: dg.OpExecutionContext, config: RetentionConfig) -> int:
    deleted = purge_runs(context.instance, config.days)
    context.log.info(f"deleted {deleted} finished run(s) older than {config.days} day(s)")
    return deleted


@dg.job(description="Run retention: deletes finished runs older than SOM_RUN_RETENTION_DAYS.")
def run_retention_job():
    purge_old_runs()


def retention_days(env=None) -> int:
    """``SOM_RUN_RETENTION_DAYS`` as a whole number (0 when unset); ValueError on anything else."""
    raw = ((env if env is not None else os.environ).get(RETENTION_ENV) or "0").strip()
    if not raw.isdigit():
        raise ValueError(f"{RETENTION_ENV}={raw!r}: must be a whole number of days (0 keeps every run)")
    return int(raw)


@dg.schedule(job=run_retention_job, cron_schedule="30 4 * * *", execution_timezone="Europe/Copenhagen",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Daily: delete finished runs older than SOM_RUN_RETENTION_DAYS (skips when unset or 0).")
def run_retention_schedule(context: dg.ScheduleEvaluationContext):
    days = retention_days()
    if days <= 0:
        return dg.SkipReason(f"{RETENTION_ENV} is unset or 0: every run is kept")
    return dg.RunRequest(run_key=f"retention|{context.scheduled_execution_time:%Y%m%d}",
                         run_config={"ops": {"purge_old_runs": {"config": {"days": days}}}})
