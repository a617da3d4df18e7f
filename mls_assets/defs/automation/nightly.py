"""Nightly sync: each feed at its own cron from its config (seed 002: GPS 02:00, CRMLS 03:00).

A sensor, not one schedule per feed, so that a config change (new feed, new cron,
disabled feed) takes effect without a code change. The sensor's cursor is the time it
last looked; for each enabled feed whose cron ticked since, it requests yesterday's
partition of the whole chain. Run keys name the feed and the tick, so a tick never runs
twice.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg
from croniter import croniter

from mls_assets.defs.automation.run_requests import chain_run
from mls_assets.defs.jobs import replication_job
from mls_assets.defs.resources import MongoResource
from mls_assets.lib.tenants import FeedConfig, read_configs


def latest_tick(cron: str, after: datetime, upto: datetime) -> datetime | None:
    """The last time `cron` fired in (after, upto], or None."""
    tick = croniter(cron, upto + timedelta(seconds=1)).get_prev(datetime)
    return tick if tick > after else None


def nightly_requests(feeds: list[FeedConfig], after: datetime, now: datetime) -> list[dg.RunRequest]:
    requests = []
    for feed in feeds:
        if not feed.enabled:
            continue
        tick = latest_tick(feed.sync_schedule, after, now)
        if tick is not None:
            yesterday = (tick - timedelta(days=1)).date()
            requests.append(chain_run(str(feed.key), yesterday, "nightly", f"nightly|{feed.key}|{tick.isoformat()}"))
    return requests


@dg.sensor(job=replication_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def nightly_sync_sensor(context: dg.SensorEvaluationContext, mongo: MongoResource) -> dg.SensorResult:
    """Requests yesterday's partition of each enabled feed when the feed's cron fires."""
    now = datetime.now(UTC)
    if context.cursor is None:
        return dg.SensorResult(cursor=now.isoformat(), skip_reason="first tick: starting from now")
    after = datetime.fromisoformat(context.cursor)
    requests = nightly_requests(read_configs(mongo.get_database()), after, now)
    return dg.SensorResult(run_requests=requests, cursor=now.isoformat())
