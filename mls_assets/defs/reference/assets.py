"""The reference domain: places shared by every tenant (`shared_cities`,
`shared_neighborhoods`, `shared_schools`) and the market per city and day
(`city_market_daily`), derived from every feed's flattened listings.

They depend on every feed-day partition of `flattened_listings` through partition mappings
(all of them for the places; a day's feeds for that day's figures) and update themselves
after the feeds' runs by declarative automation (`AFTER_FEED_RUNS`, evaluated by
`reference_automation_sensor`). Each rebuilds only the cities whose listings changed since
it last ran.
"""

from datetime import date

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


def _place_spec(name: str, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        name, group_name="reference", kinds={"mongodb", "python"}, description=description,
        metadata={"collection": name, "scope": "shared by every tenant"},
        deps=[dg.AssetDep("flattened_listings", partition_mapping=dg.AllPartitionMapping())],
        automation_condition=AFTER_FEED_RUNS,
    )  # fmt: skip


@dg.multi_asset(
    specs=[
        _place_spec(CITIES, "One document per (state, city) named by any feed's listings: slug, county, centroid "
                    "(GeoJSON, 2dsphere), the MLSs that list it, listings per status; kept inactive when no "
                    "listing names it any more."),
        _place_spec(NEIGHBORHOODS, "Per city, its subdivisions however spelled (casing and spacing variants "
                    "merged), with a centroid and a reference to the city."),
        _place_spec(SCHOOLS, "Elementary, middle and high schools by name, level and district, with the cities "
                    "they serve."),
    ],
)  # fmt: skip
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
    common = {"rebuilt": "every city" if todo.everything else f"{len(todo.cities)} cities",
              "changed_listings": todo.changed_listings, "listings_read": reader.documents_read,
              "unchanged_documents": written.unchanged}  # fmt: skip
    for name, wrote in ((CITIES, written.cities), (NEIGHBORHOODS, written.neighborhoods), (SCHOOLS, written.schools)):
        yield dg.MaterializeResult(asset_key=name, metadata={
            **common, "documents": counts[name], "active": active[name], "written": wrote,
            "dagster/row_count": counts[name]})  # fmt: skip


@dg.asset(
    partitions_def=day_partitions,
    group_name="reference",
    kinds={"mongodb", "python"},
    metadata={"collection": MARKET_DAILY, "scope": "shared by every tenant"},
    deps=[dg.AssetDep("flattened_listings",
                      partition_mapping=dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="day")),
          dg.AssetDep(CITIES)],
    automation_condition=dg.AutomationCondition.in_latest_time_window() & AFTER_FEED_RUNS,
)  # fmt: skip
@fails_clearly
def city_market_daily(context: dg.AssetExecutionContext, mongo: MongoResource, clock: ClockResource):
    """Per city and day: active, pending, new, closed and expired listings, median list and
    close price, median days on market, from every feed (one version per MLS listing).
    Today's partition rebuilds the cities whose listings changed since it last ran; a past
    day (a backfill) is computed whole. Reports the day's totals and, per city, active
    listings and median list price, numbers the UI plots across partitions."""
    database = mongo.get_database()
    day = date.fromisoformat(context.partition_key)
    feeds = [feed.key for feed in read_configs(database)]
    today = day == clock.now().date()
    todo = cities_to_rebuild(database, "city_market_daily", feeds) if today else None
    known = {d["_id"] for d in database[CITIES].find({"active": True}, {"_id": 1})}
    stored = day_rows(database, day)
    reader = ListingsReader(database, feeds)
    if todo is None or todo.everything or (known - set(stored)) - todo.cities:
        by_city = reader.facts(None)  # a past day, a first run, or a day some city lacks
        cities = set(by_city) | set(stored)
    else:
        by_city = reader.facts(todo.spellings)
        cities = todo.cities
    rows = list(write_day(database, by_city, cities, day, clock.now(), stored).values())
    if todo is not None:
        todo.commit(context.run.run_id)
    metadata: dict = {name: sum(r.get(name) or 0 for r in rows) for name in COUNTS}
    metadata |= {"cities": len(rows), "cities_rebuilt": len(cities), "listings_read": reader.documents_read,
                 "dagster/row_count": len(rows)}  # fmt: skip
    for row in sorted(rows, key=lambda r: -(r.get("active") or 0))[:PLOTTED_CITIES]:
        metadata[f"active/{row['cityId']}"] = row.get("active") or 0
        if row.get("medianListPrice") is not None:
            metadata[f"median_list_price/{row['cityId']}"] = float(row["medianListPrice"])
    return dg.MaterializeResult(metadata=metadata)
