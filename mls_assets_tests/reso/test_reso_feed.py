"""A RESO feed end to end: real definitions, the real IO manager on the real server, the
simulator's RESO dialect over HTTP; side by side with a Spark feed of the same market."""

from datetime import timedelta

import dagster as dg
import pytest
import yaml

from mls_assets.defs.automation.probe import change_probe_sensor
from mls_assets.defs.maintenance.assets import deleted_listings_sweep
from mls_assets.lib.store.cursors import read_cursor
from mls_assets.lib.tenants import load_feeds, sync_configs
from mls_assets.simulator import GPS_MLS_ID, Market, SimulatorServer
from mls_assets.simulator.faults import FaultPlan
from mls_assets.simulator.reso import RESO_PROPERTY_TYPES, RESO_SYSTEM_NAMES
from mls_assets_tests.hardening.test_fault_suite import FAULT_KINDS, sync_through_every_fault
from mls_assets_tests.pipeline.test_replication_chain import snapshot
from mls_assets_tests.support.chain import ANCHOR, Pipeline

SPARK, RESO = "sparkagent.gps", "gridagent.gps"
LISTING_COLLECTIONS = (
    "raw_listings",
    "flattened_listings",
    "listings",
    "closed_listings",
    "expired_listings",
    "photos",
    "expired_photos",
)
# What differs between the two sources by nature, not by treatment: who the document belongs
# to, how each API names the MLS and the property type, the source record's own hash (the
# records differ in form, so does a raw listing's `record`), and the photo URL (RESO sends one
# full-size URL, Spark nine sizes).
PROVENANCE = {
    "_id",
    "_runId",
    "_seq",
    "_hash",
    "partition",
    "tenantId",
    "mlsId",
    "originatingSystemName",
    "propertyType",
    "contentHash",
    "primaryPhotoUrl",
    "record",
}


@pytest.fixture
def market():
    return Market(listings=60, seed=23, anchor=ANCHOR, mls_ids=(GPS_MLS_ID,), bad_record_rate=0.03)


@pytest.fixture
def simulator(market):
    with SimulatorServer(market) as server:
        yield server


@pytest.fixture
def pipeline(market, simulator, mongo_db, mongo_uri, tmp_path, monkeypatch):
    fast = {"requests": 1000, "per_seconds": 1.0}  # the test, not MLS Grid's 2 per second, sets the pace
    document = {
        "tenants": [
            {
                "tenant_id": "sparkagent",
                "feeds": [
                    {"mls": "gps", "mls_id": GPS_MLS_ID, "base_url": simulator.url, "token_env": "TOKEN_TEST_UNSET"}
                ],
            },
            {
                "tenant_id": "gridagent",
                "feeds": [
                    {
                        "mls": "gps",
                        "provider": "reso",
                        "mls_id": RESO_SYSTEM_NAMES[GPS_MLS_ID],
                        "base_url": simulator.reso_url,
                        "token_env": "TOKEN_TEST_UNSET",
                        "property_types": sorted(RESO_PROPERTY_TYPES.values()),
                        "rate_limit": fast,
                    }
                ],
            },
        ]
    }
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump(document))
    monkeypatch.setenv("MLS_TENANTS_FILE", str(path))
    monkeypatch.delenv("TOKEN_TEST_UNSET", raising=False)
    sync_configs(mongo_db, load_feeds(path))
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("feeds", [SPARK, RESO])
        yield Pipeline(market, mongo_db, mongo_uri, instance)


def stored(pipeline: Pipeline, feed: str, name: str) -> dict[str, dict]:
    """A collection by key (photos by photo id), without what differs by provenance."""
    key = "photoId" if "photos" in name else "listingKey"
    return {d[key]: {k: v for k, v in d.items() if k not in PROVENANCE} for d in pipeline.collection(feed, name).find()}


def history(pipeline: Pipeline, feed: str) -> set[tuple]:
    return {(e["listingKey"], e.get("from"), e["to"]) for e in pipeline.collection(feed, "status_history").find()}


def raw_metadata(result: dg.ExecuteInProcessResult) -> dict:
    [materialization] = result.asset_materializations_for_node("raw_listings")
    return {key: entry.value for key, entry in materialization.metadata.items()}


