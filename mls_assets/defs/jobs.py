"""Jobs: the replication chain of one feed-day partition."""

import dagster as dg

REPLICATION_GROUPS = ("listings", "status", "photos", "crm")

replication_job = dg.define_asset_job(
    "replication_job",
    selection=dg.AssetSelection.groups(*REPLICATION_GROUPS),
    description="The whole chain for a feed-day partition: raw -> flattened -> status "
    "collections + history -> photos and CRM-linked properties.",
)
