"""CRM-linked properties (seed 001): links both ways, MLS data kept in sync, CRM fields kept.

A tenant's CRM properties live in `{tenant}_crm_properties`. A property links to one MLS
listing (`mls_property_id` = the listing's key, `mls_feed` = the MLS), and the listing
carries the reverse `crm_property_ids`. Both sides change together. Syncing a property
writes only the MLS-owned fields below; everything else on it (`crm_status`, `notes`,
owners, leads, whatever the CRM wrote) is the CRM's and never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database

from mls_assets.lib.replication.collections import CRM_PROPERTIES, STATUS_COLLECTIONS
from mls_assets.lib.store.naming import FeedKey, tenant_collection


class CrmError(ValueError):
    """A link or sync that cannot be done, with the reason."""


@dataclass
class SyncCounts:
    updated: int = 0
    unchanged: int = 0
    broken: int = 0


def properties(database: Database, tenant: str):
    return database[tenant_collection(tenant, CRM_PROPERTIES)]


def find_listing(database: Database, feed: FeedKey, listing_key: str) -> tuple[str, dict] | None:
    """(status class, listing) wherever the listing lives now."""
    for klass, name in STATUS_COLLECTIONS.items():
        doc = database[feed.collection(name)].find_one({"listingKey": listing_key})
        if doc is not None:
            return klass, doc
    return None


def _property(database: Database, tenant: str, property_id: str) -> dict:
    found = properties(database, tenant).find_one({"_id": property_id})
    if found is None:
        raise CrmError(f"no CRM property {property_id!r} for tenant {tenant!r}")
    return found


def mls_fields(klass: str, listing: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The MLS-owned fields of a CRM property, from its listing."""
    return {
        "price": listing.get("listPrice"),
        "mls_status": listing.get("standardStatus"),
        "mls_status_class": klass,
        "bedrooms": listing.get("bedroomsTotal", listing.get("bedsTotal")),
        "bathrooms": listing.get("bathroomsTotalInteger"),
        "address": listing.get("unparsedAddress"),
        "city": listing.get("city"),
        "photos": {"count": listing.get("photoCount", 0), "primaryUrl": listing.get("primaryPhotoUrl")},
        "mls_content_hash": listing.get("contentHash"),
        "mlsLastSyncedAt": now,
    }


def sync_property(database: Database, tenant: str, property_id: str, now: datetime | None = None) -> str:
    """Copy the current MLS data onto one property: 'updated', 'unchanged' or 'broken'."""
    now = now or datetime.now(UTC)
    prop = _property(database, tenant, property_id)
    if not prop.get("mls_property_id"):
        raise CrmError(f"CRM property {property_id!r} is not linked to an MLS listing")
    feed = FeedKey(tenant, prop["mls_feed"])
    found = find_listing(database, feed, prop["mls_property_id"])
    collection = properties(database, tenant)
    if found is None:  # the listing left the feed: no dangling reference stays behind
        _mark_broken(collection, {"_id": property_id})
        return "broken"
    klass, listing = found
    if prop.get("mls_content_hash") == listing.get("contentHash") and prop.get("mls_status_class") == klass:
        return "unchanged"
    update: dict[str, Any] = {"$set": mls_fields(klass, listing, now), "$unset": {"mls_link_broken": ""}}
    if prop.get("mls_status") and prop.get("mls_status") != listing.get("standardStatus"):
        event = {"from": prop["mls_status"], "to": listing.get("standardStatus"),
                 "at": listing.get("statusChangeTimestamp") or listing.get("modificationTimestamp")}  # fmt: skip
        update["$push"] = {"mls_status_history": event}
    collection.update_one({"_id": property_id}, update)
    return "updated"


