"""What the asset checks measure on a feed's collections. Plain pymongo; each measure
returns the number of offending documents and the first few keys (a data engineer should
see what to look at, not just "failed").

Each measure takes a scope: `since` (a write sequence: only documents written after it, the
run's own writes, read through the `_seq` index) or `keys` (only these listings); without
one it audits the whole collection, which belongs in a scheduled check, not in every run.
A scope of more than `SCAN_ABOVE` listings (a first sync) is measured like the whole
collection: one projected scan costs less than that many point lookups.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.collection import Collection
from pymongo.database import Database

from mls_assets.lib import crm
from mls_assets.lib.catalogue import (
    PHOTOS_OF_CLASS,
    REJECTS,
    SEQUENCE_FIELD,
    STATUS_COLLECTIONS,
    CollectionSpec,
    siblings_of,
)
from mls_assets.lib.store.changes import WriteMarks
from mls_assets.lib.store.lookup import GROUP_IN_CHUNK, SCAN_SHARE
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.store.writes import LOOKUP_CHUNK, SCAN_ABOVE, batched

REQUIRED = ("listingKey", "listingId", "standardStatus", "modificationTimestamp", "tenantId", "mlsProvider")
SAMPLE = 10


@dataclass
class Finding:
    offending: int = 0
    sample: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        self.offending += len(keys)
        self.sample.extend(keys[: SAMPLE - len(self.sample)])


def merge_findings(findings: Iterable[tuple[str, Finding]]) -> Finding:
    """One finding over several feeds; sample keys are prefixed with their feed."""
    merged = Finding()
    for feed, finding in findings:
        merged.offending += finding.offending
        merged.sample.extend(f"{feed}:{key}" for key in finding.sample)
        for name, value in finding.details.items():
            merged.details[name] = merged.details.get(name, 0) + value
    merged.sample = merged.sample[:SAMPLE]
    return merged


def _scope(since: int | None) -> dict:
    return {SEQUENCE_FIELD: {"$gt": since}} if since is not None else {}


def key_index_is_unique(collection: Collection, spec: CollectionSpec) -> Finding:
    """The unique index on the key exists (so no key can be stored twice): O(1). A
    collection that does not exist yet holds nothing twice."""
    keys = [(name, 1) for name in spec.key]
    indexes = collection.index_information()
    unique = any(info["key"] == keys and info.get("unique") for info in indexes.values())
    finding = Finding()
    if indexes and not unique:
        finding.add([collection.name])
    return finding


def duplicate_keys(collection: Collection) -> Finding:
    """Keys stored more than once (an audit of collections whose index went missing)."""
    counts = Counter(d.get("listingKey") for d in collection.find({}, {"listingKey": 1, "_id": 0}))
    finding = Finding()
    finding.add(sorted(str(k) for k, n in counts.items() if n > 1))
    return finding


def missing_required(collection: Collection, since: int | None = None, seen: list[str] | None = None) -> Finding:
    """Documents without one of the required fields (or with it null). The sequence range
    alone goes to the server and the fields are checked here: an `$or` beside the range made
    the embedded server scan the whole collection. `seen`: gets the key of every document
    read (the run's writes, which `in_several_collections` then need not read again)."""
    offending, missing = [], Counter()  # which field: what on-call needs first
    for doc in collection.find(_scope(since), {name: 1 for name in REQUIRED}):
        if seen is not None and doc.get("listingKey") is not None:
            seen.append(doc["listingKey"])
        absent = [name for name in REQUIRED if doc.get(name) is None]
        if absent:
            offending.append(str(doc.get("listingKey") or doc["_id"]))
            missing.update(f"missing_{name}" for name in absent)
    finding = Finding(details=dict(missing))
    finding.add(offending)
    return finding


def in_several_collections(
    database: Database,
    feed: FeedKey,
    since: dict | None = None,
    written: dict[str, list[str]] | None = None,
    run_id: str = "",
) -> Finding:
    """Listings stored in two status collections. `since[(feed, class)]`: only the listings
    written to a collection after that sequence (`written[class]`: their keys, when the
    caller has read them already). Few written keys are looked up in the sibling
    collections; many are compared with a sibling's whole key set, which is the run's own
    writes when run `run_id` made the sibling's first load into an empty collection (a first
    sync reads nothing more)."""
    finding = Finding()
    if since is None:
        seen: Counter[str] = Counter()
        for spec in STATUS_COLLECTIONS.values():
            seen.update(set(database[spec.collection_name(feed)].distinct("listingKey")))
        finding.add(sorted(k for k, n in seen.items() if n > 1))
        return finding
    if written is None:
        written = {
            klass: [
                d["listingKey"]
                for d in database[spec.collection_name(feed)].find(
                    _scope(since[(feed, klass)]), {"listingKey": 1, "_id": 0}
                )
            ]
            for klass, spec in STATUS_COLLECTIONS.items()
        }
    marks, key_sets, twins = WriteMarks(database), {}, set()

    def key_set(spec: CollectionSpec, asked: int) -> set[str] | None:
        """The sibling's every key, if cheaper than looking `asked` keys up in it: the run's
        own writes when it loaded the sibling from empty (its write mark says so; a query for
        an older `_seq` reads the whole range on this server), else one `distinct` of a
        collection not much larger than what is asked."""
        if spec.name not in key_sets:
            collection = database[spec.collection_name(feed)]
            if marks.first_loaded_empty_by(collection, run_id):
                key_sets[spec.name] = set(written.get(spec.status_class, []))
            elif asked * SCAN_SHARE > marks.count(collection):  # the writers' count: O(1)
                key_sets[spec.name] = set(collection.distinct("listingKey"))
            else:
                return None
        return key_sets[spec.name]

    for klass, spec in STATUS_COLLECTIONS.items():
        keys = written.get(klass, [])
        for sibling in siblings_of(spec) if keys else ():
            every = key_set(sibling, len(keys))
            if every is not None:
                twins.update(every.intersection(keys))
                continue
            for chunk in batched(keys, LOOKUP_CHUNK):
                found = database[sibling.collection_name(feed)].find({"listingKey": {"$in": chunk}}, {"listingKey": 1})
                twins.update(d["listingKey"] for d in found)
    finding.add(sorted(twins))
    return finding


def bad_expiry(collection: Collection, since: int | None, now: datetime) -> Finding:
    """`expiresAt` not a BSON date (the TTL index never fires), or already past `now`."""
    scope = _scope(since)
    not_dates = [
        d["listingKey"] for d in collection.find({**scope, "expiresAt": {"$not": {"$type": "date"}}}, {"listingKey": 1})
    ]
    past = [
        d["listingKey"]
        for d in collection.find({**scope, "expiresAt": {"$type": "date", "$lte": now}}, {"listingKey": 1})
    ]
    finding = Finding(details={"not_a_date": len(not_dates), "past_retention": len(past)})
    finding.add(not_dates + past)
    return finding


def orphan_photos(database: Database, feed: FeedKey, keys: list[str] | None = None) -> Finding:
    """Photos whose listing is not in their status collection, and listings with photos
    (`photoCount`) whose photos are gone; `keys`: only these listings."""
    finding = Finding(details={})
    homes: dict[str, list[CollectionSpec]] = {}
    for klass, spec in STATUS_COLLECTIONS.items():
        homes.setdefault(PHOTOS_OF_CLASS[klass].name, []).append(spec)
    photo_specs = {spec.name: spec for spec in PHOTOS_OF_CLASS.values()}
    for name, listing_specs in homes.items():
        photos = database[photo_specs[name].collection_name(feed)]
        listings: dict[str, int] = {}
        photo_keys: set[str] = set()
        for spec in listing_specs:
            collection = database[spec.collection_name(feed)]
            for query in _key_queries(keys):
                for doc in collection.find(query, {"listingKey": 1, "photoCount": 1, "_id": 0}):
                    listings[doc["listingKey"]] = doc.get("photoCount") or 0
        for query in _key_queries(keys, GROUP_IN_CHUNK):  # each key matches its whole photo set
            photo_keys.update(photos.distinct("listingKey", query))
        orphans = sorted(photo_keys - set(listings))
        wiped = sorted(k for k, count in listings.items() if count > 0 and k not in photo_keys)
        finding.details[f"orphans_in_{name}"] = len(orphans)
        finding.details[f"listings_missing_photos_in_{name}"] = len(wiped)
        finding.add(orphans + wiped)
    return finding


def _key_queries(keys: list[str] | None, chunk_size: int = LOOKUP_CHUNK) -> Iterable[dict]:
    if keys is None or len(keys) > SCAN_ABOVE:
        yield {}
        return
    for chunk in batched(keys, chunk_size):
        yield {"listingKey": {"$in": chunk}}


def stored_active(database: Database, feed: FeedKey, statuses: Iterable[str]) -> int:
    """Active listings held for a feed: stored, plus quarantined ones (the quarantine is small)."""
    marks = WriteMarks(database)  # recounted here: the audit also corrects the writers' counts (TTL expiries)
    counts = {klass: marks.recount(database[spec.collection_name(feed)]) for klass, spec in STATUS_COLLECTIONS.items()}
    active = counts["active"]
    quarantined = database[REJECTS.collection_name(feed)].count_documents({"raw": {"$regex": "|".join(statuses)}})
    return active + quarantined


def inconsistent_crm_links(database: Database, feed: FeedKey, keys: list[str] | None = None) -> Finding:
    """Both directions agree: a property's `mls_property_id` names a listing that lists the
    property in `crm_property_ids`, and every id a listing lists is such a property."""
    properties = crm.properties(database, feed.tenant)
    linked: dict[str, str] = {}
    for query in _key_queries(keys):
        scope = {"mls_feed": feed.mls, "mls_property_id": query.get("listingKey", {"$exists": True})}
        linked.update({str(p["_id"]): p["mls_property_id"] for p in properties.find(scope, {"mls_property_id": 1})})
    reverse: dict[str, set[str]] = {}
    for spec in STATUS_COLLECTIONS.values():
        for query in _key_queries(keys):
            for doc in database[spec.collection_name(feed)].find(
                {**query, "crm_property_ids.0": {"$exists": True}}, {"listingKey": 1, "crm_property_ids": 1}
            ):
                reverse[doc["listingKey"]] = {str(i) for i in doc["crm_property_ids"]}
    listed = sorted({pid for ids in reverse.values() for pid in ids} - set(linked))
    for chunk in batched(listed, LOOKUP_CHUNK):  # properties named by these listings, whatever they link to
        linked.update(
            {
                str(p["_id"]): p.get("mls_property_id")
                for p in properties.find({"_id": {"$in": chunk}, "mls_feed": feed.mls}, {"mls_property_id": 1})
            }
        )
    scoped = None if keys is None or len(keys) > SCAN_ABOVE else set(keys)
    broken = [
        pid
        for pid, key in linked.items()
        if key is not None and pid not in reverse.get(key, set()) and (scoped is None or key in scoped)
    ]
    broken += [f"{key}->{pid}" for key, ids in reverse.items() for pid in ids if linked.get(pid) != key]
    finding = Finding(details={"links": len(linked)})
    finding.add(sorted(broken))
    return finding
