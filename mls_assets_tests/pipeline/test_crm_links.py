"""CRM-linked properties against the real server and the simulator."""

import os
import subprocess
import sys
from datetime import timedelta

import dagster as dg
import pytest

from mls_assets.defs.crm.sensors import crm_link_sensor
from mls_assets.lib import crm
from mls_assets_tests.pipeline.test_replication_chain import GPS, first_move, gps_states, is_bad


def add_property(pipeline, property_id, **fields):
    crm.properties(pipeline.database, "jpsrealtor").insert_one(
        {"_id": property_id, "crm_status": "active", "notes": "call the owner", **fields}
    )


def listing_doc(pipeline, key):
    for name in ("listings", "closed_listings", "expired_listings"):
        doc = pipeline.collection(GPS, name).find_one({"listingKey": key})
        if doc:
            return name, doc
    return None, None


def test_link_and_unlink_keep_both_sides_consistent(pipeline):
    pipeline.sync(GPS)
    key = pipeline.collection(GPS, "listings").find_one()["listingKey"]
    add_property(pipeline, "p1")
    shown = crm.link(pipeline.database, "jpsrealtor", "p1", "gps", key)
    assert shown["property"]["mls_property_id"] == key and shown["listing"]["crm_property_ids"] == ["p1"]
    assert shown["property"]["price"] == shown["listing"]["listPrice"]
    assert shown["property"]["notes"] == "call the owner" and shown["property"]["crm_status"] == "active"

    other = pipeline.collection(GPS, "listings").find({"listingKey": {"$ne": key}}).limit(1)[0]["listingKey"]
    crm.link(pipeline.database, "jpsrealtor", "p1", "gps", other)  # relinking moves the link
    assert listing_doc(pipeline, key)[1]["crm_property_ids"] == []
    assert listing_doc(pipeline, other)[1]["crm_property_ids"] == ["p1"]

    crm.unlink(pipeline.database, "jpsrealtor", "p1")
    assert listing_doc(pipeline, other)[1]["crm_property_ids"] == []
    assert "mls_property_id" not in crm.show(pipeline.database, "jpsrealtor", "p1")["property"]
    with pytest.raises(crm.CrmError, match="no CRM property 'nope'"):
        crm.link(pipeline.database, "jpsrealtor", "nope", "gps", key)
    with pytest.raises(crm.CrmError, match="no listing 'NOT-A-KEY'"):
        crm.link(pipeline.database, "jpsrealtor", "p1", "gps", "NOT-A-KEY")


def crm_metadata(result):
    event = next(
        e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "crm_linked_properties"
    )
    return {k: v.value for k, v in event.materialization.metadata.items()}


@pytest.mark.parametrize("changed_many", [False, True], ids=["looked up", "every link of the feed at once"])
def test_a_price_change_reaches_every_linked_property_and_keeps_crm_fields(pipeline, market, monkeypatch, changed_many):
    import mls_assets.defs.crm.assets as crm_assets

    monkeypatch.setattr(crm_assets, "SCAN_ABOVE", 0 if changed_many else 10_000)
    pipeline.sync(GPS)
    key = pipeline.collection(GPS, "listings").find_one()["listingKey"]
    for pid in ("p1", "p2"):
        add_property(pipeline, pid, owner="Ann", crm_status="active" if pid == "p1" else "archived")
        crm.link(pipeline.database, "jpsrealtor", pid, "gps", key)
    timeline = next(s.timeline for s in gps_states(market) if s.timeline.key == key)
    timeline.times.append(market._clock + 600)
    timeline.events.append(("price", 99_000))
    market._state_cache = None
    market.advance(timedelta(hours=1))

    result = pipeline.sync(GPS)
    assert crm_metadata(result)["properties_updated"] == 2
    for pid, status in (("p1", "active"), ("p2", "archived")):
        prop = crm.show(pipeline.database, "jpsrealtor", pid)["property"]
        assert prop["price"] == 99_000.0
        assert (prop["owner"], prop["crm_status"], prop["notes"]) == ("Ann", status, "call the owner")

    before = {p["_id"]: p["mlsLastSyncedAt"] for p in crm.properties(pipeline.database, "jpsrealtor").find()}
    again = pipeline.sync(GPS)  # nothing changed at the source
    assert crm_metadata(again)["properties_updated"] == 0
    after = {p["_id"]: p["mlsLastSyncedAt"] for p in crm.properties(pipeline.database, "jpsrealtor").find()}
    assert after == before  # zero CRM writes


