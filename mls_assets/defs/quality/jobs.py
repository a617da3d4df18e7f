"""The audit of every enabled feed's whole collections."""

import dagster as dg

from mls_assets.defs.quality.checks import AUDIT_CHECKS

quality_audit_job = dg.define_asset_job("quality_audit_job", selection=dg.AssetSelection.checks(*AUDIT_CHECKS),
                                        description="Whole-collection audits of every enabled feed.")  # fmt: skip
