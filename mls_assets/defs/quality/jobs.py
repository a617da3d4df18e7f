"""The audit of every enabled feed's whole collections."""

import dagster as dg

from mls_assets.defs.quality.checks import collection_audit

quality_audit_job = dg.define_asset_job(
    "quality_audit_job",
    selection=dg.AssetSelection.assets(collection_audit),  # the asset with its checks
    description="Whole-collection audits of every enabled feed (collection_audit and its checks).",
)
