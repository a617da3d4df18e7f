"""Per-feed collections and their indexes (seed 002), created once per collection."""

from __future__ import annotations

import os

from pymongo.database import Database

from mls_assets.lib.store.merge import ensure_indexes
from mls_assets.lib.tenants import FeedConfig

RAW = "raw_listings"
FLATTENED = "flattened_listings"
ACTIVE = "listings"
CLOSED = "closed_listings"
EXPIRED = "expired_listings"
PHOTOS = "photos"
EXPIRED_PHOTOS = "expired_photos"
HISTORY = "status_history"
REJECTS = "rejects"
CRM_PROPERTIES = "crm_properties"  # per tenant, not per feed: `tenant_collection(tenant, CRM_PROPERTIES)`
STATUS_COLLECTIONS = {"active": ACTIVE, "closed": CLOSED, "expired": EXPIRED}
# Seconds after `expiresAt` before MongoDB's TTL monitor deletes an expired listing (0: at
# expiresAt). Set once per collection: an existing TTL index is not changed.
EXPIRED_TTL_SECONDS = int(os.environ.get("MLS_EXPIRED_TTL_SECONDS", "0"))

LISTING_INDEXES = [
    {"keys": [["listingKey", 1]], "unique": True},
    {"keys": [["listingId", 1]]},
    {"keys": [["city", 1], ["standardStatus", 1]]},
    {"keys": [["listPrice", 1]]},
    {"keys": [["location", "2dsphere"]]},
    {"keys": [["modificationTimestamp", 1]]},
    {"keys": [["crm_property_ids", 1]]},
]
EXPIRED_INDEXES = [
    *LISTING_INDEXES,
    {"keys": [["expiresAt", 1]], "expireAfterSeconds": EXPIRED_TTL_SECONDS},  # TTL: expiresAt must be a date
    {"keys": [["leadStatus", 1], ["statusChangeDate", -1]]},
]
PHOTO_INDEXES = [
    {"keys": [["listingKey", 1], ["order", 1]]},
    {"keys": [["photoId", 1]], "unique": True},
    {"keys": [["listingId", 1]]},
]
INDEXES = {
    RAW: [{"keys": [["listingKey", 1]], "unique": True}, {"keys": [["modificationTimestamp", 1]]}],
    FLATTENED: [{"keys": [["listingKey", 1]], "unique": True}, {"keys": [["standardStatus", 1]]}],
    ACTIVE: LISTING_INDEXES,
    CLOSED: LISTING_INDEXES,
    EXPIRED: EXPIRED_INDEXES,
    PHOTOS: PHOTO_INDEXES,
    EXPIRED_PHOTOS: PHOTO_INDEXES,
    HISTORY: [{"keys": [["listingKey", 1], ["at", 1], ["to", 1]], "unique": True}],
    REJECTS: [{"keys": [["rejectKey", 1]], "unique": True}, {"keys": [["listingKey", 1]]}],
}


def ensure_feed_collections(database: Database, feed: FeedConfig) -> list[str]:
    """Create every collection of a feed with its indexes (seed 002: when a feed is added)."""
    names = []
    for name, specs in INDEXES.items():
        collection = database[feed.collection(name)]
        ensure_indexes(collection, specs)
        names.append(collection.name)
    return names
