"""Shared places and market figures from every feed: real definitions, the real server, the
simulator over HTTP (three feeds: two tenants of GPS, one of CRMLS)."""

from collections import Counter
from datetime import timedelta

import dagster as dg

from mls_assets.defs.reference.assets import city_market_daily, shared_places
from mls_assets.lib.reference.listings import MARKET_STATUS, city_id
from mls_assets.lib.reference.names import name_key
from mls_assets.lib.replication.sweep import remove_listings
from mls_assets.lib.tenants import feed_config
from mls_assets_tests.support.chain import FEEDS

PLACES = ("shared_cities", "shared_neighborhoods", "shared_schools")
ONE_FEED_PER_MLS = ("jpsrealtor.gps", "jpsrealtor.crmls")  # otheragent.gps holds the same GPS listings


def sync_all(pipeline, feeds=FEEDS) -> None:
    for feed in feeds:
        pipeline.sync(feed)


def build(pipeline) -> tuple[dict, dict]:
    """The places, then today's figures; the metadata of each."""
    places = dg.materialize([shared_places], instance=pipeline.instance, resources=pipeline.resources())
    day = dg.materialize(
        [city_market_daily],
        instance=pipeline.instance,
        resources=pipeline.resources(),
        partition_key=pipeline.market.now.date().isoformat(),
    )
    assert places.success and day.success
    by_asset = {
        m.asset_key.to_user_string(): {k: v.value for k, v in m.metadata.items()}
        for m in places.asset_materializations_for_node("shared_places")
    }
    [daily] = day.asset_materializations_for_node("city_market_daily")
    return by_asset, {k: v.value for k, v in daily.metadata.items()}


def shared(pipeline, name: str) -> dict[str, dict]:
    return {d["_id"]: d for d in pipeline.database[name].find()}


def direct_counts(pipeline) -> Counter:
    """Listings per (city id, market status), by one MongoDB aggregation per MLS."""
    counts: Counter = Counter()
    for feed in ONE_FEED_PER_MLS:
        rows = pipeline.collection(feed, "flattened_listings").aggregate(
            [
                {
                    "$group": {
                        "_id": {"city": "$city", "state": "$stateOrProvince", "status": "$standardStatus"},
                        "n": {"$sum": 1},
                    }
                }
            ]
        )
        for row in rows:
            status = MARKET_STATUS.get(str(row["_id"]["status"]).lower())
            if status:
                counts[(city_id(row["_id"]["state"], row["_id"]["city"]), status)] += row["n"]
    return counts


def assert_only_facts_left_the_tenants(pipeline) -> None:
    """No shared document holds a listing's field, nor any value that names a listing, an
    address, an agent or a tenant."""
    secrets: set[str] = set()
    for feed in FEEDS:
        for doc in pipeline.collection(feed, "flattened_listings").find():
            secrets.update(
                str(doc[f])
                for f in (
                    "listingKey",
                    "listingId",
                    "listAgentFullName",
                    "unparsedAddress",
                    "listOfficeName",
                    "tenantId",
                    "slug",
                )
                if doc.get(f)
            )
    forbidden_fields = {
        "listingKey",
        "listingId",
        "tenantId",
        "listAgentFullName",
        "ownerName",
        "ownerPhone",
        "ownerEmail",
        "leadStatus",
        "crm_property_ids",
        "unparsedAddress",
        "listPrice",
    }

    def walk(value, path=""):
        if isinstance(value, dict):
            for key, inner in value.items():
                assert key not in forbidden_fields, f"{path}.{key}"
                yield from walk(inner, f"{path}.{key}")
        elif isinstance(value, list):
            for inner in value:
                yield from walk(inner, path)
        else:
            yield path, value

    for name in (*PLACES, "city_market_daily"):
        docs = list(pipeline.database[name].find())
        assert docs, name
        leaked = [(name, path, v) for doc in docs for path, v in walk(doc) if str(v) in secrets]
        assert leaked == []