def link(database: Database, tenant: str, property_id: str, mls: str, listing_key: str) -> dict:
    """Link a CRM property to a listing (both sides), replacing an earlier link, then sync."""
    feed = FeedKey(tenant, mls)
    prop = _property(database, tenant, property_id)
    found = find_listing(database, feed, listing_key)
    if found is None:
        raise CrmError(f"no listing {listing_key!r} in feed {feed}: it is not in its active, closed or "
                       "expired collections")  # fmt: skip
    if prop.get("mls_property_id") and (prop["mls_property_id"], prop.get("mls_feed")) != (listing_key, mls):
        unlink(database, tenant, property_id)
    klass, _ = found
    database[feed.collection(STATUS_COLLECTIONS[klass])].update_one(
        {"listingKey": listing_key}, {"$addToSet": {"crm_property_ids": property_id}})
    properties(database, tenant).update_one(
        {"_id": property_id},
        {"$set": {"mls_property_id": listing_key, "mls_feed": mls, "linkedAt": datetime.now(UTC)},
         "$unset": {"mls_content_hash": ""}},
    )  # fmt: skip
    sync_property(database, tenant, property_id)
    return show(database, tenant, property_id)


def unlink(database: Database, tenant: str, property_id: str) -> None:
    prop = _property(database, tenant, property_id)
    if not prop.get("mls_property_id"):
        raise CrmError(f"CRM property {property_id!r} is not linked")
    feed = FeedKey(tenant, prop["mls_feed"])
    for name in STATUS_COLLECTIONS.values():
        database[feed.collection(name)].update_many(
            {"listingKey": prop["mls_property_id"]}, {"$pull": {"crm_property_ids": property_id}})
    properties(database, tenant).update_one(
        {"_id": property_id},
        {"$unset": {"mls_property_id": "", "mls_feed": "", "mls_content_hash": "", "mls_link_broken": ""},
         "$set": {"unlinkedAt": datetime.now(UTC)}},
    )  # fmt: skip


def show(database: Database, tenant: str, property_id: str) -> dict:
    prop = _property(database, tenant, property_id)
    listing = None
    if prop.get("mls_property_id"):
        found = find_listing(database, FeedKey(tenant, prop["mls_feed"]), prop["mls_property_id"])
        listing = found[1] if found else None
    return {"property": prop, "listing": listing}


def sync_linked(database: Database, tenant: str, listings: list[dict], now: datetime) -> SyncCounts:
    """Sync every property linked from these (changed) listings."""
    counts = SyncCounts()
    for listing in listings:
        for property_id in listing.get("crm_property_ids") or []:
            try:
                outcome = sync_property(database, tenant, property_id, now)
            except CrmError:
                outcome = "broken"
            setattr(counts, outcome, getattr(counts, outcome) + 1)
    return counts


def break_links(database: Database, feed: FeedKey, listing_keys: list[str]) -> int:
    """Listings that left the feed (deleted): their properties lose the link, both sides."""
    if not listing_keys:
        return 0
    return _mark_broken(properties(database, feed.tenant), {"mls_feed": feed.mls, "mls_property_id": {"$in": listing_keys}})


def _mark_broken(collection, query: dict) -> int:
    """Keep which listing it was (`mls_property_id_broken`), drop the live reference."""
    return collection.update_many(
        query,
        {"$rename": {"mls_property_id": "mls_property_id_broken"},
         "$set": {"mls_link_broken": True, "mlsLastSyncedAt": datetime.now(UTC)}, "$unset": {"mls_content_hash": ""}},
    ).modified_count  # fmt: skip


def needing_sync(database: Database, feed: FeedKey) -> list[dict]:
    """Properties linked (by our API or directly by the CRM) but never synced."""
    query = {"mls_feed": feed.mls, "mls_property_id": {"$exists": True}, "mls_content_hash": {"$exists": False}}
    return list(properties(database, feed.tenant).find(query, {"_id": 1, "mls_property_id": 1}))


def repair_reverse_link(database: Database, feed: FeedKey, property_id: str, listing_key: str) -> None:
    """A link the CRM wrote on its side only: add the listing's side."""
    found = find_listing(database, feed, listing_key)
    if found:
        database[feed.collection(STATUS_COLLECTIONS[found[0]])].update_one(
            {"listingKey": listing_key}, {"$addToSet": {"crm_property_ids": property_id}})
