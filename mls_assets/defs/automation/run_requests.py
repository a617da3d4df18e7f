"""Run requests for the replication chain: tagged by feed so two runs of one feed never
overlap (`mls/feed` is limited to one run per value in dagster.yaml)."""

from collections import Counter
from collections.abc import Iterator
from datetime import date

import dagster as dg

from mls_assets.defs.partitions import FIRST_DAY, feed_day_key, range_tags

FEED_TAG = "mls/feed"
TRIGGER_TAG = "mls/trigger"
# A run in these states holds its feed's place: the queue's, the probe's, the operator's view.
IN_PROGRESS = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
               dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]  # fmt: skip


def chain_run(feed: str, day: date, trigger: str, run_key: str, run_config: dict | None = None) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=run_key,
        partition_key=str(feed_day_key(feed, day.isoformat())),
        tags={FEED_TAG: feed, TRIGGER_TAG: trigger},
        run_config=run_config or {},
    )


def first_load_run(feed: str, today: date, attempt: int = 0) -> dg.RunRequest:
    """A feed's first load: one range run over every day partition up to today, so that each
    day shows its own listings from the start (the first day also holds the older history).
    Its run key names the attempt: a failed first load is requested again, a running one not."""
    return dg.RunRequest(
        run_key=f"first-load|{feed}|{attempt}",
        tags={FEED_TAG: feed, TRIGGER_TAG: "first_load", **range_tags(feed, FIRST_DAY.isoformat(), today.isoformat())},
    )


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


def feeds_with_runs(instance: dg.DagsterInstance) -> set[str]:
    """Feeds that have a run queued or in progress (of any job: a backfill counts too)."""
    return {run.tags[FEED_TAG] for run in runs_matching(instance, dg.RunsFilter(statuses=IN_PROGRESS))
            if run.tags.get(FEED_TAG)}  # fmt: skip


def first_load_attempts(instance: dg.DagsterInstance, feeds: list[str]) -> Counter:
    """How many first loads were requested for each of `feeds` (one query per 500 feeds)."""
    attempts: Counter = Counter()
    for start in range(0, len(feeds), 500):
        filters = dg.RunsFilter(tags={TRIGGER_TAG: "first_load", FEED_TAG: feeds[start:start + 500]})
        attempts.update(run.tags.get(FEED_TAG) for run in runs_matching(instance, filters))
    return attempts
