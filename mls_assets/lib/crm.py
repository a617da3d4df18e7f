"""CRM-linked properties: links both ways, MLS data kept in sync, CRM fields kept.

A tenant's CRM properties live in `{tenant}_crm_properties`. A property links to one MLS
listing (`mls_property_id` = the listing's key, `mls_feed` = the MLS), and the listing
carries the reverse `crm_property_ids`. Both sides change together. Syncing a property
writes only the MLS-owned fields below; everything else on it (`crm_status`, `notes`,
owners, leads, whatever the CRM wrote) is the CRM's and never touched. The sync is a
`Patch` of those fields: the pipeline's asset hands it to the IO manager, the `crm`
commands apply it at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database

from mls_assets.lib.catalogue import CRM_PROPERTIES, STATUS_COLLECTIONS
from mls_assets.lib.store.naming import FeedKey, tenant_collection
from mls_assets.lib.store.writes import LOOKUP_CHUNK, Patch, batched

LINK_FIELDS = ("mls_property_id", "mls_feed")


class CrmError(ValueError):
    """A link or sync that cannot be done, with the reason."""


@dataclass
class SyncCounts:
    updated: int = 0
    unchanged: int = 0
    broken: int = 0


def properties(database: Database, tenant: str):
    return database[tenant_collection(tenant, CRM_PROPERTIES.name)]


def find_listing(database: Database, feed: FeedKey, listing_key: str) -> tuple[str, dict] | None:
    """(status class, listing) wherever the listing lives now."""
    for klass, spec in STATUS_COLLECTIONS.items():
        doc = database[spec.collection_name(feed)].find_one({"listingKey": listing_key})
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


def broken_patch(property_id: Any, now: datetime) -> Patch:
    """The listing left the feed: keep which one it was (`mls_property_id_broken`), drop
    the live reference."""
    return Patch(
        (property_id,),
        set={"mls_link_broken": True, "mlsLastSyncedAt": now},
        unset=("mls_content_hash",),
        rename={"mls_property_id": "mls_property_id_broken"},
    )


def property_patch(database: Database, feed: FeedKey, prop: dict, now: datetime) -> tuple[str, Patch | None]:
    """What syncing one linked property does: ('updated', patch), ('unchanged', None) or
    ('broken', patch)."""
    found = find_listing(database, feed, prop["mls_property_id"])
    if found is None:
        return "broken", broken_patch(prop["_id"], now)
    klass, listing = found
    if prop.get("mls_content_hash") == listing.get("contentHash") and prop.get("mls_status_class") == klass:
        return "unchanged", None
    push = {}
    if prop.get("mls_status") and prop.get("mls_status") != listing.get("standardStatus"):
        push["mls_status_history"] = {
            "from": prop["mls_status"],
            "to": listing.get("standardStatus"),
            "at": listing.get("statusChangeTimestamp") or listing.get("modificationTimestamp"),
        }
    return "updated", Patch((prop["_id"],), set=mls_fields(klass, listing, now), unset=("mls_link_broken",), push=push)


def apply(database: Database, tenant: str, patch: Patch) -> None:
    properties(database, tenant).update_one({"_id": patch.key[0]}, patch.update())


def sync_property(database: Database, tenant: str, property_id: str, now: datetime | None = None) -> str:
    """Copy the current MLS data onto one property: 'updated', 'unchanged' or 'broken'."""
    prop = _property(database, tenant, property_id)
    if not prop.get("mls_property_id"):
        raise CrmError(f"CRM property {property_id!r} is not linked to an MLS listing")
    outcome, patch = property_patch(database, FeedKey(tenant, prop["mls_feed"]), prop, now or datetime.now(UTC))
    if patch is not None:
        apply(database, tenant, patch)
    return outcome


def link(database: Database, tenant: str, property_id: str, mls: str, listing_key: str) -> dict:
    """Link a CRM property to a listing (both sides), replacing an earlier link, then sync."""
    feed = FeedKey(tenant, mls)
    prop = _property(database, tenant, property_id)
    found = find_listing(database, feed, listing_key)
    if found is None:
        raise CrmError(
            f"no listing {listing_key!r} in feed {feed}: it is not in its active, closed or expired collections"
        )
    if prop.get("mls_property_id") and (prop["mls_property_id"], prop.get("mls_feed")) != (listing_key, mls):
        unlink(database, tenant, property_id)
    complete_reverse_link(database, feed, property_id, listing_key)
    properties(database, tenant).update_one(
        {"_id": property_id},
        {
            "$set": {"mls_property_id": listing_key, "mls_feed": mls, "linkedAt": datetime.now(UTC)},
            "$unset": {"mls_content_hash": ""},
        },
    )
    sync_property(database, tenant, property_id)
    return show(database, tenant, property_id)


def unlink(database: Database, tenant: str, property_id: str) -> None:
    prop = _property(database, tenant, property_id)
    if not prop.get("mls_property_id"):
        raise CrmError(f"CRM property {property_id!r} is not linked")
    feed = FeedKey(tenant, prop["mls_feed"])
    for spec in STATUS_COLLECTIONS.values():
        database[spec.collection_name(feed)].update_many(
            {"listingKey": prop["mls_property_id"]}, {"$pull": {"crm_property_ids": property_id}}
        )
    properties(database, tenant).update_one(
        {"_id": property_id},
        {
            "$unset": {"mls_property_id": "", "mls_feed": "", "mls_content_hash": "", "mls_link_broken": ""},
            "$set": {"unlinkedAt": datetime.now(UTC)},
        },
    )


def show(database: Database, tenant: str, property_id: str) -> dict:
    prop = _property(database, tenant, property_id)
    listing = None
    if prop.get("mls_property_id"):
        found = find_listing(database, FeedKey(tenant, prop["mls_feed"]), prop["mls_property_id"])
        listing = found[1] if found else None
    return {"property": prop, "listing": listing}


def linked_to(database: Database, feed: FeedKey, listing_keys: Iterable[str]) -> Iterator[dict]:
    """The properties linked to these listings (an index on (mls_feed, mls_property_id))."""
    collection = properties(database, feed.tenant)
    for chunk in batched(list(listing_keys), LOOKUP_CHUNK):
        yield from collection.find({"mls_feed": feed.mls, "mls_property_id": {"$in": chunk}})


def linked_by_listing(database: Database, feed: FeedKey) -> dict[str, list[dict]]:
    """Every property linked to a listing of this feed, by listing key: one indexed query,
    cheaper than `linked_to` for a run that changed much of the feed (a first sync)."""
    found: dict[str, list[dict]] = {}
    for prop in properties(database, feed.tenant).find({"mls_feed": feed.mls, "mls_property_id": {"$exists": True}}):
        found.setdefault(prop["mls_property_id"], []).append(prop)
    return found


def break_links(database: Database, feed: FeedKey, listing_keys: list[str], now: datetime | None = None) -> int:
    """Listings that left the feed (deleted): their properties lose the link, both sides."""
    now = now or datetime.now(UTC)
    broken = 0
    for prop in linked_to(database, feed, listing_keys):
        apply(database, feed.tenant, broken_patch(prop["_id"], now))
        broken += 1
    return broken


def needing_sync(database: Database, feed: FeedKey) -> list[dict]:
    """Properties linked (by our commands or directly by the CRM) but never synced."""
    query = {"mls_feed": feed.mls, "mls_property_id": {"$exists": True}, "mls_content_hash": {"$exists": False}}
    return list(properties(database, feed.tenant).find(query))


def complete_reverse_link(database: Database, feed: FeedKey, property_id: str, listing_key: str) -> bool:
    """Add the listing's side of a link (`crm_property_ids`, a field the CRM owns on our
    listings), wherever the listing lives now."""
    found = find_listing(database, feed, listing_key)
    if found is None:
        return False
    database[STATUS_COLLECTIONS[found[0]].collection_name(feed)].update_one(
        {"listingKey": listing_key}, {"$addToSet": {"crm_property_ids": property_id}}
    )
    return True
