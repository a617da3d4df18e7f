"""Run requests for the replication chain: tagged by feed so two runs of one feed never
overlap (`mls/feed` is limited to one run per value in dagster.yaml)."""

import hashlib
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import date

import dagster as dg

from mls_assets.defs.partitions import FEEDS_PARTITION_NAME, feed_day_key, range_tags
from mls_assets.lib.feeds import shared_runs
from mls_assets.lib.settings import SETTINGS

FEED_TAG = "mls/feed"
TRIGGER_TAG = "mls/trigger"
# A run in these states holds its feed's place: the queue's, the probe's, the operator's view.
IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


PRIORITY_TAG = "dagster/priority"
# Dagster's queue starts the highest priority first (in order within one). A change seen in the
# source, and the days a failed shared run owes its feeds, go first: a freshness-critical run
# never waits behind the safety net's, the nightly or first loads. Photos, which follow the
# listings, go last.
RUN_PRIORITY = {"probe": 10, "catch-up": 10, "crm-rescrape": 5, "media": -5}


def trigger_tags(trigger: str) -> dict[str, str]:
    """The run's trigger, and its place in the queue when it is not the default's."""
    priority = RUN_PRIORITY.get(trigger, 0)
    return {TRIGGER_TAG: trigger, **({PRIORITY_TAG: str(priority)} if priority else {})}


def chain_run(feed: str, day: date, trigger: str, run_key: str, run_config: dict | None = None) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=run_key,
        partition_key=str(feed_day_key(feed, day.isoformat())),
        tags={FEED_TAG: feed, **trigger_tags(trigger)},
        run_config=run_config or {},
    )


MAX_RETRIES_TAG = "dagster/max_retries"
MEMBER_TAG_PREFIX = "mls-feed/"  # one tag per feed of a shared run (`mls-feed/<feed>`), for finding its runs
SHARED_RUN_FEEDS = SETTINGS.shared_run_feeds


def member_tags(feeds: list[str]) -> dict[str, str]:
    return {f"{MEMBER_TAG_PREFIX}{feed}": "1" for feed in feeds}


def shared_run(feeds: list[str], first: date, last: date, trigger: str, run_key: str) -> dg.RunRequest:
    """One run over days `first`..`last` of consecutive feeds (`shared_runs`): a range of both
    dimensions. One feed: the usual run of that feed, queued behind its other runs. Several: no
    `mls/feed` tag (the feed leases keep their steps apart from other runs of those feeds), a
    `mls-feed/<feed>` tag per feed so that its runs are found, and the sources they share pulled
    once."""
    if len(feeds) == 1 and first == last:
        return chain_run(feeds[0], first, trigger, run_key)
    tags = {**trigger_tags(trigger), **range_tags(feeds[0], first.isoformat(), last.isoformat(), last_feed=feeds[-1])}
    if len(feeds) == 1:
        tags[FEED_TAG] = feeds[0]
    else:  # recovered by `shared_run_failure_sensor`, feed by feed, not by Dagster's retry of all
        tags.update({**member_tags(feeds), MAX_RETRIES_TAG: "0"})
    return dg.RunRequest(run_key=run_key, tags=tags)


def feeds_order(instance: dg.DagsterInstance) -> Sequence[str]:
    """The feeds partition's keys in Dagster's order (the order a range of feeds follows)."""
    return instance.get_dynamic_partitions(FEEDS_PARTITION_NAME)


def shared_requests(
    order: Sequence[str], due: Mapping[str, str], alone: Collection[str], first: date, last: date, trigger: str
) -> list[dg.RunRequest]:
    """Runs over days `first`..`last` of the `due` feeds (feed -> what names its run key: its
    cursor, the tick), feeds that lie next to each other in `order` (`feeds_order`, read once
    per tick) sharing a run, at most `MLS_SHARED_RUN_FEEDS` (50) a run; the feeds in `alone`
    and feeds not yet registered get one run each."""
    together = {feed for feed in due if feed not in alone}
    requests, covered = [], set()
    for feeds in shared_runs(order, together, SHARED_RUN_FEEDS):
        covered.update(feeds)
        if len(feeds) == 1:
            run_key = f"{trigger}|{feeds[0]}|{due[feeds[0]]}"
        else:
            digest = hashlib.blake2b("|".join(f"{f}@{due[f]}" for f in feeds).encode(), digest_size=8).hexdigest()
            run_key = f"{trigger}|{feeds[0]}..{feeds[-1]}|{len(feeds)}|{digest}"
        requests.append(shared_run(feeds, first, last, trigger, run_key))
    for feed in sorted(set(due) - covered):
        requests.append(shared_run([feed], first, last, trigger, f"{trigger}|{feed}|{due[feed]}"))
    return requests


RUNS_PAGE = 1000


def runs_matching(instance: dg.DagsterInstance, filters: dg.RunsFilter) -> Iterator[dg.DagsterRun]:
    """Every run matching `filters`, a page at a time: no sensor reasons about part of them."""
    cursor = None
    while True:
        page = instance.get_runs(filters=filters, cursor=cursor, limit=RUNS_PAGE)
        yield from page
        if len(page) < RUNS_PAGE:
            return
        cursor = page[-1].run_id


def feeds_of_run(tags: dict[str, str]) -> set[str]:
    """The feeds a run serves, by its tags: its `mls/feed`, or each `mls-feed/<feed>` of a
    shared run."""
    found = {key.removeprefix(MEMBER_TAG_PREFIX) for key in tags if key.startswith(MEMBER_TAG_PREFIX)}
    if tags.get(FEED_TAG):
        found.add(tags[FEED_TAG])
    return found


def feeds_with_runs(instance: dg.DagsterInstance) -> set[str]:
    """Feeds that have a run queued or in progress (of any job: a backfill counts too)."""
    return {
        feed for run in runs_matching(instance, dg.RunsFilter(statuses=IN_PROGRESS)) for feed in feeds_of_run(run.tags)
    }


def first_load_attempts(instance: dg.DagsterInstance, feeds: list[str]) -> Counter:
    """How many first loads were requested for each of `feeds`, alone or shared (every first
    load run, a page at a time: about one per source and 50 feeds, and one per failure)."""
    wanted = set(feeds)
    attempts: Counter = Counter()
    for run in runs_matching(instance, dg.RunsFilter(tags={TRIGGER_TAG: "first_load"})):
        attempts.update(feeds_of_run(run.tags) & wanted)
    return attempts
