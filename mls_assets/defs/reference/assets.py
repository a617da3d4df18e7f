"""The reference domain: places shared by every tenant (`shared_cities`,
`shared_neighborhoods`, `shared_schools`) and the market per city and day
(`city_market_daily`), derived from every feed's flattened listings.

`city_market_daily` depends on a day's partitions of every feed and updates itself after
the feeds' runs by declarative automation (`AFTER_FEED_RUNS`, evaluated by
`reference_automation_sensor`); the places are started by `shared_places_sensor` after feed
runs succeed (their dependency on `flattened_listings` is lineage only). Each rebuilds only
the cities whose listings changed since it last ran.
"""

from datetime import date, timedelta

import dagster as dg

from mls_assets.defs.failures import fails_clearly
from mls_assets.defs.partitions import day_partitions
from mls_assets.defs.resources import ClockResource, MongoResource
from mls_assets.lib.reference.changes import cities_to_rebuild
from mls_assets.lib.reference.listings import ListingsReader
from mls_assets.lib.reference.market import COUNTS, MARKET_DAILY, day_rows, write_day
from mls_assets.lib.reference.places import CITIES, NEIGHBORHOODS, SCHOOLS, write_places
from mls_assets.lib.tenants import read_configs

# Updated after any feed's listings changed; never twice at once. (`eager()` would also wait
# for every upstream partition to exist, which day x feed partitions never all do.)
AFTER_FEED_RUNS = dg.AutomationCondition.any_deps_updated().since_last_handled() & ~dg.AutomationCondition.in_progress()
PLOTTED_CITIES = 50  # per-city plot metadata for the largest cities
# Shared by every tenant, so one policy per asset is the right grain (unlike the feed assets,
# whose staleness is per feed: `feed_is_fresh`). They follow feed runs, which happen at least
# nightly for every feed: a day and a bit without an update means the fleet's runs stopped.
UPDATED_AFTER_FEED_RUNS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=26), warn_window=timedelta(hours=6)
)


def _place_spec(name: str, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        name,
        group_name="reference",
        kinds={"mongodb", "python"},
        description=description,
        metadata={"collection": name, "scope": "shared by every tenant"},
        freshness_policy=UPDATED_AFTER_FEED_RUNS,
        # Lineage only (no partition of it is read through Dagster): `shared_places_sensor`
        # starts them after feed runs. An all-partitions dependency made every run list each
        # day x feed key (Dagster's data-version cache does, before it gives up on more than
        # 100), and the last partition is found the same way: 1.41 million keys, 1.2 GB and
        # 16-31 s a run at 2,000 feeds; with none mapped, 184 MiB and 7 s.
        deps=[dg.AssetDep("flattened_listings", partition_mapping=dg.SpecificPartitionsPartitionMapping([]))],
    )


@dg.multi_asset(
    specs=[
        _place_spec(
            CITIES,
            "One document per (state, city) named by any feed's listings: slug, county, centroid "
            "(GeoJSON, 2dsphere), the MLSs that list it, listings per status; kept inactive when no "
            "listing names it any more.",
        ),
        _place_spec(
            NEIGHBORHOODS,
            "Per city, its subdivisions however spelled (casing and spacing variants "
            "merged), with a centroid and a reference to the city.",
        ),
        _place_spec(
            SCHOOLS, "Elementary, middle and high schools by name, level and district, with the cities they serve."
        ),
    ],
)
@fails_clearly
def shared_places(context: dg.AssetExecutionContext, mongo: MongoResource, clock: ClockResource):
    """Rebuilds the places of the cities whose listings changed since the last run (all on the
    first), from every feed, one version per MLS listing; writes only what changed."""
    database = mongo.get_database()
    feeds = [feed.key for feed in read_configs(database)]
    todo = cities_to_rebuild(database, "shared_places", feeds)
    reader = ListingsReader(database, feeds)
    by_city = reader.facts(None if todo.everything else todo.spellings)
    if todo.everything:  # also the cities no listing names any more
        affected = set(by_city) | {d["_id"] for d in database[CITIES].find({}, {"_id": 1})}
    else:
        affected = todo.cities
    written = write_places(database, by_city, affected, clock.now())
    todo.commit(context.run.run_id)
    counts = {name: database[name].count_documents({}) for name in (CITIES, NEIGHBORHOODS, SCHOOLS)}
    active = {name: database[name].count_documents({"active": True}) for name in (CITIES, NEIGHBORHOODS, SCHOOLS)}
    common = {
        "rebuilt": "every city" if todo.everything else f"{len(todo.cities)} cities",
        "changed_listings": todo.changed_listings,
        "listings_read": reader.documents_read,
        "unchanged_documents": written.unchanged,
    }
    for name, wrote in ((CITIES, written.cities), (NEIGHBORHOODS, written.neighborhoods), (SCHOOLS, written.schools)):
        yield dg.MaterializeResult(
            asset_key=name,
            metadata={
                **common,
                "documents": counts[name],
                "active": active[name],
                "written": wrote,
                "dagster/row_count": counts[name],
            },
        )


