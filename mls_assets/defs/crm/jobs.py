"""The CRM sync of a feed: `crm_linked_properties` alone (after new links)."""

import dagster as dg

from mls_assets.defs.crm.assets import crm_linked_properties

crm_sync_job = dg.define_asset_job("crm_sync_job", selection=[crm_linked_properties])
