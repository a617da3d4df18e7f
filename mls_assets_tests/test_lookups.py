"""Many feeds' bookkeeping read in few queries (a tick or a shared run over hundreds of feeds),
with the same answers as one read per feed."""

from datetime import UTC, datetime, timedelta

import pytest

from mls_assets.lib.store.changes import SEQUENCES_COLLECTION, FeedSequence, current_sequences
from mls_assets.lib.store.cursors import (
    CURSORS_COLLECTION,
    advance_cursor,
    cursor_updates,
    read_cursor,
    read_cursors,
)
from mls_assets.lib.store.lookup import IN_CHUNK, docs_by_id
from mls_assets.lib.store.naming import FeedKey

FEEDS = [f"agent{n:04d}.mls{n % 7:02d}" for n in range(3 * IN_CHUNK + 17)]


@pytest.mark.parametrize("asked", [5, IN_CHUNK, len(FEEDS)])
def test_many_cursors_read_at_once_match_one_read_per_feed(mongo_db, asked):
    at = datetime(2026, 11, 20, tzinfo=UTC)
    mongo_db[CURSORS_COLLECTION].insert_many(
        [{"_id": f, "cursor": at + timedelta(minutes=i), "updatedAt": at} for i, f in enumerate(FEEDS) if i % 3]
    )
    wanted = FEEDS[:asked] + ["never.pulled"]
    cursors = read_cursors(mongo_db, wanted)
    assert cursors == {f: read_cursor(mongo_db, f) for f in wanted}  # a feed never pulled: None
    assert set(cursor_updates(mongo_db, wanted)) == {f for f in wanted if cursors[f] is not None}


def test_documents_by_id_in_chunks_and_sequences_of_many_feeds(mongo_db):
    feeds = [FeedKey.parse(f) for f in FEEDS]
    for i, feed in enumerate(feeds[::2]):
        FeedSequence(mongo_db, feed).take(i + 1)
    found = docs_by_id(mongo_db[SEQUENCES_COLLECTION], [str(f) for f in feeds] * 2)  # repeats asked once
    assert set(found) == {str(f) for f in feeds[::2]}
    assert current_sequences(mongo_db, feeds) == {f: FeedSequence(mongo_db, f).current() for f in feeds}


def test_a_cursor_only_moves_forward_from_none_missing_or_older(mongo_db):
    at = datetime(2026, 11, 20, tzinfo=UTC)
    cursors = mongo_db[CURSORS_COLLECTION]
    cursors.insert_many([{"_id": "a.gps", "cursor": None}, {"_id": "b.gps", "cursor": at}])
    advance_cursor(mongo_db, "a.gps", at, "run-1")  # a null cursor moves
    advance_cursor(mongo_db, "b.gps", at - timedelta(minutes=1), "run-1")  # never back
    advance_cursor(mongo_db, "b.gps", at, "run-1")  # nor onto itself (nothing to write)
    advance_cursor(mongo_db, "c.gps", at, "run-1")  # a feed never pulled gets its cursor
    advance_cursor(mongo_db, "c.gps", at + timedelta(minutes=5), "run-2")  # forward
    assert read_cursors(mongo_db, ["a.gps", "b.gps", "c.gps"]) == {
        "a.gps": at,
        "b.gps": at,
        "c.gps": at + timedelta(minutes=5),
    }
    assert cursors.find_one({"_id": "b.gps"}).get("runId") is None  # the older pull wrote nothing
    assert cursors.find_one({"_id": "c.gps"})["runId"] == "run-2"
