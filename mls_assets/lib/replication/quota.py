"""A feed's listing quota (`maxListings`, the agent's plan) during one routing run, and the
listings it held back.

With `enforceQuota`, a new listing beyond the quota is not inserted into the status
collections. Its key is kept in the feed's `quota_held` collection (class, modification
time, since when), so that the listing comes in at the first run after the quota allows it
(raised, lifted or freed by listings that left): that run reads the held keys' flattened
documents and routes them like changes, oldest held first, as many as there is room for, and
hands their raw records to the photos step. Nothing is pulled again: the listing is stored. A feed that never held a
listing pays nothing for this (one estimated count, of a collection that does not exist).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from pymongo import UpdateOne
from pymongo.database import Database

from mls_assets.lib.catalogue import FLATTENED, QUOTA_HELD, RAW, SEQUENCE_FIELD
from mls_assets.lib.quality import measures
from mls_assets.lib.store.changes import FeedSequence, WriteMarks, read
from mls_assets.lib.store.indexes import ensure_indexes
from mls_assets.lib.store.naming import FeedKey

LOOKUP_CHUNK = 500


@dataclass
class Quota:
    """How many new listings a feed may still insert in this run (`room`, None: no limit),
    the changed listings stored already (never held back), and what was held and admitted."""

    database: Database
    feed: FeedKey
    max_listings: int | None
    room: int | None
    held_before: int = 0  # listings held back when the run began
    stored_keys: set[str] = field(default_factory=set)
    skipped: int = 0  # new listings held back by this run
    readmitted: int = 0  # held listings this run brought in
    _holds: list[UpdateOne] = field(default_factory=list)
    _readmit: list[str] = field(default_factory=list)  # held keys brought in by this run
    _held_now: set[str] = field(default_factory=set)  # held keys this run routes (brought in, or changed)
    _found: set[str] = field(default_factory=set)  # brought-in keys with a flattened document
    _released: list[str] = field(default_factory=list)
    _gone: set[str] = field(default_factory=set)  # brought-in keys that belong nowhere now

    @classmethod
    def of(cls, database: Database, feed: FeedKey, max_listings: int | None, enforced: bool, stored: int) -> Quota:
        held = database[QUOTA_HELD.collection_name(feed)].estimated_document_count()
        room = None if max_listings is None or not enforced else max_listings - stored
        return cls(database, feed, max_listings, room, held)

    @property
    def _held(self):
        return self.database[QUOTA_HELD.collection_name(self.feed)]

    def admits(self, doc: dict, now: datetime, run_id: str) -> bool:
        """A listing may be written unless it is new and the feed is at its enforced quota;
        one that may not is held back (its key kept for a later run)."""
        key = doc["listingKey"]
        if self.room is not None and key not in self.stored_keys:
            if self.room <= 0:
                self.skipped += 1
                self._holds.append(
                    UpdateOne(
                        {"_id": key},
                        {
                            "$set": {
                                "statusClass": doc.get("statusClass"),
                                "modificationTimestamp": doc.get("modificationTimestamp"),
                                "runId": run_id,
                            },
                            "$setOnInsert": {"heldAt": now},
                        },
                        upsert=True,
                    )
                )
                return False
            self.room -= 1
        if key in self._held_now:
            self._released.append(key)
        return True

    def plan_readmission(self, changed_keys: list[str]) -> list[str]:
        """The held keys this run brings in: all of them without a limit, else as many as
        there is room for, oldest held first. Held keys among the run's own changes route as
        changes (and are released if admitted)."""
        if not self.held_before:
            return []
        held = self._held
        changed_and_held = {
            d["_id"]
            for start in range(0, len(changed_keys), LOOKUP_CHUNK)
            for d in held.find({"_id": {"$in": changed_keys[start : start + LOOKUP_CHUNK]}}, {"_id": 1})
        }
        self._held_now |= changed_and_held
        if self.room is not None and self.room <= 0:
            return []
        for doc in held.find({}, {"_id": 1}).sort([("heldAt", 1), ("_id", 1)]).batch_size(10_000):
            if self.room is not None and len(self._readmit) >= self.room:
                break
            if doc["_id"] not in changed_and_held:
                self._readmit.append(doc["_id"])
        self._held_now |= set(self._readmit)
        return self._readmit

    def forget(self, keys: Iterable[str]) -> None:
        """Held listings that belong nowhere any more (expired beyond the window): released."""
        self._gone.update(keys)

    def held_documents(self, projection: dict | None = None, where: dict | None = None) -> Iterator[list[dict]]:
        """The flattened documents of the keys being brought in, in batches."""
        flattened = self.database[FLATTENED.collection_name(self.feed)]
        for start in range(0, len(self._readmit), LOOKUP_CHUNK):
            query = {"listingKey": {"$in": self._readmit[start : start + LOOKUP_CHUNK]}, **(where or {})}
            found = list(read(flattened, query, projection))
            self._found.update(d["listingKey"] for d in found)
            if found:
                yield found

    def settle(self) -> int:
        """Store this run's holds, forget the held listings it admitted and those brought in
        that belong nowhere now or have no flattened document any more (deleted since); the
        listings held after."""
        if self._holds:
            ensure_indexes(self._held, QUOTA_HELD.all_indexes())
            for start in range(0, len(self._holds), LOOKUP_CHUNK):
                self._held.bulk_write(self._holds[start : start + LOOKUP_CHUNK], ordered=False)
        released = [*self._released, *(set(self._readmit) - self._found), *self._gone]
        for start in range(0, len(released), LOOKUP_CHUNK):
            self._held.delete_many({"_id": {"$in": released[start : start + LOOKUP_CHUNK]}})
        brought_in = sorted(set(self._readmit) & set(self._released))
        self.readmitted = len(brought_in)
        self._hand_to_photos(brought_in)
        return self._held.count_documents({}) if self.held_before or self._holds else 0

    def _hand_to_photos(self, keys: list[str]) -> None:
        """The photos step takes the photos of the raw records changed since it last ran: the
        raw records of the listings brought in get a new `_seq`, so that this run's photos
        step takes theirs (the flatten step finds them unchanged next time)."""
        if not keys:
            return
        raw = self.database[RAW.collection_name(self.feed)]
        first = FeedSequence(self.database, self.feed).take(len(keys))
        updates = [UpdateOne({"listingKey": key}, {"$set": {SEQUENCE_FIELD: first + i}}) for i, key in enumerate(keys)]
        for start in range(0, len(updates), LOOKUP_CHUNK):
            raw.bulk_write(updates[start : start + LOOKUP_CHUNK], ordered=False)
        WriteMarks(self.database).record(raw, first + len(keys) - 1)

    def finding(self, current: int, held: int) -> measures.Finding:
        finding = measures.Finding(
            details={
                "current_listings": current,
                "over_quota_skipped": self.skipped,
                "held_back": held,
                "readmitted": self.readmitted,
            }
        )
        if self.max_listings is not None:
            finding.details["max_listings"] = self.max_listings
            if current > self.max_listings:
                finding.offending = current - self.max_listings
                finding.sample = [f"{current} stored, maxListings {self.max_listings}"]
        return finding
