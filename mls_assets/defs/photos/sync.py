"""`listing_photos` and `expired_listing_photos`: one document per photo, following its listing."""

import dagster as dg

from mls_assets.defs.failures import fails_clearly
from mls_assets.defs.leases import LeaseResource
from mls_assets.defs.partitions import feed_day_partitions, split_key
from mls_assets.defs.policies import SINGLE_RUN_BACKFILL
from mls_assets.defs.resources import MongoResource
from mls_assets.lib.replication.collections import EXPIRED_PHOTOS, INDEXES, PHOTOS, RAW
from mls_assets.lib.replication.photos import PhotoCounts, remove_orphans, sync_photos
from mls_assets.lib.store.merge import (
    PARTITION_FIELD,
    MergeSpec,
    batched,
    clear_pending,
    ensure_indexes,
    pending_flag,
)
from mls_assets.lib.tenants import feed_config


@dg.multi_asset(
    partitions_def=feed_day_partitions,
    backfill_policy=SINGLE_RUN_BACKFILL,
    group_name="photos",
    specs=[
        dg.AssetSpec("listing_photos", kinds={"mongodb"}, group_name="photos",
                     partitions_def=feed_day_partitions,
                     description="Photos of active and closed listings, one document per photo with "
                     "every CDN size ({tenant}_{mls}_photos).",
                     deps=["raw_listings", "active_listings", "closed_listings"]),
        dg.AssetSpec("expired_listing_photos", kinds={"mongodb"}, group_name="photos",
                     partitions_def=feed_day_partitions,
                     description="Photos of expired and cancelled listings ({tenant}_{mls}_expired_photos).",
                     deps=["raw_listings", "expired_listings"]),
    ],  # fmt: skip
)
@fails_clearly
def photo_collections(context: dg.AssetExecutionContext, mongo: MongoResource, leases: LeaseResource):
    """Replaces a listing's photos only when its photo set changed, never wipes them for a
    record without the Photos expansion, moves them with their listing, removes orphans.
    Reads the raw records of its partitions (they carry the Photos expansion) and writes
    itself, since replace-per-listing is not a merge; it reports instead of returning."""
    database = mongo.get_database()
    leases.hold_feeds(context)
    totals = PhotoCounts()
    feeds = {}
    for key in context.partition_keys:
        feed_key, _ = split_key(key)
        feed = feeds.setdefault(feed_key, feed_config(database, feed_key))
        for name in (PHOTOS, EXPIRED_PHOTOS):
            ensure_indexes(database[feed.collection(name)], INDEXES[name])
        raw_collection = database[feed.collection(RAW)]
        pending = {PARTITION_FIELD: str(key), pending_flag("photos"): True}
        pending_keys = [d["listingKey"] for d in raw_collection.find(pending, {"_id": 0, "listingKey": 1})]
        for chunk in batched(pending_keys, 500):  # bounded memory: records carry all their photos
            raws = raw_collection.find({"listingKey": {"$in": chunk}}, {"_id": 0, "listingKey": 1,
                                                                        "modificationTimestamp": 1, "record": 1})  # fmt: skip
            counts = sync_photos(database, feed, raws, context.run.run_id)
            clear_pending(raw_collection, "photos", [(k,) for k in chunk], MergeSpec(("listingKey",)))
            for field, value in counts.as_dict().items():
                setattr(totals, field, getattr(totals, field) + value)
    for feed in feeds.values():
        totals.orphans_removed += remove_orphans(database, feed)
    metadata = totals.as_dict()
    for name, collection in (("listing_photos", PHOTOS), ("expired_listing_photos", EXPIRED_PHOTOS)):
        tables = [f"{database.name}.{f.collection(collection)}" for f in feeds.values()]
        yield dg.MaterializeResult(asset_key=name, metadata={**metadata, "dagster/table_name": ", ".join(tables)})
