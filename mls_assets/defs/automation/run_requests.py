"""Run requests for the replication chain: tagged by feed so two runs of one feed never
overlap (`mls/feed` is limited to one run per value in dagster.yaml)."""

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
