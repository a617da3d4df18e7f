"""Smoke assets: prove the IO manager round trip (write a partition, read it back).

They stand in for the replication chain until it lands, and stay as a cheap end-to-end
check of a deployment's MongoDB wiring.
"""


import hashlib
from datetime import datetime

import dagster as dg
import pandas as pd

from mls_assets.defs.partitions import feed_day_partitions

SMOKE_ROWS_PER_PARTITION = 25


def smoke_documents(feed: str, day: str, rows: int = SMOKE_ROWS_PER_PARTITION) -> list[dict]:
    """Deterministic listing-like documents for one feed-day."""
    docs = []
    for i in range(rows):
        digest = hashlib.sha1(f"{feed}|{day}|{i}".encode()).hexdigest()
        docs.append(
            {
                "listingKey": f"{day.replace('-', '')}{i:04d}{digest[:6]}",
                "feed": feed,
                "listPrice": 250_000 + int(digest[:5], 16) % 2_000_000,
                "modificationTimestamp": datetime.fromisoformat(f"{day}T12:00:00+00:00"),
            }
        )
    return docs


@dg.asset(
    partitions_def=feed_day_partitions,
    group_name="smoke",
    kinds={"mongodb"},
    metadata={
        "collection": "{tenant}_{mls}_smoke_listings",
        "key_fields": ["listingKey"],
        "version_field": "modificationTimestamp",
        "indexes": [{"keys": [["listPrice", 1]]}],
    },
)
def smoke_listings(context: dg.AssetExecutionContext) -> dict[str, list[dict]]:
    """A small deterministic set of listing-like documents per feed and day.

    Returns `{partition key: documents}` so that one run can cover a range of partitions.
    """
    return {
        str(key): smoke_documents(key.keys_by_dimension["feed"], key.keys_by_dimension["day"])
        for key in context.partition_keys
    }


@dg.asset(
    partitions_def=feed_day_partitions,
    group_name="smoke",
    kinds={"mongodb"},
    metadata={"collection": "{tenant}_{mls}_smoke_summary", "key_fields": ["partition"]},
)
def smoke_summary(context: dg.AssetExecutionContext, smoke_listings: pd.DataFrame) -> list[dict]:
    """Reads the partitions back through the IO manager (as a DataFrame) and summarises each.

    Each summary carries `_partitionKey`, so a range run stores each in its own partition.
    """
    if smoke_listings.empty:
        return []
    return [
        {
            "_partitionKey": partition,
            "partition": partition,
            "rows": int(len(rows)),
            "meanListPrice": round(float(rows["listPrice"].mean()), 2),
        }
        for partition, rows in smoke_listings.groupby("_partitionKey")
    ]


smoke_job = dg.define_asset_job(
    "smoke_job",
    selection=dg.AssetSelection.assets(smoke_listings, smoke_summary),
)
