"""Jobs for the reference assets, for a hand-started rebuild or a backfill of past days
(their automation condition keeps today's up to date)."""

import dagster as dg

from mls_assets.defs.partitions import day_partitions

shared_places_job = dg.define_asset_job(
    "shared_places_job",
    selection=dg.AssetSelection.assets("shared_cities", "shared_neighborhoods", "shared_schools"),
    description="Cities, neighborhoods and schools from every feed's listings (only what changed since the last run).",
)
city_market_daily_job = dg.define_asset_job(
    "city_market_daily_job",
    selection=dg.AssetSelection.assets("city_market_daily"),
    partitions_def=day_partitions,
    description="The market per city for a day (backfill past days from the UI).",
)
