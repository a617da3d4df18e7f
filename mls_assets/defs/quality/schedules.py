"""The audits' schedule (`MLS_AUDIT_CRON`, default daily 05:00 UTC, after the nightly syncs)."""

import dagster as dg

from mls_assets.defs.quality.jobs import quality_audit_job
from mls_assets.lib.settings import SETTINGS

quality_audit = dg.ScheduleDefinition(
    name="quality_audit",
    job=quality_audit_job,
    execution_timezone="UTC",
    cron_schedule=SETTINGS.audit_cron,
    description="The whole-collection audits of every enabled feed (unique keys, required fields, one status "
    "collection, expiresAt, photos, CRM links, counts against the source, freshness), daily after the nightly syncs.",
)
