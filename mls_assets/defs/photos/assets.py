"""The photos domain: `listing_photos` and `expired_listing_photos`, one document per photo,
following its listing."""

import hashlib
import heapq
from collections.abc import Iterator

import dagster as dg

from mls_assets.defs.feed_assets import feed_multi_asset
from mls_assets.defs.leases import LeaseResource
from mls_assets.defs.partitions import run_check
from mls_assets.defs.quality.results import check_result
from mls_assets.defs.resources import MongoResource
from mls_assets.lib.catalogue import EXPIRED, EXPIRED_PHOTOS, PHOTOS
from mls_assets.lib.quality import measures
from mls_assets.lib.replication.photos import plan_photos
from mls_assets.lib.replication.routing import Places
from mls_assets.lib.store.changes import ChangeSet, WriteMarks
from mls_assets.lib.store.indexes import ensure_indexes
from mls_assets.lib.store.lookup import docs_by_key
from mls_assets.lib.store.naming import FeedKey

OUTPUTS = {"listing_photos": PHOTOS, "expired_listing_photos": EXPIRED_PHOTOS}
# The run's check reads the photos of at most this many of the listings it changed, per feed
# (a fault of the photo plan shows in any 500): a first sync of 43k listings read all their 600k
# photos (15 s of the server's time at 50k); the scheduled audit (`orphan_or_wiped_photos`) reads
# every listing.
CHECKED_LISTINGS = 500


def checked_listings(keys: list[str]) -> list[str]:
    """The run's listings whose photos its check reads: all of them, or `CHECKED_LISTINGS`
    spread over the feed by a hash of the key (the same listings for the same run, not the
    first ones in key order, which cluster by listing date)."""
    if len(keys) <= CHECKED_LISTINGS:
        return keys
    return heapq.nsmallest(
        CHECKED_LISTINGS, keys, key=lambda key: hashlib.blake2b(key.encode(), digest_size=8).digest()
    )


def expiry_of(database, feed: FeedKey, keys: list[str]) -> dict[str, object]:
    """The stored expired listings' `expiresAt` (their photos carry it): read once for all
    of the run's expired listings, by point lookups or, for many, one projected scan."""
    collection = database[EXPIRED.collection_name(feed)]
    found = docs_by_key(
        collection,
        "listingKey",
        keys,
        {"_id": 0, "listingKey": 1, "expiresAt": 1},
        WriteMarks(database).count(collection),
    )
    return {d["listingKey"]: d.get("expiresAt") for d in found}


@feed_multi_asset(
    OUTPUTS,
    group="photos",
    changes_of="raw_listings",
    deps=["active_listings", "closed_listings", "expired_listings"],
    check_specs=[
        run_check(
            "no_orphan_or_wiped_photos",
            asset="listing_photos",
            description="For the listings this run changed (at most 500 per feed, spread over it; the scheduled "
            "audit reads every one): no photo without its listing, and no listing with photos whose photos are gone "
            "(an empty expansion must never wipe them).",
        )
    ],
)
def photo_collections(
    context: dg.AssetExecutionContext, raw_listings: ChangeSet, mongo: MongoResource, leases: LeaseResource
):
    """Replaces a listing's photos only when its photo set changed, never wipes them for a
    record without the Photos expansion, moves them with their listing between the two
    collections, and removes those of listings that left every status collection. Reads the
    raw records changed since it last ran (they carry the Photos expansion)."""
    database = mongo.get_database()
    marks = WriteMarks(database)
    homes: dict[FeedKey, dict[str, str | None]] = {feed: {} for feed in raw_listings.feeds}
    empty_before = {  # the photo collections the run began with nothing in
        spec.name: {feed: marks.last(database[spec.collection_name(feed)]) is None for feed in raw_listings.feeds}
        for spec in OUTPUTS.values()
    }

    def first_pass(feed: FeedKey, empty: bool) -> Iterator:
        """Every changed listing: where it lives now, and the photos that belong in PHOTOS."""
        places = Places(database, feed, expected=raw_listings.count(feed))
        for _, batch in raw_listings.batches(feed):
            where = {key: place["class"] for key, place in places.of([r["listingKey"] for r in batch]).items()}
            homes[feed].update((raw["listingKey"], where.get(raw["listingKey"])) for raw in batch)
            yield from plan_photos(
                database, feed, PHOTOS, batch, where, empty, sibling_empty=empty_before[EXPIRED_PHOTOS.name][feed]
            )

    def second_pass(feed: FeedKey, empty: bool) -> Iterator:
        """Only the expired listings' raw records are read again; the others matter only if
        EXPIRED_PHOTOS holds their photos (they left)."""
        expired = [key for key, home in homes[feed].items() if home == "expired"]
        where = {key: "expired" for key in expired}
        if expired:  # the TTL index too, on a feed registered before photos carried expiresAt
            ensure_indexes(database[EXPIRED_PHOTOS.collection_name(feed)], EXPIRED_PHOTOS.all_indexes())
        expires_at = expiry_of(database, feed, expired)
        for batch in raw_listings.documents(feed, expired):
            yield from plan_photos(
                database, feed, EXPIRED_PHOTOS, batch, where, empty, expires_at, empty_before[PHOTOS.name][feed]
            )
        if not empty:
            others = [{"listingKey": key} for key, home in homes[feed].items() if home != "expired"]
            for start in range(0, len(others), raw_listings.batch_size):
                yield from plan_photos(
                    database,
                    feed,
                    EXPIRED_PHOTOS,
                    others[start : start + raw_listings.batch_size],
                    homes[feed],
                    empty,
                    {},
                )

    for (name, spec), plan in zip(OUTPUTS.items(), (first_pass, second_pass), strict=True):
        empty = empty_before[spec.name]
        yield dg.Output({str(feed): plan(feed, empty[feed]) for feed in raw_listings.feeds}, output_name=name)
    changed = {feed: list(keys) for feed, keys in homes.items()}
    raw_listings.commit(context.run.run_id)
    checked = {feed: checked_listings(keys) for feed, keys in changed.items()}
    finding = measures.merge_findings(
        (str(f), measures.orphan_photos(database, f, keys)) for f, keys in checked.items()
    )
    yield check_result(
        finding,
        "orphan photos or listings missing their photos",
        "listing_photos",
        "no_orphan_or_wiped_photos",
        dg.AssetCheckSeverity.WARN,
        scope={
            "listings_checked": sum(map(len, checked.values())),
            "listings_changed": sum(map(len, changed.values())),
        },
    )
