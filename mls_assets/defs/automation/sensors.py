"""Sensors that start and guard the feeds' runs.

`nightly_sync_sensor`: each feed at its own cron from its config (GPS 02:00, CRMLS 03:00 in
the demo). A sensor, not one schedule per feed, so that a config change (new feed, new
cron, disabled feed) takes effect without a code change. Its cursor is the time it last
looked; for the enabled feeds whose cron ticked since, it requests yesterday's partition of
the whole chain, the feeds of one source (one minute when they name no cron) sharing runs.
Run keys name the feeds and the tick, so a tick never runs twice.

`dead_run_sensor`: a run whose process was killed (SIGKILL, a lost host) stays STARTED in
Dagster and would hold its feed's place in the run queue (`mls/feed` allows one run at a
time). Every run of this code location records its presence in the `leases` collection and
renews it while it lives; this sensor marks STARTED runs whose presence went stale as
failed, with the reason, and frees every lease they held, however the run was launched.
"""

from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta

import dagster as dg
from croniter import croniter

from mls_assets.defs.automation.jobs import replication_job
from mls_assets.defs.automation.run_requests import feeds_order, shared_requests
from mls_assets.defs.instigators import described
from mls_assets.defs.leases import reap_dead_runs
from mls_assets.defs.resources import MongoResource
from mls_assets.lib.store.alone import feeds_alone
from mls_assets.lib.tenants import FeedConfig, read_configs


def latest_tick(cron: str, after: datetime, upto: datetime) -> datetime | None:
    """The last time `cron` fired in (after, upto], or None."""
    tick = croniter(cron, upto + timedelta(seconds=1)).get_prev(datetime)
    if tick > upto:  # `upto` was within a second before the tick: that tick has not come yet
        tick = croniter(cron, tick).get_prev(datetime)
    return tick if tick > after else None


def nightly_due(feeds: list[FeedConfig], after: datetime, now: datetime) -> dict[date, dict[str, str]]:
    """{the day to sync: {feed: its cron's tick}} for the enabled feeds whose cron fired in
    (after, now]: yesterday's partition of each tick."""
    due: dict[date, dict[str, str]] = {}
    ticks: dict[str, datetime | None] = {}  # per cron, not per feed: thousands of feeds share a few hundred
    for feed in feeds:
        if not feed.enabled:
            continue
        if feed.sync_schedule not in ticks:
            ticks[feed.sync_schedule] = latest_tick(feed.sync_schedule, after, now)
        tick = ticks[feed.sync_schedule]
        if tick is not None:
            due.setdefault((tick - timedelta(days=1)).date(), {})[str(feed.key)] = tick.isoformat()
    return due


def nightly_requests(
    instance: dg.DagsterInstance, feeds: list[FeedConfig], after: datetime, now: datetime, alone: Collection[str] = ()
) -> list[dg.RunRequest]:
    """The nightly runs: the feeds of one source (one cron minute) share them."""
    due_by_day = nightly_due(feeds, after, now)
    order = feeds_order(instance) if due_by_day else []
    return [
        request
        for day, due in sorted(due_by_day.items())
        for request in shared_requests(order, due, alone, day, day, "nightly")
    ]


@described(dg.sensor, job=replication_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def nightly_sync_sensor(context: dg.SensorEvaluationContext, mongo: MongoResource) -> dg.SensorResult:
    """Requests yesterday's partition of each enabled feed when the feed's cron fires."""
    now = datetime.now(UTC)
    if context.cursor is None:
        return dg.SensorResult(cursor=now.isoformat(), skip_reason="first tick: starting from now")
    after = datetime.fromisoformat(context.cursor)
    database = mongo.get_database()
    feeds = read_configs(database)
    requests = nightly_requests(context.instance, feeds, after, now, feeds_alone(database))
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
