"""Photos follow their listing: one document per photo, replaced only when they change.

Photos of active and closed listings live in `{t}_{m}_photos`, those of expired and
cancelled listings in `{t}_{m}_expired_photos`. A listing's photos are replaced only when
its photo set changed (PhotosChangeTimestamp, ids or URIs); a record without the Photos
expansion never wipes stored photos; photos move when their listing moves; photos whose
listing is gone are removed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from pymongo import ReplaceOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from mls_assets.lib.replication.collections import (
    ACTIVE,
    CLOSED,
    EXPIRED,
    EXPIRED_PHOTOS,
    PHOTOS,
)
from mls_assets.lib.replication.routing import stored_versions
from mls_assets.lib.store.merge import DUPLICATE_KEY, batched
from mls_assets.lib.tenants import FeedConfig
from mls_assets.lib.transform.photos import extract_photos
from mls_assets.lib.transform.values import FieldError, parse_datetime

PHOTO_COLLECTION_OF = {"active": PHOTOS, "closed": PHOTOS, "expired": EXPIRED_PHOTOS}


@dataclass
class PhotoCounts:
    listings_replaced: int = 0
    listings_unchanged: int = 0
    listings_moved: int = 0
    listings_kept_without_expansion: int = 0
    photos_written: int = 0
    photos_removed: int = 0
    orphans_removed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def photo_set_hash(photos: list[dict[str, Any]], changed_at: Any) -> str:
    parts = [str(changed_at)] + [
        "|".join(f"{k}={p[k]}" for k in sorted(p) if k.startswith("uri") or k in ("photoId", "order", "primary"))
        for p in photos
    ]
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=12).hexdigest()


def _stored_sets(database: Database, feed: FeedConfig, keys: list[str]) -> dict[str, dict[str, str]]:
    """`{collection: {listingKey: photoSetHash}}` for the keys."""
    stored: dict[str, dict[str, str]] = {PHOTOS: {}, EXPIRED_PHOTOS: {}}
    for name in stored:
        cursor = database[feed.collection(name)].find(
            {"listingKey": {"$in": keys}}, {"_id": 0, "listingKey": 1, "photoSetHash": 1}
        )
        for doc in cursor:
            stored[name][doc["listingKey"]] = doc.get("photoSetHash", "")
    return stored


def sync_photos(database: Database, feed: FeedConfig, raw_docs: Iterable[dict[str, Any]], run_id: str,
                batch_size: int = 500) -> PhotoCounts:  # fmt: skip
    """Bring the photos of these raw listings in line with where the listings now live.

    Works a batch of listings at a time with a few bulk operations (not a round trip per
    listing): old photos of changed listings are deleted, new and moved photos inserted,
    then the copies left in the other collection removed.
    """
    counts = PhotoCounts()
    for batch in batched(raw_docs, batch_size):
        keys = [doc["listingKey"] for doc in batch]
        plan = _Plan()
        where = {key: found["class"] for key, found in stored_versions(database, feed, keys).items()}
        stored = _stored_sets(database, feed, keys)
        for doc in batch:
            _plan_listing(doc, where.get(doc["listingKey"]), stored, plan, counts, feed, run_id)
        _apply(database, feed, plan, counts)
    return counts


@dataclass
class _Plan:
    """Bulk operations for one batch, by photo collection name."""

    delete_first: dict[str, list[str]] = field(default_factory=lambda: {PHOTOS: [], EXPIRED_PHOTOS: []})
    insert: dict[str, list[dict]] = field(default_factory=lambda: {PHOTOS: [], EXPIRED_PHOTOS: []})
    move: list[tuple[str, str, str]] = field(default_factory=list)  # (key, from, to)
    delete_after: dict[str, list[str]] = field(default_factory=lambda: {PHOTOS: [], EXPIRED_PHOTOS: []})


def _plan_listing(raw: dict[str, Any], klass: str | None, stored: dict[str, dict[str, str]], plan: _Plan,
                  counts: PhotoCounts, feed: FeedConfig, run_id: str) -> None:  # fmt: skip
    key = raw["listingKey"]
    target = PHOTO_COLLECTION_OF.get(klass) if klass else None
    others = [name for name in (PHOTOS, EXPIRED_PHOTOS) if name != target and key in stored[name]]
    fields_ = raw["record"].get("StandardFields", {})
    if target is None:  # the listing is in no status collection: its photos go too
        for name in others:
            plan.delete_after[name].append(key)
        return
    if "Photos" not in fields_:
        # no expansion (or an empty one): never wipe; move what is stored if the listing moved
        counts.listings_kept_without_expansion += 1
        for name in others:
            if key not in stored[target]:
                plan.move.append((key, name, target))
            plan.delete_after[name].append(key)
        return
    try:
        changed_at = parse_datetime("PhotosChangeTimestamp",
                                    fields_.get("PhotosChangeTimestamp") or fields_["ModificationTimestamp"])  # fmt: skip
    except (FieldError, KeyError):
        changed_at = raw.get("modificationTimestamp")
    photos, _ = extract_photos(fields_["Photos"], key, str(fields_.get("ListingId", key)), changed_at)
    signature = photo_set_hash(photos, changed_at)
    for name in others:
        plan.delete_after[name].append(key)
    if stored[target].get(key) == signature:
        if others:
            counts.listings_moved += 1
        else:
            counts.listings_unchanged += 1
        return
    if key in stored[target]:
        plan.delete_first[target].append(key)
    for photo in photos:
        photo.update(photoSetHash=signature, tenantId=feed.tenant_id, mlsProvider=feed.mls, _runId=run_id)
    plan.insert[target].extend(photos)
    counts.listings_moved += 1 if others else 0
    counts.listings_replaced += 1


def _delete(database: Database, feed: FeedConfig, name: str, keys: list[str]) -> int:
    removed = 0
    for chunk in batched(keys, 500):
        removed += database[feed.collection(name)].delete_many({"listingKey": {"$in": chunk}}).deleted_count
    return removed


def _apply(database: Database, feed: FeedConfig, plan: _Plan, counts: PhotoCounts) -> None:
    for name, keys in plan.delete_first.items():
        counts.photos_removed += _delete(database, feed, name, keys)
    for key, source, target in plan.move:
        moving = list(database[feed.collection(source)].find({"listingKey": key}, {"_id": 0}))
        if moving:
            plan.insert[target].extend(moving)
            counts.listings_moved += 1
    for name, photos in plan.insert.items():
        for chunk in batched(photos, 1000):
            counts.photos_written += _insert_or_replace(database[feed.collection(name)], chunk)
    for name, keys in plan.delete_after.items():
        counts.photos_removed += _delete(database, feed, name, keys)


def _insert_or_replace(collection: Collection, photos: list[dict[str, Any]]) -> int:
    """Insert in bulk; a photo another writer stored first (same `photoId`) is replaced by
    this one, so overlapping writers converge instead of failing on the unique index."""
    try:
        collection.insert_many(photos, ordered=False)
        return len(photos)
    except BulkWriteError as error:
        taken = [photos[e["index"]] for e in error.details.get("writeErrors", []) if e.get("code") == DUPLICATE_KEY]
        if len(taken) != len(error.details.get("writeErrors", [])):
            raise
    for photo in taken:
        photo.pop("_id", None)
    collection.bulk_write([ReplaceOne({"photoId": p["photoId"]}, p, upsert=True) for p in taken], ordered=False)
    return len(photos)


def remove_orphans(database: Database, feed: FeedConfig) -> int:
    """Delete photos whose listing is not in the matching status collections."""
    removed = 0
    homes = {PHOTOS: (ACTIVE, CLOSED), EXPIRED_PHOTOS: (EXPIRED,)}
    for photos_name, listing_names in homes.items():
        photos = database[feed.collection(photos_name)]
        photo_keys = set(photos.distinct("listingKey"))
        if not photo_keys:
            continue
        listing_keys: set[str] = set()
        for name in listing_names:
            listing_keys.update(database[feed.collection(name)].distinct("listingKey"))
        orphans = sorted(photo_keys - listing_keys)
        for batch in batched(orphans, 500):
            removed += photos.delete_many({"listingKey": {"$in": batch}}).deleted_count
    return removed
