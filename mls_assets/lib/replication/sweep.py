"""Deletion sweep: listings that vanished from the source are removed, carefully.

Spark's replication feed does not announce deletions, so a periodic sweep pulls every
ListingKey in the feed's scope (`_select=ListingKey`) and removes stored listings that are
no longer there. It acts only after a complete sweep (a paging failure raises before
anything is touched) and never when the sweep returned fewer keys than a fraction of what
is stored (a truncated or mis-filtered answer must not empty a feed). Each removal is
written to the status history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pymongo.database import Database

from mls_assets.lib.crm import break_links
from mls_assets.lib.replication.collections import (
    ACTIVE,
    CLOSED,
    EXPIRED,
    EXPIRED_PHOTOS,
    FLATTENED,
    HISTORY,
    PHOTOS,
    RAW,
)
from mls_assets.lib.replication.window import PullWindow, listings_filter
from mls_assets.lib.spark.client import SparkClient
from mls_assets.lib.store.merge import batched
from mls_assets.lib.tenants import FeedConfig
from mls_assets.lib.transform.screen import key_or_none

DEFAULT_MIN_FRACTION = 0.9
STATUS = (ACTIVE, CLOSED, EXPIRED)


class SweepRefused(RuntimeError):
    """The sweep's answer is not trustworthy enough to delete anything."""


@dataclass
class SweepResult:
    source_keys: int
    stored_keys: int
    removed: int
    history_events: int


@dataclass
class SourceKeys:
    """What the source holds: the keys, and how many records had no usable key. An unkeyed
    record that still carries an `Id` protects the listing of that Id from removal: the
    sweep never deletes on a record it cannot read."""

    keys: set[str] = field(default_factory=set)
    unkeyed: int = 0


def source_keys(client: SparkClient, feed: FeedConfig) -> SourceKeys:
    """Every ListingKey in the feed's scope, read by the same key function as the pull (a
    record without ListingKey counts under its Id); raises if paging does not complete."""
    everything = PullWindow(None, None, incremental=False)
    found = SourceKeys()
    for record in client.listings(listings_filter(feed, everything), limit=1000, select=["ListingKey"]):
        key = key_or_none(record)
        if key is None:
            found.unkeyed += 1
            record_id = record.get("Id") if isinstance(record, dict) else None
            if isinstance(record_id, str) and record_id.strip():
                found.keys.add(record_id.strip())
        else:
            found.keys.add(key)
    return found


def sweep(database: Database, feed: FeedConfig, keys_in_source: set[str], now: datetime, run_id: str,
          min_fraction: float = DEFAULT_MIN_FRACTION) -> SweepResult:  # fmt: skip
    status_of: dict[str, str] = {}
    for name in STATUS:
        for doc in database[feed.collection(name)].find({}, {"_id": 0, "listingKey": 1, "standardStatus": 1}):
            status_of[doc["listingKey"]] = doc.get("standardStatus")
    stored = set(database[feed.collection(RAW)].distinct("listingKey")) | set(status_of)
    if stored and len(keys_in_source) < min_fraction * len(status_of):
        raise SweepRefused(
            f"sweep of {feed.key} returned {len(keys_in_source)} keys for {len(status_of)} stored "
            f"listings (< {min_fraction:.0%}): refusing to delete anything"
        )
    gone = sorted(stored - keys_in_source)
    events = [
        {"listingKey": key, "from": status_of[key], "to": "Deleted", "at": now, "partition": "sweep",
         "runId": run_id}  # fmt: skip
        for key in gone if key in status_of
    ]
    if events:
        database[feed.collection(HISTORY)].insert_many(events)
    break_links(database, feed.key, gone)  # linked CRM properties keep no dangling reference
    removed = 0
    for batch in batched(gone, 500):
        query = {"listingKey": {"$in": batch}}
        for name in STATUS:
            removed += database[feed.collection(name)].delete_many(query).deleted_count
        for name in (RAW, FLATTENED, PHOTOS, EXPIRED_PHOTOS):
            database[feed.collection(name)].delete_many(query)
    return SweepResult(len(keys_in_source), len(stored), removed, len(events))
