"""`flattened_listings`: flat camelCase documents with derived fields and `contentHash`."""

import time
from collections import Counter
from collections.abc import Iterator

import dagster as dg

from mls_assets.defs.failures import fails_clearly
from mls_assets.defs.leases import LeaseResource
from mls_assets.defs.partitions import feed_day_partitions, split_key
from mls_assets.defs.policies import SINGLE_RUN_BACKFILL
from mls_assets.defs.resources import ClockResource, MongoResource
from mls_assets.lib.replication.collections import FLATTENED, RAW, REJECTS
from mls_assets.lib.replication.rejects import clear_rejects, store_rejects
from mls_assets.lib.store.documents import CommitAfterWrite
from mls_assets.lib.store.merge import MergeSpec, clear_pending
from mls_assets.lib.tenants import feed_config
from mls_assets.lib.transform.batch import transform_record

LISTING_KEY = MergeSpec(("listingKey",))
FLATTENED_STORAGE = {
    "collection": "{tenant}_{mls}_" + FLATTENED,
    "key_fields": ["listingKey"],
    "version_field": "modificationTimestamp",
    "volatile_fields": ["lastSyncedAt"],
    "indexes": [{"keys": [["standardStatus", 1]]}, {"keys": [["modificationTimestamp", 1]]}],
    "pending_for": ["status"],
}


@dg.asset(
    partitions_def=feed_day_partitions,
    group_name="listings",
    kinds={"mongodb", "python"},
    metadata=FLATTENED_STORAGE,
    backfill_policy=SINGLE_RUN_BACKFILL,
    ins={"raw_listings": dg.AssetIn(metadata={"load_as": "batches", "pending_only": "flattened"})},
)
@fails_clearly
def flattened_listings(
    context: dg.AssetExecutionContext, raw_listings, mongo: MongoResource, clock: ClockResource, leases: LeaseResource
) -> CommitAfterWrite:
    """Every raw listing of the partition written since this asset last processed it,
    cleaned, flattened to camelCase, with slugs,
    GeoJSON location, land lease details, status class, lead fields for expired listings
    and a `contentHash` of its source content. Records that cannot be made valid go to
    `{tenant}_{mls}_rejects` with the reason and never fail the batch."""
    database = mongo.get_database()
    now = clock.now()
    leases.hold_feeds(context)
    feeds = {}
    for key in context.partition_keys:
        feed_key, _ = split_key(key)
        feeds.setdefault(feed_key, feed_config(database, feed_key))
    seen = {"flattened": 0, "rejected": 0, "classes": Counter(), "ok_keys": {}, "processed": {}}
    started = time.monotonic()

    def documents() -> Iterator[dict]:
        for batch in raw_listings:
            rejects_by_feed: dict[str, list] = {}
            for raw in batch:
                partition = raw["_partitionKey"]
                feed = feeds[split_key(partition)[0]]
                seen["processed"].setdefault(str(feed.key), []).append((raw["listingKey"],))
                result = transform_record(raw["record"], feed.identity, now, screened=True)
                if result.reject is not None:
                    rejects_by_feed.setdefault(partition, []).append(result.reject)
                    continue
                seen["flattened"] += 1
                seen["classes"][result.listing["statusClass"]] += 1
                seen["ok_keys"].setdefault(str(feed.key), []).append(result.listing["listingKey"])
                yield {**result.listing, "_partitionKey": partition}
            for partition, rejects in rejects_by_feed.items():
                feed = feeds[split_key(partition)[0]]
                seen["rejected"] += store_rejects(database[feed.collection(REJECTS)], rejects, "flatten",
                                                  partition, context.run.run_id)  # fmt: skip

    def commit() -> None:
        for feed_key, keys in seen["ok_keys"].items():
            clear_rejects(database[feeds[feed_key].collection(REJECTS)], keys)
        for feed_key, keys in seen["processed"].items():
            clear_pending(database[feeds[feed_key].collection(RAW)], "flattened", keys, LISTING_KEY)

    def metadata() -> dict:
        total = seen["flattened"] + seen["rejected"]
        return {
            "flattened": seen["flattened"],
            "rejected": seen["rejected"],
            "reject_rate": round(seen["rejected"] / total, 4) if total else 0.0,
            "status_class_counts": dict(seen["classes"]),
            "transform_seconds": round(time.monotonic() - started, 2),
        }

    return CommitAfterWrite(documents(), on_commit=commit, metadata=metadata)


