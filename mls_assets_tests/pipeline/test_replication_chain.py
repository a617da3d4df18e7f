"""End to end: real definitions, real IO manager on the real server, the simulator over HTTP."""

from datetime import timedelta

import dagster as dg
from pymongo import monitoring

from mls_assets.lib.catalogue import EXPIRED_TTL_SECONDS
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.tenants import load_feeds, sync_configs
from mls_assets.lib.transform.naming import camel_case
from mls_assets.lib.transform.status import EXPIRED_RETENTION, status_class
from mls_assets.simulator import GPS_MLS_ID
from mls_assets_tests.support.chain import ANCHOR, FEEDS, Pipeline
from mls_assets_tests.support.commands import Finds

GPS = "jpsrealtor.gps"
STATUS_COLLECTIONS = {"active": "listings", "closed": "closed_listings", "expired": "expired_listings"}
ALL = (
    "raw_listings",
    "flattened_listings",
    "rejects",
    "listings",
    "closed_listings",
    "expired_listings",
    "photos",
    "expired_photos",
    "status_history",
)
VOLATILE = {"_id", "_runId", "_seq", "lastSyncedAt", "rejectedAt", "runId"}


def gps_states(market):
    return [s for s in market.states() if s.timeline.mls_id == GPS_MLS_ID]


def is_bad(market, state) -> bool:
    return market.record(state, False)["StandardFields"]["ListPrice"] == "Call listing agent"


def keys(collection, query=None) -> set[str]:
    return {d["listingKey"] for d in collection.find(query or {}, {"listingKey": 1})}


def snapshot(pipeline: Pipeline, feed: str, bookkeeping: bool = False) -> dict:
    skip = VOLATILE | ({"_hash", "partition"} if bookkeeping else set())
    state = {}
    for name in ALL:
        docs = [{k: v for k, v in d.items() if k not in skip} for d in pipeline.collection(feed, name).find()]
        state[name] = sorted(docs, key=repr)
    return state


def test_a_full_sync_fills_every_collection_correctly(pipeline, market):
    pipeline.sync(GPS)  # today, no cursor yet: the whole feed
    states = gps_states(market)
    good = [s for s in states if not is_bad(market, s)]
    bad = [s for s in states if is_bad(market, s)]
    assert bad, "the simulated feed should contain unparseable records"

    assert keys(pipeline.collection(GPS, "raw_listings")) == {s.timeline.key for s in states}
    assert keys(pipeline.collection(GPS, "flattened_listings")) == {s.timeline.key for s in good}
    rejects = list(pipeline.collection(GPS, "rejects").find())
    assert {r["listingKey"] for r in rejects} == {s.timeline.key for s in bad}
    assert all(r["field"] == "ListPrice" and "number" in r["reason"] and r["raw"] for r in rejects)

    now = market.now
    expected = {"active": set(), "closed": set(), "expired": set()}
    for s in good:
        klass = status_class(s.status).value
        if klass == "expired" and s.index_row["StatusChangeTimestamp"] + EXPIRED_RETENTION <= now:
            continue
        expected[klass].add(s.timeline.key)
    for klass, name in STATUS_COLLECTIONS.items():
        assert keys(pipeline.collection(GPS, name)) == expected[klass], klass
    expired = pipeline.collection(GPS, "expired_listings").find_one()
    assert expired["expiresAt"] == expired["statusChangeDate"] + timedelta(days=90)
    assert (expired["leadStatus"], expired["skipTraced"]) == ("new", False)
    ttl = [
        i
        for i in pipeline.collection(GPS, "expired_listings").index_information().values()
        if i["key"] == [("expiresAt", 1)]
    ]
    assert ttl and ttl[0]["expireAfterSeconds"] == EXPIRED_TTL_SECONDS
    assert pipeline.collection(GPS, "expired_listings").count_documents({"expiresAt": {"$type": "date"}}) == len(
        expected["expired"]
    )

    listing = pipeline.collection(GPS, "listings").find_one({"photoCount": {"$gt": 0}})
    assert listing["location"]["type"] == "Point" and listing["tenantId"] == "jpsrealtor"
    photos = list(pipeline.collection(GPS, "photos").find({"listingKey": listing["listingKey"]}))
    assert len(photos) == listing["photoCount"] and {p["order"] for p in photos} == set(range(len(photos)))
    assert all(p["uri640"] and p["uriLarge"] for p in photos)
    photo_keys = keys(pipeline.collection(GPS, "photos"))
    assert photo_keys <= expected["active"] | expected["closed"]
    assert keys(pipeline.collection(GPS, "expired_photos")) <= expected["expired"]
    # an expired listing's photos carry its expiresAt, under the same TTL: they leave together
    expires = {d["listingKey"]: d["expiresAt"] for d in pipeline.collection(GPS, "expired_listings").find()}
    expired_photos = list(pipeline.collection(GPS, "expired_photos").find())
    assert expired_photos and all(p["expiresAt"] == expires[p["listingKey"]] for p in expired_photos)
    ttl = [
        i
        for i in pipeline.collection(GPS, "expired_photos").index_information().values()
        if i["key"] == [("expiresAt", 1)]
    ]
    assert ttl and ttl[0]["expireAfterSeconds"] == EXPIRED_TTL_SECONDS
    assert pipeline.collection(GPS, "status_history").count_documents({}) == 0  # nothing moved yet


