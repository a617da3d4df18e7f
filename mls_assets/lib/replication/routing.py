"""Routing: every listing into exactly one status collection of its feed.

`home_of` says where a listing belongs (its status class, or nowhere once it is deleted or
expired beyond the 90-day window); `transitions` compares a batch of changed listings with
where they are stored now and says which status moves that makes (the status history).
The writes themselves (the move, the CRM fields carried along) are the IO manager's, from
the catalogue's sibling collections.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.database import Database

from mls_assets.lib.catalogue import STATUS_COLLECTIONS
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.store.writes import LOOKUP_CHUNK, SCAN_ABOVE, batched, is_older
from mls_assets.lib.transform.status import EXPIRED_RETENTION, StatusClass, status_class


def home_of(status: Any, status_changed: datetime | None, now: datetime) -> str | None:
    """The status class whose collection a listing belongs in, or None (it leaves them all)."""
    klass = status_class(status)
    if klass is None or klass is StatusClass.DELETED:
        return None
    if klass is StatusClass.EXPIRED and (status_changed is None or status_changed + EXPIRED_RETENTION <= now):
        return None  # kept 90 days after the status change
    return klass.value


def home_of_listing(doc: dict[str, Any], now: datetime) -> str | None:
    """`home_of` for a flattened listing."""
    return home_of(doc.get("standardStatus"), doc.get("statusChangeTimestamp") or doc.get("modificationTimestamp"), now)


class Places:
    """Where each listing of a feed is stored now: `{key: {class, standardStatus,
    modificationTimestamp}}` (the newest copy, should a crash have left two). Few keys are
    looked up; for many, one projected scan of the three collections is cheaper."""

    PROJECTION = {"_id": 0, "listingKey": 1, "standardStatus": 1, "modificationTimestamp": 1}

    def __init__(self, database: Database, feed: FeedKey, expected: int) -> None:
        self.database, self.feed = database, feed
        self._all: dict[str, dict] | None = None
        if expected > SCAN_ABOVE:
            self._all = {}
            for klass, spec in STATUS_COLLECTIONS.items():
                self._add(self._all, klass, database[spec.collection_name(feed)].find({}, self.PROJECTION))

    @staticmethod
    def _add(found: dict[str, dict], klass: str, docs: Iterable[dict]) -> None:
        for doc in docs:
            current = found.get(doc["listingKey"])
            if current is None or is_older(current["modificationTimestamp"], doc["modificationTimestamp"]):
                found[doc["listingKey"]] = {**doc, "class": klass}

    def of(self, keys: list[str]) -> dict[str, dict]:
        if self._all is not None:
            return {key: self._all[key] for key in keys if key in self._all}
        found: dict[str, dict] = {}
        for klass, spec in STATUS_COLLECTIONS.items():
            collection = self.database[spec.collection_name(self.feed)]
            for chunk in batched(keys, LOOKUP_CHUNK):
                self._add(found, klass, collection.find({"listingKey": {"$in": chunk}}, self.PROJECTION))
        return found


@dataclass
class Transitions:
    """The status moves of one batch, and what the batch held."""

    events: list[dict[str, Any]] = field(default_factory=list)
    stale: int = 0


def transitions(listings: Iterable[dict[str, Any]], stored: dict[str, dict], now: datetime, run_id: str) -> Transitions:
    """One history event per listing whose status differs from the stored copy's; a listing
    older than its stored copy is stale and changes nothing."""
    found = Transitions()
    for doc in listings:
        previous = stored.get(doc["listingKey"])
        if previous is not None and is_older(doc["modificationTimestamp"], previous["modificationTimestamp"]):
            found.stale += 1
            continue
        if previous is not None and previous["standardStatus"] != doc["standardStatus"]:
            found.events.append(
                {
                    "listingKey": doc["listingKey"],
                    "listingId": doc.get("listingId"),
                    "from": previous["standardStatus"],
                    "to": doc["standardStatus"],
                    "at": doc.get("statusChangeTimestamp") or doc["modificationTimestamp"],
                    "runId": run_id,
                }
            )
    return found