def visible_keys(market) -> set[str]:
    return {s.timeline.key for s in market.states()}


def test_a_spark_feed_and_a_reso_feed_of_one_market_store_the_same_listings(pipeline, market, simulator):
    for feed in (SPARK, RESO):
        pipeline.sync(feed, page_size=20)  # first load: the whole feed, page by page
    for name in LISTING_COLLECTIONS:
        spark, reso = stored(pipeline, SPARK, name), stored(pipeline, RESO, name)
        assert spark and spark.keys() == reso.keys(), name
        if "photos" not in name:  # photo documents differ in their URLs (see PROVENANCE)
            assert spark == reso, name
    assert stored(pipeline, SPARK, "rejects").keys() == stored(pipeline, RESO, "rejects").keys() != set()

    # Three days on: prices, statuses and a deletion. RESO announces the deletion; Spark's
    # sweep finds it. After both, the feeds agree again, history included.
    market.advance(timedelta(days=3))
    gone = sorted(visible_keys(market) & stored(pipeline, SPARK, "listings").keys())[0]
    simulator.change(gone, delete=True)
    market.advance(timedelta(minutes=5))
    pipeline.sync(SPARK)
    announced = raw_metadata(pipeline.sync(RESO))
    assert announced["deletions_announced"] >= 1
    assert gone not in stored(pipeline, RESO, "raw_listings") and gone in stored(pipeline, SPARK, "raw_listings")
    assert dg.materialize(
        [deleted_listings_sweep], instance=pipeline.instance, resources=pipeline.resources(), partition_key=SPARK
    ).success
    for name in LISTING_COLLECTIONS:
        spark, reso = stored(pipeline, SPARK, name), stored(pipeline, RESO, name)
        assert spark.keys() == reso.keys(), name
        if "photos" not in name:
            assert spark == reso, name
    assert history(pipeline, SPARK) == history(pipeline, RESO)
    assert [e for e in history(pipeline, RESO) if e[2] == "Deleted"] == [(gone, "Active", "Deleted")]


def test_a_listing_the_source_deletes_leaves_every_collection_with_one_history_event(pipeline, market, simulator):
    pipeline.sync(RESO)
    with_photos = next(key for key, doc in stored(pipeline, RESO, "listings").items() if doc.get("photoCount"))
    market.advance(timedelta(hours=2))
    deleted_at = simulator.change(with_photos, delete=True)
    market.advance(timedelta(minutes=10))
    metadata = raw_metadata(pipeline.sync(RESO))

    assert metadata["deletions_announced"] == 1 and metadata["pulled_in_window"] == 0
    for name in (*LISTING_COLLECTIONS, "rejects"):
        assert with_photos not in {d.get("listingKey") for d in pipeline.collection(RESO, name).find()}, name
    [event] = pipeline.collection(RESO, "status_history").find({"to": "Deleted"})
    assert (event["listingKey"], event["from"], event["at"]) == (with_photos, "Active", deleted_at)
    assert read_cursor(pipeline.database, RESO) == market.now  # the run completed and moved on

    pipeline.sync(RESO)  # the deletion is still in the overlap window: nothing happens twice
    assert pipeline.collection(RESO, "status_history").count_documents({"to": "Deleted"}) == 1
    sweep = dg.materialize(
        [deleted_listings_sweep], instance=pipeline.instance, resources=pipeline.resources(), partition_key=RESO
    )
    [swept] = sweep.asset_materializations_for_node("deleted_listings_sweep")
    assert swept.metadata["source_keys"].value == len(visible_keys(market))  # viewable keys only
    assert swept.metadata["removed"].value == 0


def test_an_incremental_run_pulls_only_what_changed(pipeline, market, simulator):
    pipeline.sync(RESO)
    active = stored(pipeline, RESO, "listings")
    key = sorted(active)[0]
    market.advance(timedelta(hours=1))
    simulator.change(key, price=123_000)
    market.advance(timedelta(minutes=5))
    metadata = raw_metadata(pipeline.sync(RESO))
    assert metadata["pulled_in_window"] == 1 and metadata["deletions_announced"] == 0
    assert stored(pipeline, RESO, "listings")[key]["listPrice"] == 123_000


