"""The deletion sweep of one feed."""

import dagster as dg

from mls_assets.defs.maintenance.assets import deleted_listings_sweep

deletion_sweep_job = dg.define_asset_job("deletion_sweep_job", selection=[deleted_listings_sweep])
