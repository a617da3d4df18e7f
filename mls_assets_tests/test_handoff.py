"""The handoff: a consumer of the same run reads what its producer wrote from a local spool,
and only when that is exactly what the server would answer (real server, real writer)."""

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import MongoClient

from mls_assets.lib.catalogue import CollectionSpec
from mls_assets.lib.store.changes import ChangeSet, FeedSequence, WriteMarks
from mls_assets.lib.store.handoff import Handoff
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.store.writes import BOOKKEEPING, CollectionWriter, Tombstone
from mls_assets_tests.support.commands import Finds

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
FEED = FeedKey("handoff", "gps")
SPEC = CollectionSpec(
    "raw_listings", ("listingKey",), "modificationTimestamp", spooled=True, spool_tag="standardStatus"
)
LOAD = {name: 0 for name in BOOKKEEPING}
ROUTING = {"_id": 0, "listingKey": 1, "standardStatus": 1}


def listing(key: str, status: str = "Active", at: datetime = T0, **extra) -> dict:
    return {"listingKey": key, "standardStatus": status, "modificationTimestamp": at, "record": {"n": key}, **extra}


@pytest.fixture
def raw(mongo_db):
    return mongo_db[FEED.collection("raw_listings")]


@pytest.fixture
def handoff():
    found = Handoff()
    yield found
    found.close()


def write(collection, docs, handoff=None, run_id=None, batch_size=1000):
    """One write as the IO manager does it: spooled when a handoff is given (and on)."""
    spool = handoff.spool(collection, SPEC.key, SPEC.spool_tag) if handoff is not None else None
    writer = CollectionWriter(
        collection,
        SPEC,
        sequence=FeedSequence(collection.database, FEED),
        run_id=run_id or uuid.uuid4().hex,
        batch_size=batch_size,
        spool=spool,
    )
    counts = writer.write(docs)
    if spool is not None:
        handoff.finish(collection, spool)
    return counts


def changes(collection, handoff=None, consumer="consumer"):
    return ChangeSet.open(
        collection.database, consumer, {FEED: collection}, batch_size=7, projection=LOAD, handoff=handoff
    )


def read_all(change_set, **kwargs) -> list[dict]:
    return sorted((doc for _, batch in change_set.batches(**kwargs) for doc in batch), key=lambda d: d["listingKey"])


def test_a_consumer_reads_the_spool_exactly_as_it_would_read_the_server(raw, handoff):
    old = [listing(f"K{i}", "Closed") for i in range(5)]
    write(raw, old)
    changes(raw).commit("earlier")  # the consumer has seen these
    later = T0 + timedelta(hours=1)
    docs = [listing(f"K{i}", "Active" if i % 2 else "Expired", later) for i in range(30)]
    docs.append(listing("K3", "Pending", later + timedelta(minutes=5)))  # a key twice: its last version is read
    write(raw, docs, handoff, batch_size=8)

    served, spooled = changes(raw), changes(raw, handoff)
    assert spooled.sources[0].spool is not None and served.sources[0].spool is None
    assert read_all(spooled) == read_all(served)
    assert len(read_all(spooled)) == 30
    assert read_all(spooled, projection=ROUTING) == read_all(served, projection=ROUTING)
    for where in ({"standardStatus": "Expired"}, {"standardStatus": "Active"}, {"listingKey": "K3"}):
        assert read_all(spooled, where=where) == read_all(served, where=where), where  # by the tag, and not
    assert "K3" not in {d["listingKey"] for d in read_all(spooled, where={"standardStatus": "Active"})}  # now Pending
    spool = spooled.sources[0].spool  # a read by the tag decodes only the documents it returns
    assert sorted(d["listingKey"] for d in spool.documents(tagged="Pending")) == ["K3"]
    assert len(list(spool.documents(tagged="Expired"))) == 15
    assert spooled.count(FEED) == served.count(FEED) == 30
    keys = ["K3", "K4", "K29", "missing"]
    by_key = lambda found: sorted((d for b in found for d in b), key=lambda d: d["listingKey"])  # noqa: E731
    assert by_key(spooled.documents(FEED, keys)) == by_key(served.documents(FEED, keys))
    assert [d["standardStatus"] for b in spooled.documents(FEED, ["K3"]) for d in b] == ["Pending"]


def test_the_spool_spares_the_server_its_reads(raw, handoff):
    finds = Finds({raw.name})
    client = MongoClient(*raw.database.client.address, directConnection=True, tz_aware=True, event_listeners=[finds])
    try:
        collection = client[raw.database.name][raw.name]
        write(collection, [listing(f"K{i}") for i in range(20)], handoff)
        finds.filters.clear()
        spooled = changes(collection, handoff)
        assert len(read_all(spooled)) == 20
        assert len(read_all(spooled, projection=ROUTING)) == 20
    finally:
        client.close()
    assert all(set(f) == {"_seq"} for f in finds.filters)  # only the two checks of the `_seq` index
    assert len(finds.filters) == 2


def test_writes_outside_the_spool_send_the_consumer_to_the_server(raw, handoff):
    """An earlier run's writes the consumer has not seen, then this run's: the spool holds only
    this run's, so it is not used, and nothing is lost."""
    write(raw, [listing("EARLIER")])  # not consumed yet
    write(raw, [listing(f"K{i}") for i in range(3)], handoff)
    change_set = changes(raw, handoff)
    assert change_set.sources[0].spool is None
    assert [d["listingKey"] for d in read_all(change_set)] == ["EARLIER", "K0", "K1", "K2"]


