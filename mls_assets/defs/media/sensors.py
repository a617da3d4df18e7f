"""What starts the media runs: `photo_media_sensor`."""

import hashlib
from collections.abc import Collection
from datetime import UTC, datetime

import dagster as dg

from mls_assets.defs.automation.jobs import replication_job
from mls_assets.defs.automation.run_requests import (
    IN_PROGRESS,
    SHARED_RUN_FEEDS,
    feeds_of_run,
    feeds_order,
    runs_matching,
    trigger_tags,
)
from mls_assets.defs.instigators import described
from mls_assets.defs.maintenance.jobs import deletion_sweep_job
from mls_assets.defs.media.assets import MEDIA_BACKLOG, media_job
from mls_assets.defs.partitions import feed_day_key, feed_of_run, range_tags
from mls_assets.defs.resources import ClockResource, MongoResource
from mls_assets.lib.feeds import shared_runs
from mls_assets.lib.settings import SETTINGS

MEDIA_MEMBER_PREFIX = "mls-media/"  # one tag per feed of a media run: not `mls-feed/`, so it holds no feed's place


def media_run(feeds: list[str], day: str, run_key: str) -> dg.RunRequest:
    """One media run over consecutive feeds of the feeds partition (one feed: its partition)."""
    tags = {**trigger_tags("media"), **{f"{MEDIA_MEMBER_PREFIX}{feed}": "1" for feed in feeds}}
    if len(feeds) == 1:
        return dg.RunRequest(run_key=run_key, partition_key=str(feed_day_key(feeds[0], day)), tags=tags)
    return dg.RunRequest(run_key=run_key, tags={**tags, **range_tags(feeds[0], day, day, last_feed=feeds[-1])})


def media_spans(order: list[str], waiting: Collection[str], busy: Collection[str], most: int) -> list[list[str]]:
    """The runs for the `waiting` feeds: the feeds' order cut into fixed blocks of `most`, and
    in each block with a waiting feed one run from its first waiting feed to its last (the
    feeds between cost a few index reads each). So a tick asks at most one run per block,
    however scattered the waiting feeds: runs grow with feeds / `most`, not with the feeds
    that changed. A block with a busy feed inside that span runs its waiting feeds in
    consecutive groups instead, around the busy one."""
    spans = []
    for start in range(0, len(order), most):
        block = order[start : start + most]
        here = [index for index, feed in enumerate(block) if feed in waiting]
        if not here:
            continue
        span = block[here[0] : here[-1] + 1]
        if any(feed in busy for feed in span):
            spans.extend(shared_runs(span, waiting, most))
        else:
            spans.append(span)
    return spans


def media_feeds_of_run(run: dg.DagsterRun) -> set[str]:
    found = {key.removeprefix(MEDIA_MEMBER_PREFIX) for key in run.tags if key.startswith(MEDIA_MEMBER_PREFIX)}
    single = feed_of_run(run.tags)
    return found | ({single} if single else set())


@described(
    dg.sensor,
    job=media_job,
    minimum_interval_seconds=SETTINGS.media_interval_s,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def photo_media_sensor(context: dg.SensorEvaluationContext, mongo: MongoResource, clock: ClockResource):
    """Re-hosts the photos of feeds whose replication or sweep runs succeeded since its last
    tick, and of feeds with photos due for a retry: at most one run per block of
    MLS_SHARED_RUN_FEEDS (50) feeds a tick; a feed with a media run in progress waits for it.
    Its reads follow the runs that ended and the feeds that wait, not the number of feeds."""
    instance = context.instance
    since = datetime.fromtimestamp(float(context.cursor), UTC) if context.cursor else None
    due: dict[str, str] = {}
    newest = since
    for job in (replication_job.name, deletion_sweep_job.name):
        for run in runs_matching(
            instance, dg.RunsFilter(job_name=job, statuses=[dg.DagsterRunStatus.SUCCESS], updated_after=since)
        ):
            for feed in feeds_of_run(run.tags) or {feed_of_run(run.tags)} - {None}:
                due[feed] = run.run_id[:8]
        records = instance.get_run_records(
            dg.RunsFilter(job_name=job, statuses=[dg.DagsterRunStatus.SUCCESS], updated_after=since),
            limit=1,
            order_by="update_timestamp",
            ascending=False,
        )
        if records and (newest is None or records[0].update_timestamp > newest):
            newest = records[0].update_timestamp
    now = clock.now()
    for doc in mongo.get_database()[MEDIA_BACKLOG].find({"dueAt": {"$lte": now}}):
        due.setdefault(doc["_id"], f"retry-{int(doc['dueAt'].timestamp())}")
    busy = {
        feed
        for run in runs_matching(instance, dg.RunsFilter(job_name=media_job.name, statuses=IN_PROGRESS))
        for feed in media_feeds_of_run(run)
    }
    order = feeds_order(instance)
    registered = set(order)
    waiting = {feed: mark for feed, mark in due.items() if feed not in busy and feed in registered}
    day = now.date().isoformat()
    requests = []
    for feeds in media_spans(order, waiting, busy, SHARED_RUN_FEEDS):
        digest = hashlib.blake2b("|".join(f"{f}@{waiting.get(f, '-')}" for f in feeds).encode(), digest_size=8)
        requests.append(media_run(feeds, day, f"media|{feeds[0]}..{feeds[-1]}|{len(feeds)}|{digest.hexdigest()}"))
    cursor = str(newest.timestamp()) if newest else context.cursor
    if not requests:
        return dg.SensorResult(
            skip_reason=f"no feed waits for media ({len(busy)} with a media run in progress)", cursor=cursor
        )
    context.log.info(f"media runs for {len(waiting)} feeds in {len(requests)} runs ({len(busy)} busy)")
    return dg.SensorResult(run_requests=requests, cursor=cursor)
