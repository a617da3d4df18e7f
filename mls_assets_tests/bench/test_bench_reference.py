"""`make bench` (reference data): the shared places and today's market figures built from
50,000 listings over four feeds (two tenants each of GPS and CRMLS), side by side in one
run on one fresh disk-backed server with one MongoDB aggregation pipeline that counts the
same thing (listings per city and status, one version per MLS listing, `$unionWith` over
the four collections); then the incremental update after 1% of the listings changed, and a
run with nothing to do. `BENCH_REFERENCE_LISTINGS` sets the size."""

import os
import time
from collections import Counter
from datetime import UTC, datetime

import dagster as dg
import pytest

from mls_assets.defs.reference.assets import city_market_daily, shared_places
from mls_assets.defs.resources import ClockResource, MongoResource
from mls_assets.lib.catalogue import FLATTENED, ensure_feed_collections
from mls_assets.lib.reference.listings import MARKET_STATUS, city_id
from mls_assets.lib.store.changes import FeedSequence
from mls_assets.lib.store.client import get_client
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.store.writes import CollectionWriter
from mls_assets.lib.tenants import FeedConfig, sync_configs
from mls_assets.lib.transform.batch import transform_record
from mls_assets.simulator import CRMLS_MLS_ID, GPS_MLS_ID, Market
from mls_assets_tests.bench.test_bench_pipeline import Server

pytestmark = pytest.mark.bench
ANCHOR = datetime(2026, 6, 1, 12, tzinfo=UTC)
TOTAL = int(os.environ.get("BENCH_REFERENCE_LISTINGS", "50000"))
FEEDS = {"alpha.gps": GPS_MLS_ID, "beta.gps": GPS_MLS_ID, "alpha.crmls": CRMLS_MLS_ID, "beta.crmls": CRMLS_MLS_ID}

AGGREGATION = [
    {
        "$project": {
            "_id": 0,
            "mlsProvider": 1,
            "listingKey": 1,
            "city": 1,
            "stateOrProvince": 1,
            "standardStatus": 1,
            "modificationTimestamp": 1,
        }
    },
    {"$sort": {"modificationTimestamp": -1}},
    {
        "$group": {
            "_id": {"mls": "$mlsProvider", "key": "$listingKey"},
            "city": {"$first": "$city"},
            "state": {"$first": "$stateOrProvince"},
            "status": {"$first": "$standardStatus"},
        }
    },
    {"$group": {"_id": {"city": "$city", "state": "$state", "status": "$status"}, "n": {"$sum": 1}}},
]


def load_feeds(database, market: Market) -> None:
    """Every feed's flattened listings, written by the pipeline's own writer (with the change
    sequence the reference assets read)."""
    configs = []
    for feed, mls_id in FEEDS.items():
        key = FeedKey.parse(feed)
        configs.append(FeedConfig(tenant_id=key.tenant, mls=key.mls, mls_id=mls_id))
        ensure_feed_collections(database, key)
        identity = configs[-1]
        docs = (
            transform_record(market.record(s, True), identity, market.now).listing
            for s in market.states()
            if s.timeline.mls_id == mls_id
        )
        CollectionWriter(
            database[FLATTENED.collection_name(key)], FLATTENED, sequence=FeedSequence(database, key), run_id="load"
        ).write(d for d in docs if d is not None)
    sync_configs(database, configs)


