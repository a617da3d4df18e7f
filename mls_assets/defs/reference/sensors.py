"""What starts the reference assets after the feeds' runs: the automation condition sensor
for `city_market_daily`, and `shared_places_sensor` for the places."""

from datetime import UTC, datetime

import dagster as dg

from mls_assets.defs.automation.jobs import replication_job
from mls_assets.defs.automation.run_requests import IN_PROGRESS
from mls_assets.defs.instigators import described
from mls_assets.defs.reference.jobs import shared_places_job

reference_automation_sensor = dg.AutomationConditionSensorDefinition(
    "reference_automation_sensor",
    target=dg.AssetSelection.assets("city_market_daily"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    emit_backfills=False,
    description="Updates today's market figures after feeds' listings change "
    "(city_market_daily's automation condition: any upstream feed-day updated, none in progress).",
)


@described(dg.sensor, job=shared_places_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def shared_places_sensor(context: dg.SensorEvaluationContext):
    """Rebuilds the shared places (the touched cities) after any feed's run succeeded since
    the last rebuild, never while one is in progress. One query of the runs that ended since
    its cursor: its cost follows the runs, not the feeds or their partitions."""
    if context.cursor is None:
        return dg.SensorResult(cursor=str(datetime.now(UTC).timestamp()), skip_reason="first tick: starting from now")
    finished = context.instance.get_run_records(
        dg.RunsFilter(
            job_name=replication_job.name,
            statuses=[dg.DagsterRunStatus.SUCCESS],
            updated_after=datetime.fromtimestamp(float(context.cursor), UTC),
        ),
        limit=1,
        order_by="update_timestamp",
        ascending=False,
    )
    if not finished:
        return dg.SkipReason("no feed run succeeded since the last rebuild")
    if context.instance.get_run_records(dg.RunsFilter(job_name=shared_places_job.name, statuses=IN_PROGRESS), limit=1):
        return dg.SkipReason("a rebuild of the shared places is in progress")
    last = finished[0].update_timestamp.timestamp()
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"places|{last}")], cursor=str(last))
