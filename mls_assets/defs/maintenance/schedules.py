"""The weekly deletion sweep per feed (cron `MLS_SWEEP_CRON`, default Sundays 04:00 UTC)."""

import dagster as dg

from mls_assets.defs.automation.run_requests import FEED_TAG, TRIGGER_TAG
from mls_assets.defs.instigators import described
from mls_assets.defs.maintenance.jobs import deletion_sweep_job
from mls_assets.defs.resources import MongoResource
from mls_assets.lib.settings import SETTINGS
from mls_assets.lib.tenants import read_configs

SWEEP_CRON = SETTINGS.sweep_cron


@described(dg.schedule, cron_schedule=SWEEP_CRON, job=deletion_sweep_job, execution_timezone="UTC")
def weekly_deletion_sweep(context: dg.ScheduleEvaluationContext, mongo: MongoResource):
    """Weekly, per enabled feed: pulls every ListingKey and removes the listings gone from the
    source (never after an incomplete sweep or one that returned under 90% of the stored keys)."""
    when = context.scheduled_execution_time.isoformat()
    feeds = [f for f in read_configs(mongo.get_database()) if f.enabled]
    if not feeds:
        return dg.SkipReason("no enabled feeds")
    return [
        dg.RunRequest(
            run_key=f"sweep|{f.key}|{when}", partition_key=str(f.key), tags={FEED_TAG: str(f.key), TRIGGER_TAG: "sweep"}
        )
        for f in feeds
    ]