def test_places_merge_spellings_count_what_a_direct_aggregation_counts_and_hold_only_facts(pipeline):
    sync_all(pipeline)
    metadata, daily = build(pipeline)
    cities = shared(pipeline, "shared_cities")
    assert len(cities) == 20 and all(c["active"] for c in cities.values())  # 10 cities per MLS, each once
    stored = Counter({(cid, status): n for cid, c in cities.items() for status, n in c["listingCounts"].items() if n})
    assert stored == direct_counts(pipeline)  # the two GPS tenants' copies count once
    palm = cities["ca-palm-desert"]
    assert (palm["name"], palm["slug"], palm["county"], palm["mlsIds"]) == (
        "Palm Desert",
        "palm-desert",
        "Riverside",
        ["gps"],
    )
    lng, lat = palm["location"]["coordinates"]
    assert abs(lat - 33.72) < 0.05 and abs(lng + 116.37) < 0.06

    hoods = shared(pipeline, "shared_neighborhoods")
    keys = Counter((h["cityId"], name_key(h["name"])) for h in hoods.values())
    assert keys and max(keys.values()) == 1  # one neighborhood per name, whatever its spellings
    assert any(len(h["variants"]) > 1 for h in hoods.values()), "casing and spacing variants were merged"
    assert all(h["name"] != h["name"].upper() and "  " not in h["name"] and h["name"].strip() for h in hoods.values())
    assert all(h["cityId"] in cities for h in hoods.values())

    schools = shared(pipeline, "shared_schools")
    assert {s["level"] for s in schools.values()} == {"elementary", "middle", "high"}
    assert all(s["cities"] and set(s["cities"]) <= set(cities) and s["district"] for s in schools.values())
    names = [s["name"] for s in schools.values()] + [h["name"] for h in hoods.values()]
    assert not [n for n in names if "*" in n or not n.strip()]  # masked and empty values name nothing

    # today's figures agree with the places' counts; the plot metadata is there
    for row in pipeline.database["city_market_daily"].find():
        city = cities[row["cityId"]]
        assert (row["active"], row["pending"]) == (city["listingCounts"]["active"], city["listingCounts"]["pending"])
    assert daily["active"] == sum(c["listingCounts"]["active"] for c in cities.values())
    assert isinstance(daily["active/ca-palm-desert"], int) and daily["median_list_price/ca-palm-desert"] > 0
    assert metadata["shared_cities"]["documents"] == 20 and metadata["shared_cities"]["rebuilt"] == "every city"

    assert_only_facts_left_the_tenants(pipeline)

    before = {name: shared(pipeline, name) for name in (*PLACES, "city_market_daily")}
    again, _ = build(pipeline)  # nothing changed: nothing is written, nothing moves
    assert all(again[name]["written"] == 0 and again[name]["listings_read"] == 0 for name in PLACES)
    assert {name: shared(pipeline, name) for name in before} == before


def test_an_intraday_change_rebuilds_only_the_cities_it_touched(pipeline, market, simulator):
    sync_all(pipeline, ONE_FEED_PER_MLS)
    build(pipeline)
    everything = sum(pipeline.collection(feed, "flattened_listings").count_documents({}) for feed in ONE_FEED_PER_MLS)
    active = pipeline.collection("jpsrealtor.crmls", "listings").find_one({"standardStatus": "Active"})
    market.advance(timedelta(minutes=1))
    simulator.change(active["listingKey"], price=int(active["listPrice"]) + 5000)
    market.advance(timedelta(minutes=1))
    pipeline.sync("jpsrealtor.crmls")
    before = shared(pipeline, "shared_cities")

    metadata, daily = build(pipeline)
    places = metadata["shared_cities"]
    assert (places["rebuilt"], places["changed_listings"]) == ("1 cities", 1)
    assert places["listings_read"] < everything / 5  # one city's listings, not every feed
    assert daily["cities_rebuilt"] == 1 and daily["listings_read"] == places["listings_read"]
    after = shared(pipeline, "shared_cities")
    changed = city_id(active["stateOrProvince"], active["city"])
    assert {cid for cid in after if after[cid] != before[cid]} <= {changed}
    row = pipeline.database["city_market_daily"].find_one({"cityId": changed})
    assert row["medianListPrice"] is not None


def test_a_city_no_listing_names_any_more_stays_with_its_name_marked_inactive(pipeline, market):
    sync_all(pipeline, ("jpsrealtor.gps", "otheragent.gps"))
    build(pipeline)
    city = shared(pipeline, "shared_cities")["ca-indio"]
    for feed in ("jpsrealtor.gps", "otheragent.gps"):  # the way a deletion removes listings
        gone = {
            d["listingKey"]: market.now for d in pipeline.collection(feed, "flattened_listings").find({"city": "Indio"})
        }
        remove_listings(pipeline.database, feed_config(pipeline.database, feed), gone, market.now, "test")
    metadata, _ = build(pipeline)
    after = shared(pipeline, "shared_cities")["ca-indio"]
    assert (after["name"], after["slug"], after["active"]) == (city["name"], city["slug"], False)
    assert set(after["listingCounts"].values()) == {0}
    assert metadata["shared_cities"]["rebuilt"] == "every city"  # a deletion names no city: all of GPS
    assert pipeline.database["city_market_daily"].find_one({"cityId": "ca-indio"})["active"] == 0


