"""Sensors that start and guard the feeds' runs.

`nightly_sync_sensor`: each feed at its own cron from its config (GPS 02:00, CRMLS 03:00 in
the demo). A sensor, not one schedule per feed, so that a config change (new feed, new
cron, disabled feed) takes effect without a code change. Its cursor is the time it last
looked; for each enabled feed whose cron ticked since, it requests yesterday's partition of
the whole chain. Run keys name the feed and the tick, so a tick never runs twice.

`dead_run_sensor`: a run whose process was killed (SIGKILL, a lost host) stays STARTED in
Dagster and would hold its feed's place in the run queue (`mls/feed` allows one run at a
time). Every run of this code location records its presence in the `leases` collection and
renews it while it lives; this sensor marks STARTED runs whose presence went stale as
failed, with the reason, and frees every lease they held, however the run was launched.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg
from croniter import croniter

from mls_assets.defs.automation.jobs import replication_job
from mls_assets.defs.automation.run_requests import chain_run
from mls_assets.defs.instigators import described
from mls_assets.defs.leases import reap_dead_runs
from mls_assets.defs.resources import MongoResource
from mls_assets.lib.tenants import FeedConfig, read_configs


def latest_tick(cron: str, after: datetime, upto: datetime) -> datetime | None:
    """The last time `cron` fired in (after, upto], or None."""
    tick = croniter(cron, upto + timedelta(seconds=1)).get_prev(datetime)
    if tick > upto:  # `upto` was within a second before the tick: that tick has not come yet
        tick = croniter(cron, tick).get_prev(datetime)
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


@described(dg.sensor, job=replication_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def nightly_sync_sensor(context: dg.SensorEvaluationContext, mongo: MongoResource) -> dg.SensorResult:
    """Requests yesterday's partition of each enabled feed when the feed's cron fires."""
    now = datetime.now(UTC)
    if context.cursor is None:
        return dg.SensorResult(cursor=now.isoformat(), skip_reason="first tick: starting from now")
    after = datetime.fromisoformat(context.cursor)
    requests = nightly_requests(read_configs(mongo.get_database()), after, now)
    return dg.SensorResult(run_requests=requests, cursor=now.isoformat())


@described(dg.sensor, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def dead_run_sensor(context: dg.SensorEvaluationContext, mongo: MongoResource) -> dg.SkipReason | None:
    """Marks runs whose process is gone as failed and frees their leases."""
    dead = reap_dead_runs(context.instance, mongo.get_database())
    for run_id in dead:
        context.log.warning(f"run {run_id}: its process is gone: marked failed, its leases freed")
    if not dead:
        return dg.SkipReason("no run in progress is dead")
    return None
