"""Deleted listings: removed from every swept collection, one way for every source.

Spark's replication feed does not announce deletions, so a periodic sweep pulls every
ListingKey in the feed's scope (`provider.keys()`) and removes stored listings that are no
longer there. It acts only after a complete sweep (a paging failure raises before anything
is touched) and never when the sweep returned fewer keys than a fraction of what is stored
(a truncated or mis-filtered answer must not empty a feed). A RESO source announces its
deletions (`MlgCanView: false`); the pull hands them to `remove_announced`, which removes a
listing only if what is stored is not newer than the deletion. Either way `remove_listings`
does the removal: a `Deleted` status-history event per listing, the CRM properties linked
to it marked broken, and the listing gone from every collection the catalogue marks swept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pymongo.database import Database

from mls_assets.lib import crm
from mls_assets.lib.catalogue import FEED_COLLECTIONS, HISTORY, RAW, STATUS_COLLECTIONS
from mls_assets.lib.media.sync import mark_gone
from mls_assets.lib.sources.base import ListingsProvider
from mls_assets.lib.store.changes import FeedSequence, WriteMarks
from mls_assets.lib.store.writes import LOOKUP_CHUNK, CollectionWriter, batched, is_older
from mls_assets.lib.tenants import FeedConfig
from mls_assets.lib.transform.screen import key_or_none

DEFAULT_MIN_FRACTION = 0.9


class SweepRefused(RuntimeError):
    """The sweep's answer is not trustworthy enough to delete anything."""


@dataclass
class SweepResult:
    source_keys: int
    stored_keys: int
    history_events: int
    links_broken: int
    removed: dict[str, int] = field(default_factory=dict)  # per collection


@dataclass
class SourceKeys:
    """What the source holds: the keys, and how many records had no usable key. An unkeyed
    record that still carries an `Id` protects the listing of that Id from removal: the
    sweep never deletes on a record it cannot read."""

    keys: set[str] = field(default_factory=set)
    unkeyed: int = 0


def source_keys(provider: ListingsProvider) -> SourceKeys:
    """Every ListingKey in the feed's scope, read by the same key function as the pull (a
    record without ListingKey counts under its Id); raises if paging does not complete."""
    found = SourceKeys()
    for record in provider.keys():
        key = key_or_none(record)
        if key is None:
            found.unkeyed += 1
            record_id = record.get("Id") if isinstance(record, dict) else None
            if isinstance(record_id, str) and record_id.strip():
                found.keys.add(record_id.strip())
        else:
            found.keys.add(key)
    return found


def sweep(
    database: Database,
    feed: FeedConfig,
    keys_in_source: set[str],
    now: datetime,
    run_id: str,
    min_fraction: float = DEFAULT_MIN_FRACTION,
) -> SweepResult:
    status_of: dict[str, str] = {}
    for spec in STATUS_COLLECTIONS.values():
        for doc in database[spec.collection_name(feed.key)].find({}, {"_id": 0, "listingKey": 1, "standardStatus": 1}):
            status_of[doc["listingKey"]] = doc.get("standardStatus")
    stored = set(database[RAW.collection_name(feed.key)].distinct("listingKey")) | set(status_of)
    if stored and len(keys_in_source) < min_fraction * len(status_of):
        raise SweepRefused(
            f"sweep of {feed.key} returned {len(keys_in_source)} keys for {len(status_of)} stored "
            f"listings (< {min_fraction:.0%}): refusing to delete anything"
        )
    gone = sorted(stored - keys_in_source)
    events, broken, removed = remove_listings(database, feed, {key: now for key in gone}, now, run_id, status_of)
    return SweepResult(len(keys_in_source), len(stored), events, broken, removed)


def remove_listings(
    database: Database,
    feed: FeedConfig,
    gone: dict[str, datetime],
    now: datetime,
    run_id: str,
    status_of: dict[str, str] | None = None,
) -> tuple[int, int, dict[str, int]]:
    """Remove the listings `gone` (key -> when it was deleted) from every swept collection:
    one `Deleted` history event each (for a listing that had a status), CRM links broken,
    their re-hosted photos marked for removal.
    Returns (history events, CRM links broken, removed per collection)."""
    keys = sorted(gone)
    if status_of is None:
        status_of = {}
        for spec in STATUS_COLLECTIONS.values():
            for chunk in batched(keys, LOOKUP_CHUNK):
                for doc in database[spec.collection_name(feed.key)].find(
                    {"listingKey": {"$in": chunk}}, {"_id": 0, "listingKey": 1, "standardStatus": 1}
                ):
                    status_of[doc["listingKey"]] = doc.get("standardStatus")
    events = [
        {"listingKey": key, "from": status_of[key], "to": "Deleted", "at": gone[key], "runId": run_id}
        for key in keys
        if key in status_of
    ]
    history = CollectionWriter(
        database[HISTORY.collection_name(feed.key)], HISTORY, sequence=FeedSequence(database, feed.key), run_id=run_id
    )
    history.write(events)
    broken = crm.break_links(database, feed.key, keys, now)  # linked CRM properties keep no dangling reference
    removed: dict[str, int] = {}
    for spec in (s for s in FEED_COLLECTIONS if s.swept):
        collection = database[spec.collection_name(feed.key)]
        removed[spec.name] = sum(
            collection.delete_many({"listingKey": {"$in": chunk}}).deleted_count
            for chunk in batched(keys, LOOKUP_CHUNK)
        )
        WriteMarks(database).adjust_count(collection, -removed[spec.name])
    mark_gone(database, feed.key, keys)  # their re-hosted photos go at the next media run
    return len(events), broken, removed


def remove_announced(
    database: Database, feed: FeedConfig, deletions: dict[str, datetime], now: datetime, run_id: str
) -> tuple[int, int, dict[str, int]]:
    """Remove the listings a source said were deleted (key -> the deletion's
    ModificationTimestamp), except those stored in a newer version (relisted since)."""
    raw = database[RAW.collection_name(feed.key)]
    newer = set()
    for chunk in batched(sorted(deletions), LOOKUP_CHUNK):
        for doc in raw.find({"listingKey": {"$in": chunk}}, {"_id": 0, "listingKey": 1, "modificationTimestamp": 1}):
            if is_older(deletions[doc["listingKey"]], doc.get("modificationTimestamp")):
                newer.add(doc["listingKey"])
    gone = {key: at for key, at in deletions.items() if key not in newer}
    return remove_listings(database, feed, gone, now, run_id) if gone else (0, 0, {})
