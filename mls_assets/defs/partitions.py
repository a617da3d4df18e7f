"""The replication chain's partitioning: one UTC day of one feed (tenant x MLS)."""


import os

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

feed_day_partitions = dg.MultiPartitionsDefinition({"day": day_partitions, "feed": feeds_partitions})


def feed_day_key(feed: str, day: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"day": day, "feed": feed})
