"""The replication chain of one feed-day partition, with the checks that run with it."""

import dagster as dg

from mls_assets.defs.quality.checks import AUDIT_CHECKS

REPLICATION_GROUPS = ("listings", "status", "photos", "crm")

replication_job = dg.define_asset_job(
    "replication_job",
    selection=dg.AssetSelection.groups(*REPLICATION_GROUPS) - dg.AssetSelection.checks(*AUDIT_CHECKS),
    description="The whole chain for a feed-day partition: raw -> flattened -> status collections + history -> "
    "photos and CRM-linked properties, with the checks of what the run wrote.",
)
