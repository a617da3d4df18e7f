"""The replication chain of one feed-day partition, with the checks that run with it."""

import dagster as dg

REPLICATION_GROUPS = ("listings", "status", "photos", "crm")

replication_job = dg.define_asset_job(
    "replication_job",
    selection=dg.AssetSelection.groups(*REPLICATION_GROUPS),
    description="The whole chain for a feed-day partition: raw -> flattened -> status collections + history -> "
    "photos and CRM-linked properties, with the checks of what the run wrote.",
)

# What a data engineer backfills for lead generation: a date window of one feed's expired
# listings with everything they need (the raw and flattened listings and the status
# collections they are routed with) and their photos. Pick it under Jobs, choose the feed
# and the days: it runs as one run per feed and queues behind that feed's other runs.
expired_listings_backfill = dg.define_asset_job(
    "expired_listings_backfill",
    selection=dg.AssetSelection.assets("expired_listing_photos").upstream().required_multi_asset_neighbors(),
    description="Backfill a date window of one feed's expired listings and their photos (+expired_listing_photos): "
    "raw -> flattened -> status collections + history -> photos, with the run's checks. Choose one feed and the days.",
)
