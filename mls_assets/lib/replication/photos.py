"""Photos follow their listing: one document per photo, replaced only when they change.

Photos of active and closed listings live in `{t}_{m}_photos`, those of expired and
cancelled listings in `{t}_{m}_expired_photos`. For each changed raw listing and each photo
collection, `plan_photos` says what that collection must do: take the listing's photo set
(new, changed, or moving in from the other collection), give up the listing's photos (it
lives elsewhere now, or nowhere), or nothing (unchanged; or a record without the Photos
expansion, which never wipes stored photos). The IO manager replaces sets group by group.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import orjson
from pymongo.database import Database

from mls_assets.lib.catalogue import PHOTOS_OF_CLASS, CollectionSpec, siblings_of
from mls_assets.lib.store.lookup import GROUP_IN_CHUNK
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.store.writes import LOOKUP_CHUNK, Tombstone, batched
from mls_assets.lib.transform.fields import PHOTO_URI_FIELDS
from mls_assets.lib.transform.naming import camel_case
from mls_assets.lib.transform.photos import extract_photos
from mls_assets.lib.transform.values import FieldError, parse_datetime

SIGNATURE_FIELDS = ("photoId", "order", "primary", *(camel_case(name) for name in PHOTO_URI_FIELDS))


def photo_set_hash(photos: list[dict[str, Any]], changed_at: Any, *also: Any) -> str:
    """What makes a photo set "the same": its change time, ids, order, primary and URIs (and,
    for expired listings' photos, their `expiresAt`)."""
    payload = orjson.dumps(
        [str(changed_at), [[p.get(name) for name in SIGNATURE_FIELDS] for p in photos], *(str(value) for value in also)]
    )
    return hashlib.blake2b(payload, digest_size=12).hexdigest()


def _stored_sets(database: Database, spec: CollectionSpec, feed: FeedKey, keys: list[str]) -> dict[str, str]:
    """`{listingKey: photoSetHash}` of the photo sets a collection holds for these keys.

    A set is found by its first photo (`order: 0`, one document per listing), else by any
    of its photos (they all carry its hash): a set whose first photo was unusable starts at
    order 1, and without this it was rewritten every run and left behind when its listing
    moved."""
    stored: dict[str, str] = {}
    collection = database[spec.collection_name(feed)]
    projection = {"_id": 0, "listingKey": 1, "photoSetHash": 1}
    for chunk in batched(keys, LOOKUP_CHUNK):
        for doc in collection.find({"listingKey": {"$in": chunk}, "order": 0}, projection):
            stored[doc["listingKey"]] = doc.get("photoSetHash", "")
    missing = [key for key in keys if key not in stored]  # new listings, mostly: nothing to read
    for chunk in batched(missing, GROUP_IN_CHUNK):  # each key matches its whole set
        for doc in collection.find({"listingKey": {"$in": chunk}}, projection):
            stored.setdefault(doc["listingKey"], doc.get("photoSetHash", ""))
    return stored


def plan_photos(
    database: Database,
    feed: FeedKey,
    target: CollectionSpec,
    raws: list[dict[str, Any]],
    where: dict[str, str],
    empty: bool,
    expires_at: dict[str, Any] | None = None,
    sibling_empty: bool = False,
) -> Iterator[dict[str, Any] | Tombstone]:
    """What `target` (photos or expired photos) does for a batch of changed raw listings
    (`where`: the status class each lives in now): photo documents of the sets it takes,
    tombstones for the sets it gives up. `empty`: the collection held nothing when the run
    began (a first sync: nothing to compare with). `expires_at`: the expired listings'
    `expiresAt`, which their photos carry (the same TTL removes both; a new `expiresAt`
    makes the set change). `sibling_empty`: the other photo collection held nothing when the
    run began, so no set can move in from it (this run writes there only the sets of listings
    that live there)."""
    keys = [raw["listingKey"] for raw in raws]
    stored = {} if empty else _stored_sets(database, target, feed, keys)
    (sibling,) = siblings_of(target)
    moving_in: list[str] = []
    for raw in raws:
        key = raw["listingKey"]
        home = where.get(key)
        if home is None or PHOTOS_OF_CLASS[home] is not target:
            if key in stored:
                yield Tombstone((key,))  # it lives in the other collection now, or nowhere
            continue
        fields = raw.get("record", {}).get("StandardFields", {})
        if "Photos" not in fields:  # no expansion: never wipe; bring the stored set along if it moved
            if key not in stored and not sibling_empty:
                moving_in.append(key)
            continue
        changed_at = _changed_at(fields, raw)
        listing_id = str(fields.get("ListingId", key)).strip()  # as the flattened listing has it
        photos, _ = extract_photos(fields["Photos"], key, listing_id, changed_at)
        expiry = {"expiresAt": expires_at.get(key)} if expires_at is not None else {}
        signature = photo_set_hash(photos, changed_at, *expiry.values())
        if stored.get(key) == signature:
            continue
        for photo in photos:
            photo.update(photoSetHash=signature, tenantId=feed.tenant, mlsProvider=feed.mls, **expiry)
        yield from photos
    for chunk in batched(moving_in, GROUP_IN_CHUNK):
        for photo in database[sibling.collection_name(feed)].find({"listingKey": {"$in": chunk}}, {"_id": 0}):
            photo.pop("expiresAt", None)
            if expires_at is not None:
                photo["expiresAt"] = expires_at.get(photo["listingKey"])
            yield photo


def _changed_at(fields: dict[str, Any], raw: dict[str, Any]) -> Any:
    try:
        return parse_datetime(
            "PhotosChangeTimestamp", fields.get("PhotosChangeTimestamp") or raw["modificationTimestamp"]
        )
    except FieldError:
        return raw["modificationTimestamp"]