def test_a_429_and_a_repeated_next_link_cost_a_retry_not_a_listing(pipeline, market, simulator):
    simulator.set_faults(FaultPlan(retry_after="0"))
    simulator.inject("429", "repeat_token")
    result = pipeline.sync(RESO, page_size=15)

    assert simulator.faults.injected == {"429": 1, "repeat_token": 1}
    retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retried) == 1 and "already requested" in str(retried[0].event_specific_data.error)
    expected = {s.timeline.key for s in market.states()}
    assert set(stored(pipeline, RESO, "raw_listings")) == expected
    assert read_cursor(pipeline.database, RESO) == market.now


def test_the_change_probe_asks_a_reso_source_once_and_sees_a_deletion_as_a_change(pipeline, market, simulator):
    pipeline.sync(SPARK)
    pipeline.sync(RESO)

    def probe() -> dg.SensorResult:
        with dg.build_sensor_context(instance=pipeline.instance, resources=pipeline.resources()) as context:
            return change_probe_sensor(context)

    before = simulator.requests
    assert probe().run_requests == [] and simulator.requests - before == 2  # one $count question per feed
    market.advance(timedelta(minutes=30))
    simulator.change(sorted(stored(pipeline, RESO, "listings"))[0], delete=True)  # only RESO can tell
    market.advance(timedelta(minutes=5))
    (request,) = probe().run_requests
    assert request.tags["mls/feed"] == RESO


def test_every_transient_fault_kind_on_a_reso_feed_ends_as_a_clean_run(pipeline, market, simulator, mongo_uri):
    start, later = market.now, market.now + timedelta(days=2)
    clean = Pipeline(market, pipeline.database.client[pipeline.database.name + "_clean"], mongo_uri, pipeline.instance)
    clean.load_configs(None)
    for clock in (start, later):
        market.set_clock(clock)
        clean.sync(RESO)
    expected = snapshot(clean, RESO, bookkeeping=True)

    sync_through_every_fault(pipeline, simulator, RESO, start, later)
    assert set(simulator.faults.injected) >= set(FAULT_KINDS)
    assert snapshot(pipeline, RESO, bookkeeping=True) == expected


def test_hostile_reso_records_cost_only_themselves(mongo_db, mongo_uri, tmp_path, monkeypatch):
    market = Market(listings=120, seed=29, anchor=ANCHOR, mls_ids=(GPS_MLS_ID,), hostile_rate=0.1, bad_record_rate=0)
    with SimulatorServer(market) as simulator:
        document = {
            "tenants": [
                {
                    "tenant_id": "gridagent",
                    "feeds": [
                        {
                            "mls": "gps",
                            "provider": "reso",
                            "mls_id": RESO_SYSTEM_NAMES[GPS_MLS_ID],
                            "base_url": simulator.reso_url,
                            "token_env": "TOKEN_TEST_UNSET",
                            "property_types": [],
                            "rate_limit": {"requests": 1000},
                        }
                    ],
                }
            ]
        }
        path = tmp_path / "tenants.yaml"
        path.write_text(yaml.safe_dump(document))
        monkeypatch.setenv("MLS_TENANTS_FILE", str(path))
        sync_configs(mongo_db, load_feeds(path))
        with dg.DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions("feeds", [RESO])
            pipeline = Pipeline(market, mongo_db, mongo_uri, instance)
            pipeline.sync(RESO, page_size=25)
    states = market.states()
    hostile = {s.timeline.key: market.hostile_kind(s) for s in states if market.hostile_kind(s)}
    assert len(set(hostile.values())) >= 8, "the market serves most hostile kinds"
    stored_keys = set(stored(pipeline, RESO, "flattened_listings"))
    assert stored_keys == {s.timeline.key for s in states} - {
        k for k, kind in hostile.items() if kind != "unsafe_names"
    }
    rejects = list(pipeline.collection(RESO, "rejects").find())
    assert len(rejects) == len(hostile) - sum(kind == "unsafe_names" for kind in hostile.values())
    assert all(r["reason"] and r["raw"] for r in rejects)
