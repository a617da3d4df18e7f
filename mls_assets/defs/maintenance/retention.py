"""Run history retention: the runs of a fleet are many (each feed's probe, safety-net, nightly
and sweep runs), and Dagster keeps every run and its events until deleted, so the run
storage would grow without bound. `run_retention_sensor` deletes, each hour, the runs that
ended more than `MLS_RUN_RETENTION_DAYS` (30) days ago, oldest first, a page at a time within
a time budget (the next tick goes on). Runs queued or in progress are never touched.
Sensor and schedule ticks have their own retention in the instance config (`retention:`).
"""

import time
from datetime import UTC, datetime, timedelta

import dagster as dg

from mls_assets.defs.instigators import described
from mls_assets.defs.leases import ENDED
from mls_assets.lib.settings import SETTINGS

RUN_RETENTION_DAYS = SETTINGS.run_retention_days
PURGE_PAGE = 200
PURGE_BUDGET_S = 30.0


def purge_runs(instance: dg.DagsterInstance, created_before: datetime, budget_s: float = PURGE_BUDGET_S) -> int:
    """Delete the ended runs created before `created_before` (with their event logs), oldest
    first, until none is left or `budget_s` is spent; how many were deleted."""
    deadline, deleted = time.monotonic() + budget_s, 0
    filters = dg.RunsFilter(statuses=list(ENDED), created_before=created_before)
    while time.monotonic() < deadline:
        page = instance.get_run_records(filters=filters, limit=PURGE_PAGE, order_by="create_timestamp", ascending=True)
        for record in page:
            instance.delete_run(record.dagster_run.run_id)
            deleted += 1
        if len(page) < PURGE_PAGE:
            break
    return deleted


@described(dg.sensor, minimum_interval_seconds=3600, default_status=dg.DefaultSensorStatus.RUNNING)
def run_retention_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Deletes the runs that ended more than MLS_RUN_RETENTION_DAYS ago (30 s of work a tick)."""
    before = datetime.now(UTC) - timedelta(days=RUN_RETENTION_DAYS)
    deleted = purge_runs(context.instance, before)
    summary = f"deleted {deleted} runs created before {before.isoformat(timespec='seconds')}"
    if deleted:
        context.log.info(summary)
    return dg.SkipReason(summary)
