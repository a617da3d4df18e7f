"""The intraday status sync: today's partition of every enabled feed, every 15 minutes by
default (`MLS_INTRADAY_CRON`), pulling only from each feed's cursor."""

import os

import dagster as dg

from mls_assets.defs.automation.jobs import replication_job
from mls_assets.defs.automation.run_requests import chain_run
from mls_assets.defs.instigators import described
from mls_assets.defs.resources import MongoResource
from mls_assets.lib.tenants import read_configs

INTRADAY_CRON = os.environ.get("MLS_INTRADAY_CRON", "*/15 * * * *")


@described(dg.schedule, cron_schedule=INTRADAY_CRON, job=replication_job, execution_timezone="UTC")
def intraday_status_sync(context: dg.ScheduleEvaluationContext, mongo: MongoResource):
    """Today's partition for every enabled feed; a status change moves the listing and
    lands in the status history within one tick."""
    when = context.scheduled_execution_time
    feeds = [f for f in read_configs(mongo.get_database()) if f.enabled]
    if not feeds:
        return dg.SkipReason("no enabled feeds")
    return [chain_run(str(f.key), when.date(), "intraday", f"intraday|{f.key}|{when.isoformat()}") for f in feeds]
