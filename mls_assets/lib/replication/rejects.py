"""The per-feed quarantine: records that could not be stored, with the reason."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from pymongo import UpdateOne
from pymongo.collection import Collection

from mls_assets.lib.store.merge import batched


def reject_key(reject: dict[str, Any]) -> str:
    """One reject per listing (or per distinct unkeyed record), so re-runs do not pile up."""
    if reject.get("listingKey"):
        return f"listing:{reject['listingKey']}"
    return "raw:" + hashlib.blake2b(reject["raw"].encode(), digest_size=12).hexdigest()


def store_rejects(collection: Collection, rejects: Iterable[dict[str, Any]], stage: str,
                  partition: str | None, run_id: str) -> int:  # fmt: skip
    stored = 0
    for batch in batched(rejects, 500):
        operations = []
        for reject in batch:
            doc = {**reject, "stage": stage, "partition": partition, "runId": run_id}
            doc["rejectKey"] = reject_key(doc)
            operations.append(UpdateOne({"rejectKey": doc["rejectKey"]}, {"$set": doc}, upsert=True))
        if operations:
            collection.bulk_write(operations, ordered=False)
            stored += len(operations)
    return stored


def clear_rejects(collection: Collection, listing_keys: Iterable[str]) -> int:
    """Listings that now transform cleanly leave the quarantine (the quarantine is small,
    so it is read whole rather than probed once per listing)."""
    quarantined = set(collection.distinct("listingKey"))
    if not quarantined:
        return 0
    cleared = [key for key in listing_keys if key in quarantined]
    removed = 0
    for batch in batched(cleared, 500):
        removed += collection.delete_many({"listingKey": {"$in": batch}}).deleted_count
    return removed
