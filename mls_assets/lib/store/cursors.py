"""Per-feed replication cursors.

The cursor is the start time of the last successful pull of a feed, advanced only after
the pulled data is committed; it is never derived from MAX() of stored data. An empty
cursor means a full pull.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from mls_assets.lib.store.lookup import docs_by_id

CURSORS_COLLECTION = "feed_cursors"
OVERLAP = timedelta(minutes=20)


# Up to this many feeds are looked up by `_id`; more, and one projected scan of every cursor
# is read instead. An `$in` of 1,000 ids took the embedded server 0.96 s, 2,000 ids in chunks
# of 100 0.26 s, and a scan of 2,000 cursors 0.03 s (ARCHITECTURE.md section 8): the probe
# and the safety net ask for every feed each tick.
LOOKUP_LIMIT = 100


def _fields_of(database: Database, feeds: list[str], name: str) -> dict[str, object]:
    """One field of many feeds' cursor documents: one query."""
    cursors = database[CURSORS_COLLECTION]
    if len(feeds) <= LOOKUP_LIMIT:
        return {key: doc.get(name) for key, doc in docs_by_id(cursors, feeds, {name: 1}).items()}
    wanted = set(feeds)
    return {doc["_id"]: doc.get(name) for doc in cursors.find({}, {name: 1}) if doc["_id"] in wanted}


def read_cursors(database: Database, feeds: list[str]) -> dict[str, datetime | None]:
    """Many feeds' cursors (a feed never pulled: None)."""
    return {**dict.fromkeys(feeds), **_fields_of(database, feeds, "cursor")}


def cursor_updates(database: Database, feeds: list[str]) -> dict[str, datetime]:
    """When each feed's cursor last moved (a successful pull)."""
    return {feed: at for feed, at in _fields_of(database, feeds, "updatedAt").items() if isinstance(at, datetime)}


def read_cursor(database: Database, feed: str) -> datetime | None:
    doc = database[CURSORS_COLLECTION].find_one({"_id": feed})
    return doc["cursor"] if doc else None


def advance_cursor(database: Database, feed: str, pull_started: datetime, run_id: str) -> None:
    """Move the cursor forward (never back) to `pull_started`. The guard beside the `_id` is one
    `$not: {$gte}` (a cursor that is older, null or missing), not an `$or`: with an `$or` the
    embedded server scanned every feed's cursor on each advance (15 ms at 2,000 feeds against
    0.9 ms, measured), a cost per run that grew with the fleet."""
    cursors = database[CURSORS_COLLECTION]
    fields = {"cursor": pull_started, "runId": run_id, "updatedAt": datetime.now(UTC)}
    moved = cursors.update_one({"_id": feed, "cursor": {"$not": {"$gte": pull_started}}}, {"$set": fields})
    if moved.matched_count or cursors.find_one({"_id": feed}, {"_id": 1}) is not None:
        return  # moved, or already at or past `pull_started`
    try:
        cursors.insert_one({"_id": feed, **fields})
    except DuplicateKeyError:  # another run created it meanwhile: only ever move forward
        advance_cursor(database, feed, pull_started, run_id)


def pull_since(cursor: datetime | None) -> datetime | None:
    """Where an incremental pull starts: the cursor minus the overlap, or None (full pull)."""
    return cursor - OVERLAP if cursor else None