def test_rerunning_any_partition_changes_nothing(pipeline, market):
    day = (ANCHOR - timedelta(days=3)).date().isoformat()
    pipeline.sync(GPS)
    pipeline.sync(GPS, day)
    before = snapshot(pipeline, GPS)
    result = pipeline.sync(GPS, day)
    pipeline.sync(GPS)
    assert snapshot(pipeline, GPS) == before
    raw = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "raw_listings"]
    meta = raw[0].materialization.metadata
    assert meta["inserted"].value == meta["updated"].value == 0


def test_days_out_of_order_give_the_same_final_state(pipeline, market, mongo_uri, instance, tenants_file):
    from mls_assets.lib.store.client import get_client

    days = [(ANCHOR - timedelta(days=n)).date().isoformat() for n in range(6, -1, -1)]
    for day in days:
        pipeline.sync(GPS, day)
    in_order = snapshot(pipeline, GPS)
    assert in_order["listings"], "the window should hold listings"

    other = get_client(mongo_uri)[pipeline.database.name + "_reverse"]
    try:
        reverse = Pipeline(market, other, mongo_uri, pipeline.instance)
        reverse.load_configs(tenants_file)
        for day in reversed(days):
            reverse.sync(GPS, day)
        # which run wrote a document last differs with the order; every document's content must not
        assert snapshot(reverse, GPS, bookkeeping=True) == snapshot(pipeline, GPS, bookkeeping=True)
    finally:
        other.client.drop_database(other.name)


def first_move(market, states, wanted):
    """A listing whose next event moves it between status collections, and when."""
    clock = market._clock
    for s in states:
        t = s.timeline
        for at, (kind, value) in zip(t.times, t.events, strict=True):
            if at > clock:
                target = "Closed" if kind == "close" else value if kind == "status" else None
                if target in wanted and status_class(s.status) != status_class(target):
                    return s, at, target
                break
    raise AssertionError("no listing moves soon in this market")


def test_a_status_change_moves_the_listing_and_its_photos_and_writes_one_event(pipeline, market):
    pipeline.sync(GPS)
    state, at, target = first_move(
        market,
        [
            s
            for s in gps_states(market)
            if s.status == "Active"
            and not is_bad(market, s)
            and pipeline.collection(GPS, "photos").count_documents({"listingKey": s.timeline.key})
        ],
        ("Expired", "Canceled", "Withdrawn"),
    )
    key = state.timeline.key
    market.set_clock(market.now + timedelta(seconds=at - market._clock + 60))
    moved_run = pipeline.sync(GPS)
    pipeline.sync(GPS)  # again: still one event, nothing duplicated
    history = next(
        e
        for e in moved_run.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "listing_status_history"
    )
    summary = history.materialization.metadata["summary"].value  # the sync result an operator reads first
    assert summary["statusChanges"][f"Active -> {target}"] >= 1 and summary["totalListings"] >= 1

    assert pipeline.collection(GPS, "listings").find_one({"listingKey": key}) is None
    moved = pipeline.collection(GPS, "expired_listings").find_one({"listingKey": key})
    assert moved["standardStatus"] == target and moved["leadStatus"] == "new"
    assert pipeline.collection(GPS, "photos").count_documents({"listingKey": key}) == 0
    assert (
        pipeline.collection(GPS, "expired_photos").count_documents({"listingKey": key, "expiresAt": moved["expiresAt"]})
        == moved["photoCount"]
        > 0
    )
    events = list(pipeline.collection(GPS, "status_history").find({"listingKey": key}))
    assert [(e["from"], e["to"]) for e in events] == [("Active", target)]
    assert events[0]["runId"] == moved_run.run_id


def test_lead_fields_written_by_the_crm_survive_resyncs(pipeline, market):
    pipeline.sync(GPS)
    expired = pipeline.collection(GPS, "expired_listings")
    lead = expired.find_one()
    key = lead["listingKey"]
    expired.update_one(
        {"listingKey": key}, {"$set": {"leadStatus": "contacted", "ownerName": "Pat Doe", "skipTraced": True}}
    )
    timeline = next(s.timeline for s in gps_states(market) if s.timeline.key == key)
    changed_at = market._clock + 3600
    timeline.times.append(changed_at)  # the MLS changes the listing's price
    timeline.events.append(("price", 123_000))
    market._state_cache = None
    market.set_clock(market.now + timedelta(hours=2))
    pipeline.sync(GPS)

    after = expired.find_one({"listingKey": key})
    assert after["listPrice"] == 123_000.0
    assert (after["leadStatus"], after["ownerName"], after["skipTraced"]) == ("contacted", "Pat Doe", True)


