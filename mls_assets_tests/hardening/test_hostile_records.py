"""Hostile records (the simulator's `hostile_rate`): each one is quarantined with its reason
or stored safely, on every path that reads it, and never costs a neighbour its place."""

from datetime import timedelta

import dagster as dg
import orjson
import pytest

from mls_assets.defs.maintenance.assets import deleted_listings_sweep
from mls_assets.lib.sources.spark.client import SparkClient, parse_json
from mls_assets.lib.sources.spark.errors import SparkProtocolError
from mls_assets.lib.transform.screen import listing_key, screen
from mls_assets.lib.transform.values import FieldError
from mls_assets.simulator import DEMO_TOKEN, GPS_MLS_ID, Market
from mls_assets.simulator.market import HOSTILE_KINDS, render_hostile_values
from mls_assets_tests.pipeline.test_replication_chain import GPS, keys
from mls_assets_tests.support.chain import ANCHOR, CHAIN

QUARANTINED = {  # kind -> (field, words of the reason)
    "key_object": ("ListingKey", "expected text, got dict"),
    "key_list": ("ListingKey", "expected text, got list"),
    "no_key": ("ListingKey", "missing"),
    "nan": ("ListPrice", "not a finite number"),
    "infinity": ("Latitude", "not a finite number"),
    "bad_utf8": ("PublicRemarks", "not valid UTF-8"),
    "ancient": ("ModificationTimestamp", "implausible date 1900"),
    "future": ("ModificationTimestamp", "implausible date 2100"),
    "deep": ("Rooms", "nested deeper than"),
    "not_object": ("record", "expected an object"),
}


@pytest.fixture
def market():
    return Market(listings=100, seed=21, anchor=ANCHOR, bad_record_rate=0.0, hostile_rate=0.2)


def gps_by_kind(market) -> dict[str, list]:
    found: dict[str, list] = {}
    for state in market.states():
        kind = market.hostile_kind(state)
        if state.timeline.mls_id == GPS_MLS_ID and kind:
            found.setdefault(kind, []).append(state)
    return found


def test_the_simulator_serves_every_hostile_kind(market, simulator):
    assert set(gps_by_kind(market)) == set(HOSTILE_KINDS)
    with SparkClient(simulator.url, DEMO_TOKEN) as client:
        records = list(client.listings(limit=1000))
    assert any(isinstance(r, str) for r in records), "a record that is not an object"
    assert len(records) == len(market.states())  # NaN and bad bytes did not cost the page
    assert client.stats.retries == 0  # nor a single retry


def test_each_hostile_record_is_quarantined_with_its_reason_or_stored_safely(pipeline, market):
    pipeline.sync(GPS)
    rejects = list(pipeline.collection(GPS, "rejects").find({"stage": "raw"}))
    by_kind = gps_by_kind(market)
    for kind, (field, reason) in QUARANTINED.items():
        labelled = [r for r in rejects if r["field"] == field and reason in r["reason"]]
        assert len(labelled) >= len(by_kind[kind]), (kind, [(r["field"], r["reason"]) for r in rejects])
    raw = pipeline.collection(GPS, "raw_listings")
    stored = keys(raw)
    for kind in QUARANTINED:
        for state in by_kind[kind]:
            assert state.timeline.key not in stored, kind  # no version of it was ever usable
    for state in by_kind["key_missing"]:  # Spark repeats the key as the record's Id
        assert state.timeline.key in stored
        assert pipeline.collection(GPS, "flattened_listings").count_documents({"listingKey": state.timeline.key}) == 1
    for state in by_kind["unsafe_names"]:
        doc = raw.find_one({"listingKey": state.timeline.key})
        assert doc["droppedFields"] == ["'$where'", "'a.b'", "'a\\x00b'"]
        assert not {"$where", "a.b", "a\x00b"} & set(doc["record"]["StandardFields"])
    clean = {
        s.timeline.key
        for s in market.states()
        if s.timeline.mls_id == GPS_MLS_ID and market.hostile_kind(s) in (None, "key_missing", "unsafe_names")
    }
    assert stored == clean  # every neighbour of a hostile record is stored


def test_the_screen_is_the_one_treatment_of_a_record(market):
    """The pull, the sweep and the transforms ask the same functions: same key, same verdict."""
    now = market.now
    for state in market.states():
        wire = render_hostile_values(orjson.dumps(market.make_hostile(state, market.record(state, True))))
        record = parse_json(wire)  # as the client reads it off the wire
        kind = market.hostile_kind(state)
        if kind in QUARANTINED:
            with pytest.raises(FieldError):
                screen(record, now)
        else:
            assert screen(record, now).key == listing_key(record) == state.timeline.key


def test_the_sweep_survives_unkeyed_records_and_keeps_listings_stored_under_their_id(pipeline, market):
    pipeline.sync(GPS)
    market.advance(timedelta(hours=1))
    stored = keys(pipeline.collection(GPS, "listings")) | keys(pipeline.collection(GPS, "closed_listings"))
    result = dg.materialize(
        [deleted_listings_sweep], instance=pipeline.instance, resources=pipeline.resources(), partition_key=GPS
    )
    assert result.success
    meta = result.asset_materializations_for_node("deleted_listings_sweep")[0].metadata
    assert meta["unkeyed_source_records"].value >= len(gps_by_kind(market)["no_key"])
    kept = {s.timeline.key for s in gps_by_kind(market)["key_missing"]}
    assert kept and kept <= keys(pipeline.collection(GPS, "raw_listings"))
    assert stored <= keys(pipeline.collection(GPS, "listings")) | keys(pipeline.collection(GPS, "closed_listings"))
    assert meta["removed"].value == 0


def test_an_envelope_whose_results_is_not_a_list_fails_at_once_naming_the_page(simulator):
    simulator.inject("results_object")
    with SparkClient(simulator.url, DEMO_TOKEN) as client, pytest.raises(SparkProtocolError) as failure:
        list(client.pages(limit=10))
    assert "page 1" in str(failure.value) and "D.Results is dict" in str(failure.value)
    assert client.stats.requests == 1


def test_a_broken_envelope_fails_the_run_without_step_retries(pipeline, simulator):
    simulator.inject("results_object")
    result = dg.materialize(
        CHAIN,
        instance=pipeline.instance,
        resources=pipeline.resources(),
        partition_key=f"{pipeline.market.now.date().isoformat()}|{GPS}",
        raise_on_error=False,
    )
    assert not result.success
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_RESTARTED]
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "D.Results is dict" in str(failure.step_failure_data.error.message)
    assert pipeline.collection(GPS, "raw_listings").count_documents({}) == 0
