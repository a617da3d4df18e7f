"""The run-scoped measures answer the same whichever way they read: point lookups for a few
written listings, whole key sets for many, and the run's own writes in place of a sibling's
key set only when the run made the sibling's first load into an empty collection."""

import pytest

from mls_assets.lib.catalogue import STATUS_COLLECTIONS
from mls_assets.lib.quality import measures
from mls_assets.lib.store.changes import WriteMarks
from mls_assets.lib.store.lookup import docs_by_key
from mls_assets.lib.store.naming import FeedKey

FEED = FeedKey.parse("agent.gps")
REQUIRED = {"listingId": "1", "standardStatus": "Active", "modificationTimestamp": 1, "tenantId": "agent"}


def store(database, klass: str, keys: list[str], seq: int) -> None:
    collection = database[STATUS_COLLECTIONS[klass].collection_name(FEED)]
    collection.insert_many([{"listingKey": k, "_seq": seq, **REQUIRED, "mlsProvider": "gps"} for k in keys])
    WriteMarks(database).recount(collection)


@pytest.mark.parametrize("loaded_empty", [True, False], ids=["expired loaded empty", "expired held one before"])
@pytest.mark.parametrize("many", [False, True], ids=["lookups", "key sets"])
def test_twins_are_found_among_the_runs_writes_and_what_was_stored_before(mongo_db, monkeypatch, many, loaded_empty):
    monkeypatch.setattr(measures, "SCAN_SHARE", 1_000 if many else 0)
    expired = mongo_db[STATUS_COLLECTIONS["expired"].collection_name(FEED)]
    twins = ["twin-new", "twin-old"]
    if not loaded_empty:  # a document nobody sequenced, there before the run's first load
        expired.insert_one({"listingKey": "twin-unsequenced"})
        twins.append("twin-unsequenced")
    WriteMarks(mongo_db).loading(expired, "run-1", empty=loaded_empty)
    store(mongo_db, "closed", ["old-1", "old-2", "twin-old"], seq=1)  # before the run
    store(mongo_db, "active", [f"new-{n}" for n in range(6)] + ["twin-old", "twin-new", "twin-unsequenced"], seq=5)
    store(mongo_db, "expired", ["twin-new", "exp-1"], seq=5)  # the run's
    since = {(FEED, klass): 4 for klass in STATUS_COLLECTIONS}
    seen: dict[str, list[str]] = {}
    for klass, spec in STATUS_COLLECTIONS.items():
        collection = mongo_db[spec.collection_name(FEED)]
        assert measures.missing_required(collection, 4, seen.setdefault(klass, [])).offending == 0
    assert seen["closed"] == [] and len(seen["active"]) == 9 and sorted(seen["expired"]) == ["exp-1", "twin-new"]
    for written in (seen, None):  # the keys handed over, or read again
        for run_id in ("run-1", "another-run"):  # the run that loaded expired, or not
            finding = measures.in_several_collections(mongo_db, FEED, since, written, run_id)
            assert sorted(finding.sample) == twins and finding.offending == len(twins)
    assert sorted(measures.in_several_collections(mongo_db, FEED).sample) == twins  # the whole audit


def test_a_required_field_missing_is_reported_and_its_key_still_seen(mongo_db):
    collection = mongo_db[STATUS_COLLECTIONS["active"].collection_name(FEED)]
    collection.insert_many([{"listingKey": "a", "_seq": 5, **REQUIRED}, {"listingKey": "b", "_seq": 3, **REQUIRED}])
    seen: list[str] = []
    finding = measures.missing_required(collection, 4, seen)
    assert finding.sample == ["a"] and finding.details == {"missing_mlsProvider": 1} and seen == ["a"]


@pytest.mark.parametrize("stored", [10_000, 0], ids=["lookups", "one scan"])
def test_documents_by_key_are_the_same_looked_up_or_scanned(mongo_db, stored):
    collection = mongo_db["things"]
    collection.insert_many([{"key": f"k{n}", "value": n, "other": "x"} for n in range(250)])
    asked = [f"k{n}" for n in range(0, 250, 2)] * 2 + ["missing"]
    found = list(docs_by_key(collection, "key", asked, {"_id": 0, "key": 1, "value": 1}, stored))
    assert sorted(d["value"] for d in found) == list(range(0, 250, 2))  # each once, the absent none
    assert all(set(d) == {"key", "value"} for d in found)
    assert list(docs_by_key(collection, "key", [], {"_id": 0}, stored)) == []