def features_of(market, state) -> dict:
    """The listing's features as the simulator renders them in every version (its static data)."""
    return market._static[market._position(state.timeline)]["features"]


def test_a_field_the_mls_stops_sending_leaves_the_status_collection_and_the_crm_s_fields_stay(pipeline, market):
    """The status collections are shared with the CRM, so a changed listing is `$set` there,
    not replaced: a field the MLS no longer sends (a feature removed) must go all the same."""
    pipeline.sync(GPS)
    active = pipeline.collection(GPS, "listings")
    state = next(
        s
        for s in gps_states(market)
        if status_class(s.status) == "active"
        and not is_bad(market, s)
        and features_of(market, s)
        and active.find_one({"listingKey": s.timeline.key})
    )
    key, features = state.timeline.key, features_of(market, state)
    removed = camel_case(next(iter(features)))
    assert removed in active.find_one({"listingKey": key})
    active.update_one({"listingKey": key}, {"$set": {"leadStatus": "contacted", "favorite": True}})
    features.pop(next(iter(features)))  # the agent removes the feature in the MLS, and changes the price
    for minutes in range(1, 30):  # a version the simulator renders unreadable is quarantined: the next one
        market.advance(timedelta(minutes=1))
        market.change(key, price=456_000 + minutes)
        if not is_bad(market, next(s for s in gps_states(market) if s.timeline.key == key)):
            break
    market.advance(timedelta(minutes=1))
    pipeline.sync(GPS)

    after = active.find_one({"listingKey": key})
    assert after["listPrice"] == 456_000 + minutes and removed not in after
    assert (after["leadStatus"], after["favorite"]) == ("contacted", True)
    assert "_dropped" not in after
    flattened = pipeline.collection(GPS, "flattened_listings").find_one({"listingKey": key})
    assert removed not in flattened and removed in flattened["_dropped"]


def test_a_feed_of_one_tenant_never_writes_another_tenants_collections(pipeline):
    pipeline.sync(GPS)
    names = set(pipeline.database.list_collection_names())
    assert not [n for n in names if n.startswith("otheragent_") or n.startswith("jpsrealtor_crmls_")]
    pipeline.sync("otheragent.gps")
    for name in ("flattened_listings", "listings", "closed_listings", "expired_listings"):
        mine = pipeline.collection(GPS, name)
        theirs = pipeline.collection("otheragent.gps", name)
        assert mine.count_documents({"tenantId": {"$ne": "jpsrealtor"}}) == 0
        assert theirs.count_documents({"tenantId": {"$ne": "otheragent"}}) == 0
        assert keys(mine) == keys(theirs)  # same MLS, separate copies


def test_a_run_hands_what_it_wrote_to_its_own_consumers_without_reading_it_back(
    market, mongo_db, mongo_uri, tenants_file
):
    """The flattening, the photos, the routing and the CRM step read this run's raw and
    flattened listings from its handoff, in a first load and in an incremental run: no read
    of their changes reaches the server, and what they store is right."""
    names = {FeedKey.parse(GPS).collection(name) for name in ("raw_listings", "flattened_listings")}
    reads = Finds(names)
    monitoring.register(reads)  # pymongo keeps it for every later client: it stops watching below
    try:
        sync_configs(mongo_db, load_feeds(tenants_file))
        own_client = f"{mongo_uri}&appName=handoff" if "?" in mongo_uri else f"{mongo_uri.rstrip('/')}/?appName=handoff"
        with dg.DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions("feeds", FEEDS)
            pipeline = Pipeline(market, mongo_db, own_client, instance)
            pipeline.sync(GPS)
            full = len(reads.change_reads)
            active = keys(pipeline.collection(GPS, "listings"), {"standardStatus": "Active"})
            repriced, withdrawn = sorted(active)[:2]
            market.change(repriced, price=123_456)
            market.change(withdrawn, status="Canceled")
            market.advance(timedelta(minutes=10))
            pipeline.sync(GPS)
    finally:
        reads.watching = False
    assert (full, reads.change_reads) == (0, [])
    assert pipeline.collection(GPS, "listings").find_one({"listingKey": repriced})["listPrice"] == 123_456
    assert withdrawn in keys(pipeline.collection(GPS, "expired_listings"))
    assert withdrawn not in keys(pipeline.collection(GPS, "listings"))
    assert pipeline.collection(GPS, "status_history").count_documents({"listingKey": withdrawn, "to": "Canceled"}) == 1
    assert keys(pipeline.collection(GPS, "expired_photos"), {"listingKey": withdrawn}) == {withdrawn}
