"""Many small documents by `_id` (or another indexed key) in few round trips.

The embedded server slows down superlinearly with what an `$in` query returns (ARCHITECTURE.md
section 8: 1,000 ids took 0.96 s, 2,000 ids in chunks of 100 0.26 s), so lists are cut at
`IN_CHUNK` keys, and at `GROUP_IN_CHUNK` where each key returns a group (a listing's photos).
Measured on a disk-backed server (2026-12-07, 1,000 keys of 20k documents; 500 listings of
100k photos): one document per key 0.126 s in chunks of 100, 0.088 s of 25, 0.097 s of 10;
twelve per key 0.694 s in chunks of 100, 0.295 s of 25, 0.242 s of 10. A run or a sensor tick
over many feeds reads their bookkeeping this way, not with one query per feed."""

from collections.abc import Iterator, Sequence
from typing import Any

from pymongo.collection import Collection

IN_CHUNK = 25
GROUP_IN_CHUNK = 10


def docs_by_id(collection: Collection, ids: Sequence[Any], projection: dict | None = None) -> dict[Any, dict]:
    """The documents of `ids` that exist, by `_id`: one query per `IN_CHUNK` ids."""
    found: dict[Any, dict] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), IN_CHUNK):
        for doc in collection.find({"_id": {"$in": unique[start : start + IN_CHUNK]}}, projection):
            found[doc["_id"]] = doc
    return found


# A projected scan reads ~47k documents/s on the embedded server (ARCHITECTURE.md section 8),
# `$in` lookups of `IN_CHUNK` keys ~11k/s (above): past one key in four of the collection, one
# scan costs less.
SCAN_SHARE = 4


def docs_by_key(
    collection: Collection, field: str, keys: Sequence[Any], projection: dict, stored: int
) -> Iterator[dict]:
    """The documents whose `field` is one of `keys`, in a collection of `stored` documents:
    `$in` lookups of `IN_CHUNK` keys, or one projected scan filtered here when the keys are
    a large part of the collection (a first sync, a backfill). `field` holds scalars."""
    unique = list(dict.fromkeys(keys))
    if not unique:
        return
    if len(unique) * SCAN_SHARE > stored:
        wanted = set(unique)
        yield from (doc for doc in collection.find({}, {**projection, field: 1}) if doc.get(field) in wanted)
        return
    for start in range(0, len(unique), IN_CHUNK):
        yield from collection.find({field: {"$in": unique[start : start + IN_CHUNK]}}, projection)
