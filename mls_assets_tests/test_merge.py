"""Merge writes against the real server: counts, idempotence, the version guard, protection."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from mls_assets.lib.store.documents import iter_documents
from mls_assets.lib.store.merge import (
    MergeSpec,
    content_hash,
    ensure_indexes,
    merge_documents,
    remove_missing,
)

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
SPEC = MergeSpec(
    key_fields=("listingKey",),
    version_field="modificationTimestamp",
    protected_fields=("leadStatus", "ownerName"),
)


def listing(key: str, price: int, at: datetime = T0, **extra) -> dict:
    return {"listingKey": key, "listPrice": price, "modificationTimestamp": at, **extra}


@pytest.fixture
def listings(mongo_db):
    collection = mongo_db["jpsrealtor_gps_listings"]
    ensure_indexes(collection, [{"keys": [["listingKey", 1]], "unique": True}])
    return collection


def test_insert_then_identical_rerun_changes_nothing(listings):
    docs = [listing(f"K{i}", 100 + i, leadStatus="new") for i in range(50)]
    first = merge_documents(listings, docs, SPEC, batch_size=16)
    second = merge_documents(listings, docs, SPEC, batch_size=16)
    assert (first.inserted, first.updated, first.unchanged) == (50, 0, 0)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 50)
    assert listings.count_documents({}) == 50


def test_changed_content_updates_only_changed_documents(listings):
    merge_documents(listings, [listing("A", 1), listing("B", 2)], SPEC)
    later = T0 + timedelta(hours=1)
    counts = merge_documents(listings, [listing("A", 1), listing("B", 3, later)], SPEC)
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 1, 1)
    assert listings.find_one({"listingKey": "B"})["listPrice"] == 3


def test_older_version_never_overwrites_newer(listings):
    newer = T0 + timedelta(days=1)
    merge_documents(listings, [listing("A", 200, newer)], SPEC)
    counts = merge_documents(listings, [listing("A", 100, T0)], SPEC)
    assert counts.stale == 1 and counts.updated == 0
    stored = listings.find_one({"listingKey": "A"})
    assert stored["listPrice"] == 200
    assert stored["modificationTimestamp"] == newer


def test_guard_holds_when_a_newer_version_lands_between_read_and_write(listings, monkeypatch):
    """The guard lives in the update filter, so a concurrent newer write still wins."""
    from mls_assets.lib.store import merge

    merge_documents(listings, [listing("A", 100, T0)], SPEC)
    real_lookup = merge._stored_versions

    def lookup_then_concurrent_write(collection, keys, spec):
        found = real_lookup(collection, keys, spec)
        collection.update_one(
            {"listingKey": "A"},
            {"$set": {"listPrice": 300, "modificationTimestamp": T0 + timedelta(days=2)}},
        )
        return found

    monkeypatch.setattr(merge, "_stored_versions", lookup_then_concurrent_write)
    counts = merge_documents(listings, [listing("A", 200, T0 + timedelta(days=1))], SPEC)
    assert counts.stale == 1 and counts.updated == 0
    assert listings.find_one({"listingKey": "A"})["listPrice"] == 300


def test_protected_fields_are_set_on_insert_only(listings):
    merge_documents(listings, [listing("A", 100, leadStatus="new")], SPEC)
    listings.update_one({"listingKey": "A"}, {"$set": {"leadStatus": "contacted", "ownerName": "Ann"}})
    later = T0 + timedelta(hours=2)
    counts = merge_documents(listings, [listing("A", 150, later, leadStatus="new")], SPEC)
    assert counts.updated == 1
    stored = listings.find_one({"listingKey": "A"})
    assert (stored["listPrice"], stored["leadStatus"], stored["ownerName"]) == (150, "contacted", "Ann")


def test_duplicate_keys_in_one_batch_keep_the_newest(listings):
    docs = [listing("A", 1, T0 + timedelta(hours=1)), listing("A", 2, T0), listing("A", 3, T0 + timedelta(hours=3))]
    counts = merge_documents(listings, docs, SPEC)
    assert counts.inserted == 1 and counts.stale == 2
    assert listings.find_one({"listingKey": "A"})["listPrice"] == 3


def test_insert_race_falls_back_to_guarded_upsert(listings, monkeypatch):
    """Another writer inserts the key after our lookup: no duplicate, no error, newest wins."""
    from mls_assets.lib.store import merge

    real_lookup = merge._stored_versions

    def lookup_then_concurrent_insert(collection, keys, spec):
        found = real_lookup(collection, keys, spec)
        collection.insert_one(listing("A", 999, T0 - timedelta(days=1)))
        collection.insert_one(listing("B", 999, T0 + timedelta(days=1)))
        return found

    monkeypatch.setattr(merge, "_stored_versions", lookup_then_concurrent_insert)
    counts = merge_documents(listings, [listing("A", 1), listing("B", 2)], SPEC)
    assert counts.updated == 1 and counts.stale == 1
    assert listings.count_documents({}) == 2
    assert listings.find_one({"listingKey": "A"})["listPrice"] == 1
    assert listings.find_one({"listingKey": "B"})["listPrice"] == 999


def test_remove_missing_deletes_only_the_slice_keys_that_left(listings):
    merge_documents(listings, [listing(k, 1) for k in "ABC"], SPEC, stamp={"_partitionKey": "d1"})
    merge_documents(listings, [listing("Z", 1)], SPEC, stamp={"_partitionKey": "d2"})
    removed = remove_missing(listings, {"_partitionKey": "d1"}, {("A",), ("C",)}, SPEC)
    assert removed == 1
    assert sorted(d["listingKey"] for d in listings.find()) == ["A", "C", "Z"]


def test_content_hash_ignores_key_order_and_meta_fields():
    a = {"x": 1, "y": {"b": 2, "a": [1, {"q": 1, "p": 2}]}, "_runId": "r1"}
    b = {"y": {"a": [1, {"p": 2, "q": 1}], "b": 2}, "x": 1, "_runId": "r2"}
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash({**a, "x": 2})


def test_documents_from_dataframes_drop_missing_values_and_unwrap_numpy():
    frame = pd.DataFrame(
        {
            "listingKey": ["A", "B"],
            "beds": [np.int64(3), np.nan],
            "at": [pd.Timestamp("2026-11-20T10:00:00Z"), pd.NaT],
        }
    )
    docs = list(iter_documents([frame, [{"listingKey": "C"}]]))
    assert docs[0] == {"listingKey": "A", "beds": 3.0, "at": datetime(2026, 11, 20, 10, tzinfo=UTC)}
    assert type(docs[0]["beds"]) is float and type(docs[0]["at"]) is datetime
    assert docs[1] == {"listingKey": "B"}
    assert docs[2] == {"listingKey": "C"}


def test_iter_documents_rejects_unstorable_values():
    with pytest.raises(TypeError, match="cannot store a int"):
        list(iter_documents(42))


def test_a_document_without_its_key_fails_clearly(listings):
    with pytest.raises(ValueError, match="no key field 'listingKey'"):
        merge_documents(listings, [{"listPrice": 1}], SPEC)


def test_indexes_already_there_are_not_requested_again_by_a_new_process(mongo_db):
    """A fresh process (empty cache) must not trip over existing indexes such as 2dsphere."""
    from mls_assets.lib.store import merge

    specs = [{"keys": [["location", "2dsphere"]]}, {"keys": [["expiresAt", 1]], "expireAfterSeconds": 0}]
    ensure_indexes(mongo_db["geo"], specs)
    merge._ensured_indexes.clear()
    ensure_indexes(mongo_db["geo"], [*specs, {"keys": [["city", 1]]}])
    keys = [info["key"] for info in mongo_db["geo"].index_information().values()]
    assert [("location", "2dsphere")] in keys and [("city", 1)] in keys