def change_prices(database, count: int, feeds=tuple(FEEDS), where: dict | None = None) -> int:
    """`count` stored listings change price, spread over `feeds`, written as a run would."""
    changed = 0
    for feed in feeds:
        key = FeedKey.parse(feed)
        collection = database[FLATTENED.collection_name(key)]
        docs = list(collection.find(where or {}, {"_id": 0}).limit(count // len(feeds)))
        for doc in docs:
            doc["listPrice"] = round((doc.get("listPrice") or 100_000) * 0.97)
            doc["contentHash"] = f"{doc['contentHash']}-changed"
        changed += (
            CollectionWriter(collection, FLATTENED, sequence=FeedSequence(database, key), run_id="change")
            .write(docs)
            .written
        )
    return changed


def build(instance, resources, day: str) -> tuple[float, dict]:
    started = time.perf_counter()
    places = dg.materialize([shared_places], instance=instance, resources=resources)
    daily = dg.materialize([city_market_daily], instance=instance, resources=resources, partition_key=day)
    seconds = time.perf_counter() - started
    assert places.success and daily.success
    [cities] = [
        m for m in places.asset_materializations_for_node("shared_places") if m.asset_key.path == ["shared_cities"]
    ]
    return seconds, {
        "listings_read": cities.metadata["listings_read"].value,
        "written": sum(m.metadata["written"].value for m in places.asset_materializations_for_node("shared_places")),
    }


def test_reference_data_beside_one_aggregation_pipeline(tmp_path):
    market = Market(listings=TOTAL // len(FEEDS), seed=9, anchor=ANCHOR, mls_ids=(GPS_MLS_ID, CRMLS_MLS_ID))
    server = Server(tmp_path / "db")
    try:
        database = get_client(server.uri)["bench"]
        started = time.perf_counter()
        load_feeds(database, market)
        documents = sum(database[FLATTENED.collection_name(FeedKey.parse(f))].count_documents({}) for f in FEEDS)
        print(
            f"\nloaded {documents} flattened listings over {len(FEEDS)} feeds in {time.perf_counter() - started:.1f} s"
        )
        resources = {
            "mongo": MongoResource(uri=server.uri, database="bench"),
            "clock": ClockResource(fixed_now=market.now.isoformat()),
        }
        day = market.now.date().isoformat()
        collections = [FLATTENED.collection_name(FeedKey.parse(f)) for f in FEEDS]

        started = time.perf_counter()
        union = [{"$unionWith": {"coll": name}} for name in collections[1:]]
        rows = list(database[collections[0]].aggregate(union + AGGREGATION, allowDiskUse=True))
        aggregation_s = time.perf_counter() - started
        direct = Counter()
        for row in rows:
            status = MARKET_STATUS.get(str(row["_id"]["status"]).lower())
            if status:
                direct[(city_id(row["_id"]["state"], row["_id"]["city"]), status)] += row["n"]

        (tmp_path / "dagster_home").mkdir()
        with dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance:
            full_s, full = build(instance, resources, day)
            ours = Counter(
                {(c["_id"], s): n for c in database["shared_cities"].find() for s, n in c["listingCounts"].items() if n}
            )
            assert ours == direct  # the same counts
            changed = change_prices(database, documents // 100)
            incremental_s, incremental = build(instance, resources, day)
            in_one_city = change_prices(database, 20, feeds=("alpha.gps",), where={"city": "Palm Desert"})
            city_s, city = build(instance, resources, day)
            nothing_s, nothing = build(instance, resources, day)

        ratio = full_s / aggregation_s
        print(f"\n{'contender':<42}{'seconds':>9}{'listings read':>15}{'written':>9}")
        print(f"{'one aggregation pipeline (city x status)':<42}{aggregation_s:>9.2f}{documents:>15}{'-':>9}")
        print(
            f"{'reference assets, full build (all four)':<42}{full_s:>9.2f}{full['listings_read']:>15}"
            f"{full['written']:>9}"
        )
        print(
            f"{f'incremental, {changed} listings changed (1%)':<42}{incremental_s:>9.2f}"
            f"{incremental['listings_read']:>15}{incremental['written']:>9}"
        )
        print(
            f"{f'{in_one_city} listings changed in one city':<42}{city_s:>9.2f}{city['listings_read']:>15}"
            f"{city['written']:>9}"
        )
        print(f"{'nothing changed':<42}{nothing_s:>9.2f}{nothing['listings_read']:>15}{nothing['written']:>9}")
        print(
            f"full / aggregation: {ratio:.2f}x (goal <= 2x); incremental / full: {incremental_s / full_s:.0%}, "
            f"reading {incremental['listings_read'] / documents:.0%} of the listings (1% spread over all feeds "
            f"touches every city: one scan); one city's changes read {city['listings_read'] / documents:.1%}"
        )
        assert nothing["listings_read"] == 0 and nothing["written"] == 0
    finally:
        server.stop()
