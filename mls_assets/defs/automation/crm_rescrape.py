"""Hourly re-scrape of CRM-active properties (seed 001), cron from
`ACTIVE_PROPERTIES_SCRAPING_FREQUENCY` (default every hour).

Requests today's partition of every feed that has CRM properties with `crm_status:
"active"` linked to its listings. Until CRM links exist (the CRM issue), it has nothing to
do and says so.
"""

import os

import dagster as dg

from mls_assets.defs.automation.run_requests import chain_run
from mls_assets.defs.jobs import replication_job
from mls_assets.defs.resources import MongoResource
from mls_assets.lib.tenants import read_configs

RESCRAPE_CRON = os.environ.get("ACTIVE_PROPERTIES_SCRAPING_FREQUENCY", "0 * * * *")


def feeds_with_active_links(database) -> list[str]:
    feeds = set()
    tenants = {f.tenant_id for f in read_configs(database) if f.enabled}
    for tenant in tenants:
        collection = database[f"{tenant}_crm_properties"]
        query = {"crm_status": "active", "mls_property_id": {"$exists": True}}
        for mls in collection.distinct("mls_feed", query):
            feeds.add(f"{tenant}.{mls}")
    return sorted(feeds)


@dg.schedule(cron_schedule=RESCRAPE_CRON, job=replication_job, execution_timezone="UTC")
def crm_active_rescrape(context: dg.ScheduleEvaluationContext, mongo: MongoResource):
    """Re-pulls the feeds whose listings CRM-active properties link to."""
    when = context.scheduled_execution_time
    feeds = feeds_with_active_links(mongo.get_database())
    if not feeds:
        return dg.SkipReason("no CRM-active properties are linked to MLS listings yet: nothing to re-scrape")
    return [chain_run(feed, when.date(), "crm-rescrape", f"crm-rescrape|{feed}|{when.isoformat()}") for feed in feeds]