@dg.asset(
    partitions_def=day_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="reference",
    kinds={"mongodb", "python"},
    metadata={"collection": MARKET_DAILY, "scope": "shared by every tenant"},
    freshness_policy=UPDATED_AFTER_FEED_RUNS,
    deps=[
        dg.AssetDep(
            "flattened_listings",
            partition_mapping=dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="day"),
        ),
        dg.AssetDep(CITIES),
    ],
    automation_condition=dg.AutomationCondition.in_latest_time_window() & AFTER_FEED_RUNS,
)
@fails_clearly
def city_market_daily(context: dg.AssetExecutionContext, mongo: MongoResource, clock: ClockResource):
    """Per city and day: active, pending, new, closed and expired listings, median list and
    close price, median days on market, from every feed (one version per MLS listing).
    Today's partition rebuilds the cities whose listings changed since it last ran; past days
    (a backfill, one run for the whole window) are computed whole from one read of the
    listings. Each day reports its totals and, per city, active listings and median list
    price: numbers the UI plots across partitions."""
    database = mongo.get_database()
    days = [date.fromisoformat(key) for key in context.partition_keys]
    feeds = [feed.key for feed in read_configs(database)]
    reader = ListingsReader(database, feeds)
    known = {d["_id"] for d in database[CITIES].find({"active": True}, {"_id": 1})}
    today = clock.now().date()
    by_city_whole = None  # every listing's facts, read once for the window's past days
    for day in days:
        stored = day_rows(database, day)
        todo = cities_to_rebuild(database, "city_market_daily", feeds) if day == today else None
        if todo is None or todo.everything or (known - set(stored)) - todo.cities:
            if by_city_whole is None:  # a past day, a first run, or a day some city lacks
                by_city_whole = reader.facts(None)
            by_city, cities = by_city_whole, set(by_city_whole) | set(stored)
        else:
            by_city, cities = reader.facts(todo.spellings), todo.cities
        rows = list(write_day(database, by_city, cities, day, clock.now(), stored).values())
        if todo is not None:
            todo.commit(context.run.run_id)
        figures = _day_figures(rows, len(cities), reader.documents_read)
        if len(days) == 1:
            return dg.MaterializeResult(metadata=figures)
        context.add_asset_metadata(figures, partition_key=day.isoformat())
    return dg.MaterializeResult(metadata={"run_partitions": len(days), "run_listings_read": reader.documents_read})


def _day_figures(rows: list[dict], rebuilt: int, listings_read: int) -> dict:
    """A day's totals and its largest cities' active listings and median list price."""
    metadata: dict = {name: sum(r.get(name) or 0 for r in rows) for name in COUNTS}
    metadata |= {
        "cities": len(rows),
        "cities_rebuilt": rebuilt,
        "listings_read": listings_read,
        "dagster/row_count": len(rows),
    }
    for row in sorted(rows, key=lambda r: -(r.get("active") or 0))[:PLOTTED_CITIES]:
        metadata[f"active/{row['cityId']}"] = row.get("active") or 0
        if row.get("medianListPrice") is not None:
            metadata[f"median_list_price/{row['cityId']}"] = float(row["medianListPrice"])
    return metadata