def test_a_later_write_or_removal_spoils_nothing_silently(raw, handoff):
    write(raw, [listing(f"K{i}") for i in range(3)], handoff)
    assert changes(raw, handoff).sources[0].spool is not None
    raw.delete_one({"listingKey": "K1"})  # as the deletion of a listing the source announced does
    WriteMarks(raw.database).adjust_count(raw, -1)
    change_set = changes(raw, handoff)
    assert change_set.sources[0].spool is None
    assert [d["listingKey"] for d in read_all(change_set)] == ["K0", "K2"]

    write(raw, [listing(f"K{i}") for i in range(3)], handoff)  # a new spool (K1 back)
    write(raw, [listing("K9", at=T0 + timedelta(days=1))])  # another writer after it, in the range
    assert changes(raw, handoff).sources[0].spool is None


def test_a_write_that_may_not_have_taken_effect_spoils_the_spool(raw, handoff):
    write(raw, [listing("K1", at=T0 + timedelta(days=2))])
    spool = handoff.spool(raw, SPEC.key)
    writer = CollectionWriter(raw, SPEC, sequence=FeedSequence(raw.database, FEED), run_id="r", spool=spool)
    # another writer stored a newer version between the lookup and the update (the race the
    # version guard settles): the guarded update matches nothing
    writer._lookup = lambda collection, keys, extra=(): {("K1",): {"modificationTimestamp": T0, "_hash": "older"}}
    writer.write([listing("K1", "Expired", T0 + timedelta(days=1))])
    handoff.finish(raw, spool)
    assert spool.spoiled == "a guarded update lost to a newer version"
    assert raw.find_one({"listingKey": "K1"})["standardStatus"] == "Active"
    assert changes(raw, handoff).sources[0].spool is None

    spool = handoff.spool(raw, SPEC.key)
    writer = CollectionWriter(raw, SPEC, sequence=FeedSequence(raw.database, FEED), run_id="r", spool=spool)
    writer.write([listing("K2"), Tombstone(("K1",), T0 + timedelta(days=3))])
    handoff.finish(raw, spool)
    assert spool.spoiled == "documents removed"


def test_a_writer_that_failed_midway_leaves_no_usable_spool(raw, handoff):
    def failing():
        yield from (listing(f"K{i}") for i in range(5))
        raise RuntimeError("the source went away")

    spool = handoff.spool(raw, SPEC.key)
    writer = CollectionWriter(
        raw, SPEC, sequence=FeedSequence(raw.database, FEED), run_id="r", spool=spool, batch_size=2
    )
    with pytest.raises(RuntimeError):
        writer.write(failing())
    assert not spool.closed
    change_set = changes(raw, handoff)
    assert change_set.sources[0].spool is None
    assert {d["listingKey"] for d in read_all(change_set)} == {"K0", "K1", "K2", "K3"}


def test_a_run_s_spools_stay_within_their_disk_budget_and_what_passes_it_is_read_from_the_server(raw):
    """A shared run's feeds share one budget: the first feed's spool fits and is used; the
    second one's would pass it, is given up (its file removed) and its consumer reads the server."""
    other = raw.database[FeedKey("handoff", "crmls").collection("raw_listings")]
    handoff = Handoff(max_mb=1)
    try:
        write(raw, [listing(f"K{i}", notes="x" * 300_000) for i in range(3)], handoff, batch_size=1)
        write(other, [listing(f"K{i}", notes="x" * 300_000) for i in range(3)], handoff, batch_size=1)
        first, second = handoff._spools.values()
        assert first.spoiled is None and second.spoiled.startswith("the run's spools would pass 1 MiB")
        assert not os.path.exists(second.path)
        assert changes(raw, handoff).sources[0].spool is first
        change_set = ChangeSet.open(raw.database, "consumer", {FEED: other}, projection=LOAD, handoff=handoff)
        assert change_set.sources[0].spool is None
        assert len(read_all(change_set)) == 3
    finally:
        handoff.close()
    assert not os.path.exists(first.path)


def test_spools_can_be_turned_off(raw):
    handoff = Handoff(max_mb=0)
    write(raw, [listing("K0")], handoff)
    assert handoff.spool(raw, SPEC.key) is None
    assert [d["listingKey"] for d in read_all(changes(raw, handoff))] == ["K0"]


def test_a_run_leaves_no_spool_behind(raw):
    handoff = Handoff()
    write(raw, [listing("K0")], handoff)
    (path,) = [spool.path for spool in handoff._spools.values()]
    handoff.close()
    assert not os.path.exists(path)


def test_an_update_that_keeps_fields_of_the_stored_document_spoils_the_spool(raw, handoff):
    """A `$set` of a collection with CRM-owned fields keeps what the CRM wrote, which the
    spooled document lacks: that spool is not what the collection holds."""
    spec = CollectionSpec("raw_listings", ("listingKey",), "modificationTimestamp", protected=("leadStatus",))

    def write_protected(docs, spool=None):
        CollectionWriter(raw, spec, sequence=FeedSequence(raw.database, FEED), run_id="r", spool=spool).write(docs)

    write_protected([listing("K1", leadStatus="called")])
    spool = handoff.spool(raw, spec.key)
    write_protected([listing("K1", "Closed", T0 + timedelta(days=1))], spool)
    handoff.finish(raw, spool)
    assert spool.spoiled == "updates that keep fields of the stored document"
    assert raw.find_one({"listingKey": "K1"})["leadStatus"] == "called"