def test_the_feeds_flow_into_the_reference_assets_and_their_runs_request_them(pipeline):
    from dagster._core.test_utils import create_run_for_test

    from mls_assets.definitions import defs
    from mls_assets.defs.reference.sensors import shared_places_sensor

    definitions = defs()
    graph = definitions.resolve_asset_graph()
    for key in ("shared_cities", "shared_neighborhoods", "shared_schools", "city_market_daily"):
        assert dg.AssetKey("flattened_listings") in graph.get(dg.AssetKey(key)).parent_keys
    selection = dg.AssetSelection.groups("reference")
    at = pipeline.market.now + timedelta(minutes=5)  # the evaluation happens on the market's day
    quiet = dg.evaluate_automation_conditions(
        defs=definitions, instance=pipeline.instance, asset_selection=selection, evaluation_time=at
    )
    assert quiet.total_requested == 0  # no feed has run yet
    with dg.build_sensor_context(instance=pipeline.instance) as context:
        first = shared_places_sensor(context)
    assert not first.run_requests and first.cursor
    pipeline.sync("jpsrealtor.gps")
    after = dg.evaluate_automation_conditions(
        defs=definitions, instance=pipeline.instance, asset_selection=selection, cursor=quiet.cursor, evaluation_time=at
    )
    requested = {r.key.to_user_string(): r for r in after.results if r.true_subset.size}
    assert set(requested) == {"city_market_daily"} and requested["city_market_daily"].true_subset.size == 1  # today's
    create_run_for_test(
        pipeline.instance, job_name="replication_job", status=dg.DagsterRunStatus.SUCCESS
    )  # the daemon's run
    with dg.build_sensor_context(instance=pipeline.instance, cursor="0") as context:
        places = shared_places_sensor(context)  # a feed's run succeeded since: the places are rebuilt
    assert len(places.run_requests) == 1
    materialized = dg.materialize([shared_places], instance=pipeline.instance, resources=pipeline.resources())
    assert materialized.success
    with dg.build_sensor_context(instance=pipeline.instance, cursor=places.cursor) as context:
        assert isinstance(shared_places_sensor(context), dg.SkipReason)  # nothing ran since: nothing to rebuild


def test_a_window_of_days_is_one_run_each_day_with_its_own_figures(pipeline):
    """A backfill of the market (the window a plot spans) runs once over the window, reads the
    listings once, and gives each day the figures a run of that day alone gives it."""
    from mls_assets.lib.reference.market import day_start

    sync_all(pipeline, ONE_FEED_PER_MLS)
    assert dg.materialize([shared_places], instance=pipeline.instance, resources=pipeline.resources()).success
    today = pipeline.market.now.date()
    window = [today - timedelta(days=n) for n in range(29, -1, -1)]
    tags = {
        "dagster/asset_partition_range_start": window[0].isoformat(),
        "dagster/asset_partition_range_end": window[-1].isoformat(),
    }
    result = dg.materialize([city_market_daily], instance=pipeline.instance, resources=pipeline.resources(), tags=tags)
    assert result.success
    by_day = {
        m.partition: {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node("city_market_daily")
    }
    assert sorted(by_day) == [d.isoformat() for d in window]
    listings = sum(pipeline.collection(f, "flattened_listings").count_documents({}) for f in ONE_FEED_PER_MLS)
    for day in window:
        rows = list(pipeline.database["city_market_daily"].find({"day": day_start(day)}))
        figures = by_day[day.isoformat()]
        assert (figures["cities"], figures["active"], figures["new"]) == (
            len(rows),
            sum(r["active"] for r in rows),
            sum(r["new"] for r in rows),
        )
        assert figures["run_listings_read"] == listings  # the window read every listing once
    assert len({by_day[d.isoformat()]["active"] for d in window}) > 1, "each day has its own figures"

    past = window[10]
    alone = dg.materialize(
        [city_market_daily], instance=pipeline.instance, resources=pipeline.resources(), partition_key=past.isoformat()
    )
    [single] = alone.asset_materializations_for_node("city_market_daily")
    alone_figures = {k: v.value for k, v in single.metadata.items()}
    assert {k: v for k, v in alone_figures.items() if "/" in k or k in ("active", "new", "closed", "pending")} == {
        k: v for k, v in by_day[past.isoformat()].items() if "/" in k or k in ("active", "new", "closed", "pending")
    }
