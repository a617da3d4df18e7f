"""The per-feed quarantine: records that could not be stored, with the reason.

It is the error log of the stages that screen records (the pull, the flattening), not an
asset of its own: one document per listing (or per distinct unkeyed record), replaced when
the listing is rejected again and removed once a later version of it passes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from pymongo import UpdateOne
from pymongo.collection import Collection

from mls_assets.lib.store.writes import LOOKUP_CHUNK, batched


def reject_key(reject: dict[str, Any]) -> str:
    """One reject per listing (or per distinct unkeyed record), so re-runs do not pile up."""
    if reject.get("listingKey"):
        return f"listing:{reject['listingKey']}"
    return "raw:" + hashlib.blake2b(reject["raw"].encode(), digest_size=12).hexdigest()


class Quarantine:
    """One feed's rejects collection, as one stage of one run sees it."""

    def __init__(self, collection: Collection, stage: str, run_id: str) -> None:
        self.collection, self.stage, self.run_id = collection, stage, run_id
        self._held: set[str] | None = None  # listing keys in quarantine, read once when needed
        self.stored = 0

    def store(self, rejects: Iterable[dict[str, Any]], partition: str | None = None) -> int:
        operations = []
        for reject in rejects:
            doc = {**reject, "stage": self.stage, "partition": partition, "runId": self.run_id}
            doc["rejectKey"] = reject_key(doc)
            operations.append(UpdateOne({"rejectKey": doc["rejectKey"]}, {"$set": doc}, upsert=True))
            if self._held is not None and doc.get("listingKey"):
                self._held.add(doc["listingKey"])
        for batch in batched(operations, 500):
            self.collection.bulk_write(batch, ordered=False)
        self.stored += len(operations)
        return len(operations)

    def count_of_run(self, stage: str) -> int:
        """What `stage` of this run put in the quarantine (each listing once): the pull's rejects
        seen from the flattening, so a rate covers every record the run read."""
        return self.collection.count_documents({"runId": self.run_id, "stage": stage})

    def release(self, listing_keys: Iterable[str]) -> int:
        """Listings that now pass leave the quarantine (it is small: read whole, once)."""
        if self._held is None:
            self._held = set(self.collection.distinct("listingKey"))
        cleared = [key for key in listing_keys if key in self._held]
        removed = 0
        for batch in batched(cleared, LOOKUP_CHUNK):
            removed += self.collection.delete_many({"listingKey": {"$in": batch}}).deleted_count
        self._held.difference_update(cleared)
        return removed
