"""What the asset checks measure on a feed's collections. Plain pymongo; each measure
returns the number of offending documents and the first few keys, for the check's
metadata (a data engineer should see what to look at, not just "failed")."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from pymongo.database import Database

from mls_assets.lib import crm
from mls_assets.lib.replication.collections import (
    ACTIVE,
    CLOSED,
    EXPIRED,
    EXPIRED_PHOTOS,
    FLATTENED,
    PHOTOS,
    REJECTS,
    STATUS_COLLECTIONS,
)
from mls_assets.lib.tenants import FeedConfig

REQUIRED = ("listingKey", "listingId", "standardStatus", "modificationTimestamp", "tenantId", "mlsProvider")
SAMPLE = 10


@dataclass
class Finding:
    offending: int = 0
    sample: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def add(self, keys: list[str]) -> None:
        self.offending += len(keys)
        self.sample.extend(keys[: SAMPLE - len(self.sample)])


def duplicate_keys(database: Database, feed: FeedConfig, name: str) -> Finding:
    counts = Counter(d.get("listingKey") for d in database[feed.collection(name)].find({}, {"listingKey": 1}))
    finding = Finding()
    finding.add(sorted(k for k, n in counts.items() if n > 1))
    return finding


def missing_required(database: Database, feed: FeedConfig, name: str) -> Finding:
    query = {"$or": [{f: {"$exists": False}} for f in REQUIRED] + [{f: None} for f in REQUIRED]}
    finding = Finding()
    finding.add([str(d.get("listingKey") or d["_id"]) for d in database[feed.collection(name)].find(query, {"listingKey": 1})])
    return finding


def in_several_collections(database: Database, feed: FeedConfig) -> Finding:
    seen: Counter[str] = Counter()
    for name in STATUS_COLLECTIONS.values():
        seen.update(set(database[feed.collection(name)].distinct("listingKey")))
    finding = Finding()
    finding.add(sorted(k for k, n in seen.items() if n > 1))
    return finding


def bad_expiry(database: Database, feed: FeedConfig, now: datetime) -> Finding:
    collection = database[feed.collection(EXPIRED)]
    not_dates = [d["listingKey"] for d in collection.find({"expiresAt": {"$not": {"$type": "date"}}}, {"listingKey": 1})]
    past = [d["listingKey"] for d in collection.find({"expiresAt": {"$type": "date", "$lte": now}}, {"listingKey": 1})]
    finding = Finding(details={"not_a_date": len(not_dates), "past_retention": len(past)})
    finding.add(not_dates + past)
    return finding


def orphan_photos(database: Database, feed: FeedConfig) -> Finding:
    homes = {PHOTOS: (ACTIVE, CLOSED), EXPIRED_PHOTOS: (EXPIRED,)}
    finding = Finding(details={})
    for photos_name, listing_names in homes.items():
        listings = set()
        for name in listing_names:
            listings.update(database[feed.collection(name)].distinct("listingKey"))
        photo_keys = set(database[feed.collection(photos_name)].distinct("listingKey"))
        orphans = sorted(photo_keys - listings)
        finding.details[f"orphans_in_{photos_name}"] = len(orphans)
        finding.add(orphans)
        wiped = sorted(
            d["listingKey"]
            for name in listing_names
            for d in database[feed.collection(name)].find({"photoCount": {"$gt": 0}}, {"listingKey": 1})
            if d["listingKey"] not in photo_keys
        )
        finding.details[f"listings_missing_photos_in_{photos_name}"] = len(wiped)
        finding.add(wiped)
    return finding


def reject_rate(database: Database, feed: FeedConfig, partitions: list[str]) -> tuple[float, int, int, list[str]]:
    """(rate, rejects, flattened) over the given partitions (all when none given)."""
    reject_query = {"partition": {"$in": partitions}} if partitions else {}
    flat_query = {"_partitionKey": {"$in": partitions}} if partitions else {}
    rejects = list(database[feed.collection(REJECTS)].find(reject_query, {"listingKey": 1, "reason": 1}).limit(1000))
    n_rejects = database[feed.collection(REJECTS)].count_documents(reject_query)
    n_flat = database[feed.collection(FLATTENED)].count_documents(flat_query)
    total = n_rejects + n_flat
    sample = [f"{r.get('listingKey')}: {r.get('reason')}" for r in rejects[:SAMPLE]]
    return (n_rejects / total if total else 0.0), n_rejects, n_flat, sample


def inconsistent_crm_links(database: Database, feed: FeedConfig) -> Finding:
    """Both directions agree: a property's `mls_property_id` names a listing that lists the
    property in `crm_property_ids`, and every id a listing lists is such a property."""
    properties = crm.properties(database, feed.tenant_id)
    linked = {str(p["_id"]): p.get("mls_property_id")
              for p in properties.find({"mls_feed": feed.mls, "mls_property_id": {"$exists": True}},
                                       {"mls_property_id": 1})}  # fmt: skip
    reverse: dict[str, set[str]] = {}
    for name in STATUS_COLLECTIONS.values():
        for doc in database[feed.collection(name)].find({"crm_property_ids.0": {"$exists": True}},
                                                         {"listingKey": 1, "crm_property_ids": 1}):  # fmt: skip
            reverse[doc["listingKey"]] = {str(i) for i in doc["crm_property_ids"]}
    broken = [pid for pid, key in linked.items() if pid not in reverse.get(key, set())]
    broken += [f"{key}->{pid}" for key, ids in reverse.items() for pid in ids if linked.get(pid) != key]
    finding = Finding(details={"links": len(linked)})
    finding.add(sorted(broken))
    return finding
