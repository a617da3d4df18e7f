"""The replication chain's partitioning: one UTC day of one feed (tenant x MLS)."""

from collections.abc import Mapping
from datetime import date

import dagster as dg

from mls_assets.lib.settings import SETTINGS

FEEDS_PARTITION_NAME = "feeds"

feeds_partitions = dg.DynamicPartitionsDefinition(name=FEEDS_PARTITION_NAME)

# end_offset=1: today's partition exists (it is synced intraday from the feed cursor).
day_partitions = dg.DailyPartitionsDefinition(
    start_date=SETTINGS.partitions_start_date,
    end_offset=1,
    timezone="UTC",
)

# The first day's partition also holds what was modified before it (the MLS's history).
FIRST_DAY = day_partitions.start.date()

feed_day_partitions = dg.MultiPartitionsDefinition({"day": day_partitions, "feed": feeds_partitions})


def run_check(name: str, asset: str, description: str, blocking: bool = False) -> dg.AssetCheckSpec:
    """A check of what one run wrote. Not partitioned: Dagster 1.13 records a partitioned
    check's result of a range run (a backfill, a first load) under no partition and leaves
    every day of the range "skipped", which the UI shows as the check's state. Unpartitioned,
    the UI shows the result of the run that materialized the asset last; which feed and days
    a failure belongs to is in the alert (`feeds status`, the webhook)."""
    return dg.AssetCheckSpec(name, asset=asset, description=description, blocking=blocking)


def feed_day_key(feed: str, day: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"day": day, "feed": feed})


def split_key(key: dg.MultiPartitionKey | str) -> tuple[str, date]:
    """`(feed key, day)` of a feed-day partition key."""
    if not isinstance(key, dg.MultiPartitionKey):
        key = feed_day_partitions.get_partition_key_from_str(str(key))
    dims = key.keys_by_dimension
    return dims["feed"], date.fromisoformat(dims["day"])


PARTITION_TAG = "dagster/partition"
FEED_PARTITION_TAG = "dagster/partition/feed"
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def feed_of_run(tags: Mapping[str, str]) -> str | None:
    """The one feed a run's partitions belong to, or None (unpartitioned, several feeds, or
    keys that are not feed-day keys)."""
    if tags.get(FEED_PARTITION_TAG):
        return tags[FEED_PARTITION_TAG]
    keys = [tags[t] for t in RANGE_TAGS if tags.get(t)] or ([tags[PARTITION_TAG]] if tags.get(PARTITION_TAG) else [])
    feeds = set()
    for key in keys:
        if "|" not in key:  # a feed-only partition (the sweep): the key is the feed
            feeds.add(key)
            continue
        day, _, feed = key.partition("|")  # a feed-day key is `day|feed`
        try:
            date.fromisoformat(day)
        except ValueError:  # not a feed-day key: no feed to queue behind
            return None
        feeds.add(feed)
    return feeds.pop() if len(feeds) == 1 else None


def range_run_tags(tags: Mapping[str, str]) -> dict[str, str] | None:
    """The tags a range run should carry when it also carries one partition's dimension tags
    (`dagster/partition/day`, `dagster/partition/feed`), which make Dagster run that one
    partition only; None when the tags agree already (no range, a one-key range, no dimension
    tags)."""
    start, end = (tags.get(t) for t in RANGE_TAGS)
    dimension_tags = [t for t in tags if t.startswith(PARTITION_TAG + "/")]
    if not (start and end) or start == end or not dimension_tags:
        return None
    return {k: v for k, v in tags.items() if k not in dimension_tags}


def range_tags(feed: str, first: str, last: str, last_feed: str | None = None) -> dict[str, str]:
    """The tags of one run over days `first`..`last` of one feed (what a single-run backfill
    carries), or of the feeds `feed`..`last_feed` in the feeds partition's order (a range of a
    multi-partition is the rectangle of its dimensions' ranges)."""
    start, end = RANGE_TAGS
    return {start: str(feed_day_key(feed, first)), end: str(feed_day_key(last_feed or feed, last))}


def days_by_feed(keys: list[str]) -> dict[str, dict[date, str]]:
    """A run's feed-day partition keys as {feed: {day: key}} (keys of a whole feed skipped)."""
    found: dict[str, dict[date, str]] = {}
    for key in keys:
        if "|" in key:
            feed, day = split_key(key)
            found.setdefault(feed, {})[day] = key
    return found


def partition_of_run(tags: Mapping[str, str]) -> str | None:
    """The run's partition key, or its range as `start...end` (as the CLI writes it)."""
    if tags.get(PARTITION_TAG):
        return tags[PARTITION_TAG]
    start, end = (tags.get(t) for t in RANGE_TAGS)
    return f"{start}...{end}" if start and end else None
