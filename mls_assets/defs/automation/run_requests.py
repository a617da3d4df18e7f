"""Run requests for the replication chain: tagged by feed so two runs of one feed never
overlap (`mls/feed` is limited to one run per value in dagster.yaml)."""

from datetime import date

import dagster as dg

from mls_assets.defs.partitions import feed_day_key

FEED_TAG = "mls/feed"
TRIGGER_TAG = "mls/trigger"


def chain_run(feed: str, day: date, trigger: str, run_key: str, run_config: dict | None = None) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=run_key,
        partition_key=str(feed_day_key(feed, day.isoformat())),
        tags={FEED_TAG: feed, TRIGGER_TAG: trigger},
        run_config=run_config or {},
    )
