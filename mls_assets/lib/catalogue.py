"""The catalogue: every collection the pipeline keeps, in one place.

For each collection: its name (per feed, `{tenant}_{mls}_<name>`, or per tenant), the
fields that identify a document, the version that orders writes, the fields the CRM owns
(written on insert only), the fields whose change alone is no change, its indexes, which
status class it holds, whether the deletion sweep removes vanished listings from it, and
whether it is replaced per group (a listing's photos) rather than merged per document.
Assets, the IO manager, feed discovery, the sweep, the CRM code and the checks all read
their facts from here; nothing else lists collections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo.database import Database

from mls_assets.lib.settings import SETTINGS
from mls_assets.lib.store.indexes import ensure_indexes
from mls_assets.lib.store.naming import FeedKey, tenant_collection
from mls_assets.lib.transform.fields import CRM_OWNED_FIELDS

# Seconds after `expiresAt` before MongoDB's TTL monitor deletes an expired listing (0: at
# expiresAt). Set once per collection: an existing TTL index is not changed.
EXPIRED_TTL_SECONDS = SETTINGS.expired_ttl_seconds
SEQUENCE_FIELD = "_seq"  # the feed's write sequence, stamped on every written document


@dataclass(frozen=True)
class CollectionSpec:
    """How one collection is named, keyed, versioned, protected and indexed."""

    name: str
    key: tuple[str, ...]
    version: str | None = None
    protected: tuple[str, ...] = ()
    volatile: tuple[str, ...] = ()
    indexes: tuple[dict[str, Any], ...] = ()
    status_class: str | None = None  # active / closed / expired
    swept: bool = False  # the deletion sweep removes vanished listings here
    group: str | None = None  # documents are replaced as a group per this field (photos)
    sequenced: bool = True  # written documents carry the feed's write sequence (consumers read changes)
    patched: bool = False  # documents owned by another system: only `Patch`es of our fields, no inserts
    key_is_id: bool = False  # the (single) key is stored as `_id`: its uniqueness costs no index of its own
    # a run's writes here are handed to its own consumers on local disk, not read back (`store.handoff`)
    spooled: bool = False
    # a field the spool keeps beside each document, so a consumer reading by its value
    # (`where={field: value}`) decodes only those documents
    spool_tag: str | None = None
    # a changed document carries the fields its earlier versions had and it lacks (`_dropped`),
    # so that the collections built from it with a `$set` (CRM-shared ones) remove them too
    keeps_dropped: bool = False
    per_tenant: bool = False
    description: str = ""

    def collection_name(self, feed: FeedKey) -> str:
        return tenant_collection(feed.tenant, self.name) if self.per_tenant else feed.collection(self.name)

    def all_indexes(self) -> list[dict[str, Any]]:
        """The declared indexes plus the unique key and, if sequenced, the write sequence."""
        found = (
            []
            if self.key == ("_id",) or self.key_is_id
            else [{"keys": [[name, 1] for name in self.key], "unique": True}]
        )
        if self.sequenced:
            found.append({"keys": [[SEQUENCE_FIELD, 1]]})
        if self.version and not any(index["keys"] == [[self.version, 1]] for index in self.indexes):
            found.append({"keys": [[self.version, 1]]})  # a day partition's documents are a range of it
        return [*found, *self.indexes]


_LISTING_INDEXES = (
    {"keys": [["listingId", 1]]},
    {"keys": [["city", 1], ["standardStatus", 1]]},
    {"keys": [["listPrice", 1]]},
    {"keys": [["location", "2dsphere"]]},
    {"keys": [["modificationTimestamp", 1]]},
    {"keys": [["crm_property_ids", 1]]},
)
_PHOTO_INDEXES = ({"keys": [["listingKey", 1], ["order", 1]]},)  # a listing's photos, in order
_EXPIRY_TTL = {"keys": [["expiresAt", 1]], "expireAfterSeconds": EXPIRED_TTL_SECONDS}  # TTL: expiresAt must be a date


def _status(name: str, klass: str, description: str, extra: tuple = ()) -> CollectionSpec:
    return CollectionSpec(
        name,
        ("listingKey",),
        "modificationTimestamp",
        protected=CRM_OWNED_FIELDS,
        volatile=("lastSyncedAt",),
        indexes=_LISTING_INDEXES + extra,
        status_class=klass,
        swept=True,
        description=description,
    )


RAW = CollectionSpec(
    "raw_listings",
    ("listingKey",),
    "modificationTimestamp",
    swept=True,
    spooled=True,  # read by the flattening and the photos of the same run
    description="Spark records with photos expanded, screened, newest version per ListingKey.",
)
FLATTENED = CollectionSpec(
    "flattened_listings",
    ("listingKey",),
    "modificationTimestamp",
    volatile=("lastSyncedAt",),
    swept=True,
    spooled=True,  # read by the routing and the CRM of the same run
    spool_tag="statusClass",  # the routing reads each class's listings in a pass of its own
    keeps_dropped=True,  # the status collections are `$set`: a field the source stopped sending goes there too
    indexes=({"keys": [["city", 1]]},),  # the reference data reads a city's listings
    description="Flat camelCase listings with derived fields and contentHash.",
)
ACTIVE = _status("listings", "active", "On-market listings (Active, Active Under Contract, Pending, Coming Soon).")
CLOSED = _status("closed_listings", "closed", "Closed (sold) listings.")
EXPIRED = _status(
    "expired_listings",
    "expired",
    "Expired, Canceled and Withdrawn listings within 90 days of their status change: `expiresAt` is a BSON date "
    "with a TTL index; lead fields are set on insert only.",
    (
        _EXPIRY_TTL,
        {"keys": [["leadStatus", 1], ["statusChangeDate", -1]]},
        {"keys": [["statusChangeDate", -1], ["listingKey", 1]]},
    ),  # the leads API's list order
)
HISTORY = CollectionSpec(
    "status_history",
    ("listingKey", "at", "to"),
    description="Append-only status transitions {listingKey, from, to, at, runId}.",
)
PHOTOS = CollectionSpec(
    "photos",
    ("photoId",),
    group="listingKey",
    indexes=_PHOTO_INDEXES,
    swept=True,
    sequenced=False,
    key_is_id=True,
    description="Photos of active and closed listings, one document per photo, every CDN size.",
)
EXPIRED_PHOTOS = CollectionSpec(
    "expired_photos",
    ("photoId",),
    group="listingKey",
    swept=True,
    indexes=(*_PHOTO_INDEXES, _EXPIRY_TTL),
    sequenced=False,
    key_is_id=True,
    description="Photos of expired and cancelled listings, with their listing's "
    "`expiresAt`: the same TTL removes both.",
)
REJECTS = CollectionSpec(
    "rejects",
    ("rejectKey",),
    sequenced=False,
    indexes=({"keys": [["listingKey", 1]]}, {"keys": [["runId", 1], ["stage", 1]]}),  # a run's rejects
    description="The quarantine: records that could not be stored, with the reason.",
)
CRM_PROPERTIES = CollectionSpec(
    "crm_properties",
    ("_id",),
    per_tenant=True,
    sequenced=False,
    patched=True,
    indexes=({"keys": [["mls_feed", 1], ["mls_property_id", 1]]},),
    description="The tenant's CRM properties (the CRM's own documents).",
)

LEAD_EVENTS = CollectionSpec(
    "lead_events",
    ("_id",),
    per_tenant=True,
    sequenced=False,
    indexes=({"keys": [["listingKey", 1], ["at", -1]]},),
    description="Every change the CRM made to a lead: who, when, before, after.",
)

QUOTA_HELD = CollectionSpec(
    "quota_held",
    ("_id",),
    sequenced=False,
    indexes=({"keys": [["heldAt", 1], ["_id", 1]]},),
    description="New listings an enforced maxListings kept out of the status collections "
    "(key, class, since when), brought in when the quota allows.",
)

PHOTO_MEDIA = CollectionSpec(
    "photo_media",
    ("_id",),
    sequenced=False,
    indexes=(
        {"keys": [["listingKey", 1]]},
        {"keys": [["nextAttemptAt", 1]]},  # retries and pending photos, when due
        {"keys": [["expiresAt", 1]]},  # an expired listing's media go when its TTL does
        {"keys": [["gone", 1]]},  # media of deleted listings, to remove
    ),
    description="Each photo's re-hosted media (key: the photo's id): the version made, `ok` with each WebP "
    "variant's storage key, size and bytes, or `failed` with a reason, attempts and the next try.",
)

FEED_COLLECTIONS = (RAW, FLATTENED, ACTIVE, CLOSED, EXPIRED, HISTORY, PHOTOS, EXPIRED_PHOTOS, REJECTS)
# Created by their first write, for the few feeds that need them (not at registration).
ON_DEMAND_FEED_COLLECTIONS = (QUOTA_HELD, PHOTO_MEDIA)
EVERY_FEED_COLLECTION = (*FEED_COLLECTIONS, *ON_DEMAND_FEED_COLLECTIONS)
STATUS_COLLECTIONS: dict[str, CollectionSpec] = {s.status_class: s for s in (ACTIVE, CLOSED, EXPIRED)}
PHOTOS_OF_CLASS: dict[str, CollectionSpec] = {"active": PHOTOS, "closed": PHOTOS, "expired": EXPIRED_PHOTOS}
TENANT_COLLECTIONS = (CRM_PROPERTIES, LEAD_EVENTS)  # one per tenant, shared by its feeds
BY_NAME: dict[str, CollectionSpec] = {s.name: s for s in (*EVERY_FEED_COLLECTION, *TENANT_COLLECTIONS)}


@dataclass(frozen=True)
class SharedCollection:
    """A collection outside every tenant's scope (reference data): one per database, written
    by its asset (facts only: names, slugs, coordinates, counts, medians)."""

    name: str
    indexes: tuple[dict[str, Any], ...] = ()
    description: str = ""


SHARED_CITIES = SharedCollection(
    "shared_cities",
    ({"keys": [["location", "2dsphere"]]}, {"keys": [["state", 1], ["slug", 1]], "unique": True}),
    "One document per (state, city) any feed's listings name.",
)
SHARED_NEIGHBORHOODS = SharedCollection(
    "shared_neighborhoods",
    ({"keys": [["cityId", 1]]}, {"keys": [["location", "2dsphere"]]}),
    "Subdivisions per city, spelling variants merged.",
)
SHARED_SCHOOLS = SharedCollection(
    "shared_schools",
    ({"keys": [["cities", 1]]}, {"keys": [["level", 1], ["slug", 1]]}),
    "Schools by level, name and district, with the cities they serve.",
)
CITY_MARKET_DAILY = SharedCollection(
    "city_market_daily",
    ({"keys": [["day", 1], ["cityId", 1]]}, {"keys": [["cityId", 1], ["day", 1]]}),
    "The market per city and day.",
)
SHARED_BY_NAME: dict[str, SharedCollection] = {
    c.name: c for c in (SHARED_CITIES, SHARED_NEIGHBORHOODS, SHARED_SCHOOLS, CITY_MARKET_DAILY)
}


# A listing lives in exactly one collection of its group: written to one, it leaves the others.
SIBLING_GROUPS = ((ACTIVE, CLOSED, EXPIRED), (PHOTOS, EXPIRED_PHOTOS))


def siblings_of(spec: CollectionSpec) -> tuple[CollectionSpec, ...]:
    for group in SIBLING_GROUPS:
        if spec in group:
            return tuple(s for s in group if s is not spec)
    return ()


def provision_feed(database: Database, feed: FeedKey) -> None:
    """What a feed's first load needs before it writes: its tenant's collections and indexes
    (the CRM's and the lead events', written by others). Its own collections are created by
    their writers, unindexed for the load and indexed once it is in."""
    for spec in TENANT_COLLECTIONS:
        ensure_indexes(database[spec.collection_name(feed)], spec.all_indexes())


def ensure_feed_collections(database: Database, feed: FeedKey) -> list[str]:
    """Create every collection of a feed (and its tenant's) with its indexes."""
    names = []
    for spec in (*FEED_COLLECTIONS, *TENANT_COLLECTIONS):
        collection = database[spec.collection_name(feed)]
        ensure_indexes(collection, spec.all_indexes())
        names.append(collection.name)
    return names
