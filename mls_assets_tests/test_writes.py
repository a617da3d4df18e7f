"""The write engine against the real server: counts, idempotence, the version guard,
protection, moves between siblings, tombstones, grouped sets, patches, the write sequence."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import monitoring

from mls_assets.defs.io_manager import LOAD_PROJECTION
from mls_assets.lib.catalogue import ACTIVE, CLOSED, PHOTOS, CollectionSpec
from mls_assets.lib.store.changes import ChangeSet, FeedSequence
from mls_assets.lib.store.indexes import ensure_indexes
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.store.writes import CollectionWriter, Patch, Tombstone, content_hash

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
FEED = FeedKey("jpsrealtor", "gps")
SPEC = CollectionSpec("listings", ("listingKey",), "modificationTimestamp", protected=("leadStatus", "ownerName"))


def listing(key: str, price: int, at: datetime = T0, **extra) -> dict:
    return {"listingKey": key, "listPrice": price, "modificationTimestamp": at, **extra}


@pytest.fixture
def listings(mongo_db):
    return mongo_db[FEED.collection("listings")]


def write(collection, docs, spec=SPEC, siblings=(), batch_size=1000):
    """One write, as one run does it."""
    sequence = FeedSequence(collection.database, FEED)
    return CollectionWriter(
        collection, spec, siblings=siblings, sequence=sequence, run_id=uuid.uuid4().hex, batch_size=batch_size
    ).write(docs)


def test_insert_then_identical_rerun_changes_nothing(listings):
    docs = [listing(f"K{i}", 100 + i, leadStatus="new") for i in range(50)]
    first = write(listings, docs, batch_size=16)
    second = write(listings, docs, batch_size=16)
    assert (first.inserted, first.updated, first.unchanged) == (50, 0, 0)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 50)
    assert listings.count_documents({}) == 50


def test_every_written_document_carries_a_new_sequence_number_and_unchanged_ones_keep_theirs(listings):
    write(listings, [listing("A", 1), listing("B", 2)])
    first = {d["listingKey"]: d["_seq"] for d in listings.find()}
    write(listings, [listing("A", 1), listing("B", 3, T0 + timedelta(hours=1))])
    second = {d["listingKey"]: d["_seq"] for d in listings.find()}
    assert second["A"] == first["A"] and second["B"] > max(first.values())


def test_a_first_write_into_an_empty_collection_looks_nothing_up(listings):
    """One write per document and no reads: what makes a first sync as fast as inserting."""
    commands: list[str] = []

    class Listener(monitoring.CommandListener):
        def started(self, event):
            if event.database_name == listings.database.name and event.command_name in ("find", "aggregate"):
                name = str(event.command.get(event.command_name))
                commands.append(name if event.command.get("limit") != 1 else f"{name} (is it empty?)")

        def succeeded(self, event):
            pass

        def failed(self, event):
            pass

    from pymongo import MongoClient

    client = MongoClient(
        listings.database.client.address[0],
        listings.database.client.address[1],
        directConnection=True,
        tz_aware=True,
        event_listeners=[Listener()],
    )
    try:
        collection = client[listings.database.name][listings.name]
        ensure_indexes(collection, SPEC.all_indexes())
        commands.clear()
        counts = write(collection, [listing(f"K{i}", i) for i in range(300)], batch_size=100)
    finally:
        client.close()
    assert counts.inserted == 300
    assert listings.name not in commands  # no lookups in the collection itself
    # the O(1) "written before?" question, and one probe of at most one document
    assert commands == ["write_marks (is it empty?)", f"{listings.name} (is it empty?)"]


def test_changed_content_updates_only_changed_documents(listings):
    write(listings, [listing("A", 1), listing("B", 2)])
    counts = write(listings, [listing("A", 1), listing("B", 3, T0 + timedelta(hours=1))])
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 1, 1)
    assert listings.find_one({"listingKey": "B"})["listPrice"] == 3


def test_older_version_never_overwrites_newer(listings):
    newer = T0 + timedelta(days=1)
    write(listings, [listing("A", 200, newer)])
    counts = write(listings, [listing("A", 100, T0)])
    assert counts.stale == 1 and counts.updated == 0
    assert listings.find_one({"listingKey": "A"})["listPrice"] == 200


def test_guard_holds_when_a_newer_version_lands_between_read_and_write(listings, monkeypatch):
    """The guard lives in the update filter, so a concurrent newer write still wins."""
    write(listings, [listing("A", 100, T0)])
    real_lookup = CollectionWriter._lookup

    def lookup_then_concurrent_write(self, collection, keys, extra=()):
        found = real_lookup(self, collection, keys, extra)
        collection.update_one(
            {"listingKey": "A"}, {"$set": {"listPrice": 300, "modificationTimestamp": T0 + timedelta(days=2)}}
        )
        return found

    monkeypatch.setattr(CollectionWriter, "_lookup", lookup_then_concurrent_write)
    counts = write(listings, [listing("A", 200, T0 + timedelta(days=1))])
    assert counts.stale == 1 and counts.updated == 0
    assert listings.find_one({"listingKey": "A"})["listPrice"] == 300


def test_protected_fields_are_set_on_insert_only(listings):
    write(listings, [listing("A", 100, leadStatus="new")])
    listings.update_one({"listingKey": "A"}, {"$set": {"leadStatus": "contacted", "ownerName": "Ann"}})
    counts = write(listings, [listing("A", 150, T0 + timedelta(hours=2), leadStatus="new")])
    assert counts.updated == 1
    stored = listings.find_one({"listingKey": "A"})
    assert (stored["listPrice"], stored["leadStatus"], stored["ownerName"]) == (150, "contacted", "Ann")


def test_duplicate_keys_in_one_batch_keep_the_newest(listings):
    docs = [listing("A", 1, T0 + timedelta(hours=1)), listing("A", 2, T0), listing("A", 3, T0 + timedelta(hours=3))]
    counts = write(listings, docs)
    assert counts.inserted == 1 and counts.stale == 2
    assert listings.find_one({"listingKey": "A"})["listPrice"] == 3


def test_insert_race_falls_back_to_guarded_upsert(listings, monkeypatch):
    """Another writer inserts the key after our lookup: no duplicate, no error, newest wins."""
    write(listings, [listing("X", 0)])  # not empty: lookups happen
    real_lookup = CollectionWriter._lookup

    def lookup_then_concurrent_insert(self, collection, keys, extra=()):
        found = real_lookup(self, collection, keys, extra)
        collection.insert_one(listing("A", 999, T0 - timedelta(days=1)))
        collection.insert_one(listing("B", 999, T0 + timedelta(days=1)))
        return found

    monkeypatch.setattr(CollectionWriter, "_lookup", lookup_then_concurrent_insert)
    counts = write(listings, [listing("A", 1), listing("B", 2)])
    assert counts.updated == 1 and counts.stale == 1
    assert listings.count_documents({}) == 3
    assert listings.find_one({"listingKey": "A"})["listPrice"] == 1
    assert listings.find_one({"listingKey": "B"})["listPrice"] == 999


def test_a_listing_moving_in_from_a_sibling_brings_the_crm_fields_and_leaves_it(mongo_db):
    active, closed = mongo_db[ACTIVE.collection_name(FEED)], mongo_db[CLOSED.collection_name(FEED)]
    write(active, [listing("A", 1, leadStatus="new"), listing("B", 2)], ACTIVE, siblings=[closed])
    active.update_one({"listingKey": "A"}, {"$set": {"leadStatus": "called", "notes": "nice"}})
    counts = write(closed, [listing("A", 1, T0 + timedelta(days=1), leadStatus="new")], CLOSED, siblings=[active])
    assert counts.inserted == 1
    moved = closed.find_one({"listingKey": "A"})
    assert (moved["leadStatus"], moved["notes"]) == ("called", "nice")
    assert active.find_one({"listingKey": "A"}) is None and active.find_one({"listingKey": "B"})
    stale = write(active, [listing("A", 1, T0)], ACTIVE, siblings=[closed])  # an older copy never comes back
    assert stale.stale == 1 and active.find_one({"listingKey": "A"}) is None


def test_a_tombstone_removes_only_what_is_not_newer(listings):
    write(listings, [listing("A", 1), listing("B", 1, T0 + timedelta(days=2))])
    counts = write(listings, [Tombstone(("A",), T0 + timedelta(days=1)), Tombstone(("B",), T0 + timedelta(days=1))])
    assert counts.removed == 1
    assert [d["listingKey"] for d in listings.find()] == ["B"]


def test_a_grouped_collection_replaces_a_listings_set_and_moves_it(mongo_db):
    photos = mongo_db[PHOTOS.collection_name(FEED)]
    expired = mongo_db[FEED.collection("expired_photos")]
    spec_expired = CollectionSpec("expired_photos", ("photoId",), group="listingKey", sequenced=False)
    photo = lambda key, n: {"listingKey": key, "photoId": f"{key}-{n}", "order": n}
    write(photos, [photo("A", 0), photo("A", 1), photo("B", 0)], PHOTOS, siblings=[expired])
    counts = write(photos, [photo("A", 5)], PHOTOS, siblings=[expired])
    assert counts.removed == 2 and sorted(d["photoId"] for d in photos.find()) == ["A-5", "B-0"]
    write(expired, [photo("B", 0)], spec_expired, siblings=[photos])
    assert photos.count_documents({"listingKey": "B"}) == 0 and expired.count_documents({"listingKey": "B"}) == 1
    write(photos, [Tombstone(("A",))], PHOTOS)
    assert photos.count_documents({}) == 0


def test_patches_change_only_their_fields_and_never_insert(mongo_db):
    spec = CollectionSpec("crm_properties", ("_id",), sequenced=False, patched=True)
    properties = mongo_db["jpsrealtor_crm_properties"]
    properties.insert_one({"_id": "P1", "notes": "keep", "mls_property_id": "K", "price": 1})
    counts = write(
        properties,
        [Patch(("P1",), set={"price": 2}, push={"history": {"to": "Closed"}}), Patch(("P2",), set={"price": 9})],
        spec,
    )
    assert (counts.updated, counts.stale) == (1, 1)
    assert properties.find_one({"_id": "P1"}) == {
        "_id": "P1",
        "notes": "keep",
        "mls_property_id": "K",
        "price": 2,
        "history": [{"to": "Closed"}],
    }
    assert properties.count_documents({}) == 1


def test_a_consumer_reads_only_what_changed_since_its_watermark_and_resumes_where_it_stopped(listings):
    write(listings, [listing(f"K{i}", i) for i in range(5)])
    first = ChangeSet.open(listings.database, "consumer", {FEED: listings}, batch_size=2)
    assert sorted(d["listingKey"] for _, b in first.batches() for d in b) == [f"K{i}" for i in range(5)]
    # the consumer fails before committing: the next run sees the same changes, and new ones
    write(listings, [listing("K1", 100, T0 + timedelta(hours=1))])
    retry = ChangeSet.open(listings.database, "consumer", {FEED: listings})
    assert retry.count() == 5 and sorted(d["listingKey"] for _, b in retry.batches() for d in b) == [
        f"K{i}" for i in range(5)
    ]
    retry.commit("r2")
    assert ChangeSet.open(listings.database, "consumer", {FEED: listings}).empty
    write(listings, [listing("K3", 300, T0 + timedelta(hours=2))])
    later = ChangeSet.open(listings.database, "consumer", {FEED: listings})
    assert [d["listingKey"] for _, b in later.batches() for d in b] == ["K3"]
    other = ChangeSet.open(listings.database, "another consumer", {FEED: listings})
    assert other.count() == 5  # every consumer keeps its own watermark


def test_a_change_set_reads_the_same_documents_on_a_first_read_and_after_a_watermark(listings):
    """A first read (the whole collection, in natural order) and a later one (the `_seq`
    index) agree; fields left out are left out; point lookups keep to the range."""
    write(listings, [listing(f"K{i}", i) for i in range(6)])
    bookkeeping = {"_hash": 0, "_runId": 0, "_seq": 0, "_id": 0}
    first = ChangeSet.open(listings.database, "consumer", {FEED: listings}, batch_size=4, projection=bookkeeping)
    assert first.sources[0].everything and first.count() == 6
    read = [d for _, b in first.batches() for d in b]
    assert sorted(d["listingKey"] for d in read) == [f"K{i}" for i in range(6)]
    assert all(set(d) == {"listingKey", "listPrice", "modificationTimestamp"} for d in read)
    first.commit("r1")
    write(listings, [listing("K2", 20, T0 + timedelta(hours=1)), listing("K4", 40, T0 + timedelta(hours=1))])
    later = ChangeSet.open(listings.database, "consumer", {FEED: listings}, projection={"_id": 0, "listingKey": 1})
    assert not later.sources[0].everything and later.count() == 2
    assert sorted(d["listingKey"] for _, b in later.batches() for d in b) == ["K2", "K4"]
    # K1 and K3 are asked for but changed before the watermark; `_seq` is read, not returned
    looked_up = [d for b in later.documents(FEED, ["K1", "K2", "K3", "K4"]) for d in b]
    assert sorted(looked_up, key=str) == [{"listingKey": "K2"}, {"listingKey": "K4"}]
    excluded = ChangeSet(listings.database, "consumer", later.sources, projection=bookkeeping)
    assert [sorted(d) for b in excluded.documents(FEED, ["K4", "K5"]) for d in b] == [
        ["listPrice", "listingKey", "modificationTimestamp"]
    ]


def flattened_as_loaded(flattened, key: str) -> dict:
    """The flattened document as the IO manager hands it to the routing."""
    return flattened.find_one({"listingKey": key}, LOAD_PROJECTION)


def test_a_field_the_source_stopped_sending_goes_everywhere_and_only_others_fields_stay(mongo_db):
    """A collection only this pipeline writes (flattened) holds exactly the newest version. In
    one the CRM writes to (a status collection), the fields the source stopped sending go too,
    by what the flattened version recorded, while the CRM's fields and any field another
    system added survive the update."""
    owned = CollectionSpec("flattened_listings", ("listingKey",), "modificationTimestamp", keeps_dropped=True)
    flattened, listings = mongo_db[FEED.collection("flattened_listings")], mongo_db[FEED.collection("listings")]
    first = listing("K1", 100, primaryPhotoUrl="https://cdn.example/1.jpg", highSchool="Palm Desert High")
    write(flattened, [first], spec=owned)
    write(listings, [{**flattened_as_loaded(flattened, "K1"), "leadStatus": "new"}])
    listings.update_one({"listingKey": "K1"}, {"$set": {"leadStatus": "contacted", "favorite": True}})
    newer = listing("K1", 90, T0 + timedelta(hours=1))  # the photos and the school are gone at the source
    assert write(flattened, [newer], spec=owned).updated == 1
    stored = flattened.find_one({"listingKey": "K1"}, {"_id": 0, "_hash": 0, "_runId": 0, "_seq": 0})
    assert stored == {
        "listingKey": "K1",
        "listPrice": 90,
        "modificationTimestamp": newer["modificationTimestamp"],
        "_dropped": ["highSchool", "primaryPhotoUrl"],
    }
    assert write(listings, [flattened_as_loaded(flattened, "K1")]).updated == 1
    kept = listings.find_one({"listingKey": "K1"}, {"_id": 0, "_hash": 0, "_runId": 0, "_seq": 0})
    assert kept == {
        "listingKey": "K1",
        "listPrice": 90,
        "modificationTimestamp": newer["modificationTimestamp"],
        "leadStatus": "contacted",
        "favorite": True,
    }
    older = listing("K1", 1, T0)  # and an older version still changes nothing
    assert (
        write(flattened, [older], spec=owned).stale == 1 and flattened.find_one({"listingKey": "K1"})["listPrice"] == 90
    )


def test_what_a_source_dropped_is_kept_until_it_comes_back_and_never_unsets_the_crm_s_fields(mongo_db):
    """The routing may see only the last of several versions: each version carries every field
    dropped since, until the source sends it again. A dropped field the CRM owns stays."""
    owned = CollectionSpec("flattened_listings", ("listingKey",), "modificationTimestamp", keeps_dropped=True)
    flattened, listings = mongo_db[FEED.collection("flattened_listings")], mongo_db[FEED.collection("listings")]
    at = [T0 + timedelta(hours=n) for n in range(4)]
    write(
        flattened, [listing("K1", 100, at[0], highSchool="PDHS", poolFeatures="Heated", leadStatus="new")], spec=owned
    )
    write(listings, [flattened_as_loaded(flattened, "K1")])
    write(flattened, [listing("K1", 99, at[1], poolFeatures="Heated")], spec=owned)  # the routing misses this one
    write(flattened, [listing("K1", 98, at[2], highSchool="PDHS")], spec=owned)
    assert flattened_as_loaded(flattened, "K1")["_dropped"] == ["leadStatus", "poolFeatures"]  # the school is back
    write(listings, [flattened_as_loaded(flattened, "K1")])
    kept = listings.find_one({"listingKey": "K1"})
    assert (kept["listPrice"], kept["highSchool"], kept["leadStatus"]) == (98, "PDHS", "new")
    assert "poolFeatures" not in kept and "_dropped" not in kept
    write(flattened, [listing("K1", 97, at[3], highSchool="PDHS", poolFeatures="Solar")], spec=owned)
    assert flattened_as_loaded(flattened, "K1")["_dropped"] == ["leadStatus"]


def test_content_hash_ignores_key_order_and_bookkeeping():
    a = {"x": 1, "y": {"b": 2, "a": [1, {"q": 1, "p": 2}]}, "_runId": "r1", "_seq": 4}
    b = {"y": {"a": [1, {"p": 2, "q": 1}], "b": 2}, "x": 1, "_runId": "r2", "_seq": 9}
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash({**a, "x": 2})
    assert content_hash({"big": 2**70}) != content_hash({"big": 2**70 + 1})  # beyond 64 bits too


def test_a_document_without_its_key_fails_clearly(listings):
    with pytest.raises(ValueError, match="no key field 'listingKey'"):
        write(listings, [{"listPrice": 1}])


def test_indexes_already_there_are_not_requested_again(mongo_db):
    """Existing indexes such as 2dsphere must not be asked for again (some servers refuse)."""
    specs = [{"keys": [["location", "2dsphere"]]}, {"keys": [["expiresAt", 1]], "expireAfterSeconds": 0}]
    ensure_indexes(mongo_db["geo"], specs)
    ensure_indexes(mongo_db["geo"], [*specs, {"keys": [["city", 1]]}])
    keys = [info["key"] for info in mongo_db["geo"].index_information().values()]
    assert [("location", "2dsphere")] in keys and [("city", 1)] in keys
    mongo_db["geo"].drop()
    ensure_indexes(mongo_db["geo"], specs)  # a dropped collection gets its indexes back
    assert len(mongo_db["geo"].index_information()) == 3


def test_a_first_load_builds_its_indexes_at_the_end_and_keeps_the_newest_of_a_key_seen_twice(listings):
    docs = [listing(f"K{i}", i) for i in range(30)] + [
        listing("K3", 300, T0 + timedelta(hours=1)),
        listing("K4", 4, T0 - timedelta(hours=1)),
    ]
    counts = write(listings, docs, batch_size=10)
    assert listings.count_documents({}) == 30 and listings.find_one({"listingKey": "K3"})["listPrice"] == 300
    assert counts.stale == 1 and listings.find_one({"listingKey": "K4"})["listPrice"] == 4
    assert any(i["key"] == [("listingKey", 1)] and i.get("unique") for i in listings.index_information().values())


def test_a_first_load_that_stopped_midway_is_repaired_by_the_next_write(listings):
    from mls_assets.lib.store.changes import WriteMarks

    WriteMarks(listings.database).loading(listings, "dead-run")  # the load began, then its process died
    listings.insert_many([listing("A", 1), listing("A", 2, T0 + timedelta(hours=1)), listing("B", 1)])
    counts = write(listings, [listing("B", 5, T0 + timedelta(hours=2)), listing("C", 1)])
    assert sorted((d["listingKey"], d["listPrice"]) for d in listings.find()) == [("A", 2), ("B", 5), ("C", 1)]
    assert (counts.inserted, counts.updated) == (1, 1)
    assert any(i["key"] == [("listingKey", 1)] and i.get("unique") for i in listings.index_information().values())


def test_a_group_larger_than_a_batch_is_written_whole(mongo_db):
    photos = mongo_db[PHOTOS.collection_name(FEED)]
    sets = [{"listingKey": key, "photoId": f"{key}-{n}", "order": n} for key in "ABC" for n in range(7)]
    write(photos, sets, PHOTOS, batch_size=5)
    assert photos.count_documents({}) == 21
    write(photos, sets, PHOTOS, batch_size=5)  # replaced set by set, not batch by batch
    assert sorted(photos.distinct("photoId")) == sorted(p["photoId"] for p in sets)


def test_prefetching_keeps_the_order_and_raises_the_producers_error_in_place():
    from mls_assets.lib.prefetch import prefetched

    assert list(prefetched(iter(range(50)))) == list(range(50))

    def failing():
        yield 1
        yield 2
        raise RuntimeError("page 3 failed")

    seen = []
    with pytest.raises(RuntimeError, match="page 3 failed"):
        for item in prefetched(failing()):
            seen.append(item)
    assert seen == [1, 2]


def test_writers_keep_each_collections_count_through_inserts_moves_tombstones_and_group_replacements(mongo_db):
    from mls_assets.lib.store.changes import WriteMarks

    active, closed = mongo_db[ACTIVE.collection_name(FEED)], mongo_db[CLOSED.collection_name(FEED)]
    photos = mongo_db[PHOTOS.collection_name(FEED)]
    marks = WriteMarks(mongo_db)
    write(active, [listing(f"K{i}", i) for i in range(5)], ACTIVE, siblings=[closed])  # a first (bulk) load
    write(closed, [listing("K1", 1, T0 + timedelta(days=1)), listing("C9", 9)], CLOSED, siblings=[active])  # a move
    write(active, [Tombstone(("K2",), T0 + timedelta(days=1)), listing("K7", 7)], ACTIVE, siblings=[closed])
    photo = lambda key, n: {"listingKey": key, "photoId": f"{key}-{n}", "order": n}
    write(photos, [photo("A", 0), photo("A", 1), photo("B", 0)], PHOTOS)
    write(photos, [photo("A", 5), Tombstone(("B",))], PHOTOS)
    for collection in (active, closed, photos):
        assert marks.count(collection) == collection.count_documents({}), collection.name
    assert (marks.count(active), marks.count(closed), marks.count(photos)) == (4, 2, 1)


def test_groups_are_encoded_beside_the_sending_and_a_set_another_writer_stored_first_is_replaced(mongo_db, monkeypatch):
    """The producer's thread stamps and encodes the next batch of groups while this one is
    sent; a photo another writer inserted meanwhile still ends as this write's version."""
    import threading

    from mls_assets.lib.store import writes

    photos = mongo_db[PHOTOS.collection_name(FEED)]
    photo = lambda key, n, order: {"listingKey": key, "photoId": f"{key}-{n}", "order": order}
    write(photos, [photo("A", 0, 0)], PHOTOS)  # not a first load: the race below is possible
    encoders, real_encode, real_insert = set(), writes.bson.encode, CollectionWriter._insert

    def encode(doc, *args, **kwargs):
        encoders.add(threading.current_thread() is threading.main_thread())
        return real_encode(doc, *args, **kwargs)

    def another_writer_first(self, docs, counts, sent=None):
        photos.insert_one(photo("B", 0, 9) | {"_id": "B-0"})  # lands after this write's removals
        return real_insert(self, docs, counts, sent)

    monkeypatch.setattr(writes.bson, "encode", encode)
    monkeypatch.setattr(CollectionWriter, "_insert", another_writer_first)
    counts = write(photos, [photo("B", 0, 0), photo("B", 1, 1)], PHOTOS)
    assert encoders == {False}  # encoded in the producer's thread only
    assert counts.inserted == 2 and sorted((d["photoId"], d["order"]) for d in photos.find({"listingKey": "B"})) == [
        ("B-0", 0),
        ("B-1", 1),
    ]
