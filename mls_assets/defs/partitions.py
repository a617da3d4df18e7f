"""The replication chain's partitioning: one UTC day of one feed (tenant x MLS)."""


import os
from datetime import date

import dagster as dg

FEEDS_PARTITION_NAME = "feeds"
DEFAULT_START_DATE = "2025-01-01"

feeds_partitions = dg.DynamicPartitionsDefinition(name=FEEDS_PARTITION_NAME)

# end_offset=1: today's partition exists (it is synced intraday from the feed cursor).
day_partitions = dg.DailyPartitionsDefinition(
    start_date=os.environ.get("MLS_PARTITIONS_START_DATE", DEFAULT_START_DATE),
    end_offset=1,
    timezone="UTC",
)

# The first day's partition also holds what was modified before it (the MLS's history).
FIRST_DAY = day_partitions.start.date()

feed_day_partitions = dg.MultiPartitionsDefinition({"day": day_partitions, "feed": feeds_partitions})


def feed_day_key(feed: str, day: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"day": day, "feed": feed})


def split_key(key: dg.MultiPartitionKey | str) -> tuple[str, date]:
    """`(feed key, day)` of a feed-day partition key."""
    if not isinstance(key, dg.MultiPartitionKey):
        key = feed_day_partitions.get_partition_key_from_str(str(key))
    dims = key.keys_by_dimension
    return dims["feed"], date.fromisoformat(dims["day"])