def test_a_listing_moving_to_closed_updates_the_crm_status_once(pipeline, market):
    pipeline.sync(GPS)
    candidates = [
        s for s in gps_states(market) if s.status in ("Pending", "Active Under Contract") and not is_bad(market, s)
    ]
    state, at, target = first_move(market, candidates, ("Closed",))
    add_property(pipeline, "p9")
    crm.link(pipeline.database, "jpsrealtor", "p9", "gps", state.timeline.key)
    market.set_clock(market.now + timedelta(seconds=at - market._clock + 60))
    pipeline.sync(GPS)
    pipeline.sync(GPS)

    prop = crm.show(pipeline.database, "jpsrealtor", "p9")["property"]
    assert (prop["mls_status"], prop["mls_status_class"]) == ("Closed", "closed")
    assert [(e["from"], e["to"]) for e in prop["mls_status_history"]] == [(state.status, "Closed")]
    name, listing = listing_doc(pipeline, state.timeline.key)
    assert name == "closed_listings" and listing["crm_property_ids"] == ["p9"]  # the link moved with it


def test_the_link_sensor_requests_the_feeds_with_new_links(pipeline):
    pipeline.sync(GPS)
    key = pipeline.collection(GPS, "listings").find_one()["listingKey"]
    add_property(pipeline, "p1")
    crm.link(pipeline.database, "jpsrealtor", "p1", "gps", key)
    with dg.build_sensor_context(instance=pipeline.instance, resources=pipeline.resources()) as context:
        result = crm_link_sensor(context)
    (request,) = result.run_requests
    assert request.partition_key.endswith("|jpsrealtor.gps") and request.tags["mls/feed"] == GPS
    assert request.run_key.startswith("crm-link|jpsrealtor.gps|")
    with dg.build_sensor_context(
        instance=pipeline.instance, resources=pipeline.resources(), cursor=result.cursor
    ) as context:
        again = crm_link_sensor(context)
    assert not again.run_requests


def test_the_crm_commands_print_clear_errors(pipeline, mongo_uri):
    env = {**os.environ, "MONGODB_URI": mongo_uri, "MONGODB_DATABASE": pipeline.database.name}
    run = lambda *args: subprocess.run(
        [sys.executable, "-m", "mls_assets.cli", "crm", *args], capture_output=True, text=True, env=env, timeout=120
    )
    missing = run("show", "--tenant", "jpsrealtor", "--property", "nope")
    assert missing.returncode == 2 and "error: no CRM property 'nope'" in missing.stderr
    add_property(pipeline, "p1")
    unknown = run("link", "--tenant", "jpsrealtor", "--property", "p1", "--mls", "gps", "--listing", "NOT-A-KEY")
    assert unknown.returncode == 2 and "no listing 'NOT-A-KEY'" in unknown.stderr
    shown = run("show", "--tenant", "jpsrealtor", "--property", "p1")
    assert shown.returncode == 0 and '"crm_status": "active"' in shown.stdout


def test_the_rescrape_pulls_exactly_the_linked_listings(pipeline, market):
    from mls_assets.defs.partitions import feed_day_key
    from mls_assets_tests.support.chain import CHAIN

    pipeline.sync(GPS)
    key = pipeline.collection(GPS, "listings").find_one()["listingKey"]
    add_property(pipeline, "p1")
    crm.link(pipeline.database, "jpsrealtor", "p1", "gps", key)
    timeline = next(s.timeline for s in gps_states(market) if s.timeline.key == key)
    timeline.times.append(market._clock + 600)
    timeline.events.append(("price", 77_000))
    market._state_cache = None
    market.advance(timedelta(hours=1))

    result = dg.materialize(
        CHAIN,
        instance=pipeline.instance,
        resources=pipeline.resources(),
        partition_key=str(feed_day_key(GPS, market.now.date().isoformat())),
        run_config={"ops": {"raw_listings": {"config": {"listing_keys": [key]}}}},
    )
    raw = next(e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "raw_listings")
    assert raw.materialization.metadata["pulled_in_window"].value == 1
    assert crm.show(pipeline.database, "jpsrealtor", "p1")["property"]["price"] == 77_000.0
