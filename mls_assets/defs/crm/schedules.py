"""Hourly re-scrape of CRM-active properties, cron from
`ACTIVE_PROPERTIES_SCRAPING_FREQUENCY` (default every hour).

For each feed, re-pulls exactly the listings that properties with `crm_status: "active"`
link to (raw_listings' `listing_keys` config), through the whole chain, so their CRM
properties are updated. With no such links it has nothing to do and says so.
"""

import os

import dagster as dg

from mls_assets.defs.automation.jobs import replication_job
from mls_assets.defs.automation.run_requests import chain_run
from mls_assets.defs.instigators import described
from mls_assets.defs.resources import MongoResource
from mls_assets.lib import crm
from mls_assets.lib.tenants import read_configs

RESCRAPE_CRON = os.environ.get("ACTIVE_PROPERTIES_SCRAPING_FREQUENCY", "0 * * * *")


def active_links(database) -> dict[str, list[str]]:
    """`{feed: [listing keys]}` linked from CRM-active properties of enabled feeds."""
    enabled = {f.key: f for f in read_configs(database) if f.enabled}
    links: dict[str, set[str]] = {}
    for tenant in sorted({key.tenant for key in enabled}):
        query = {"crm_status": "active", "mls_property_id": {"$exists": True}}
        for prop in crm.properties(database, tenant).find(query, {"mls_feed": 1, "mls_property_id": 1}):
            feed = next((key for key in enabled if key.tenant == tenant and key.mls == prop.get("mls_feed")), None)
            if feed is not None:
                links.setdefault(str(feed), set()).add(prop["mls_property_id"])
    return {feed: sorted(keys) for feed, keys in sorted(links.items())}


@described(dg.schedule, cron_schedule=RESCRAPE_CRON, job=replication_job, execution_timezone="UTC")
def crm_active_rescrape(context: dg.ScheduleEvaluationContext, mongo: MongoResource):
    """Re-pulls the feeds whose listings CRM-active properties link to."""
    when = context.scheduled_execution_time
    links = active_links(mongo.get_database())
    if not links:
        return dg.SkipReason("no CRM-active properties are linked to MLS listings yet: nothing to re-scrape")
    return [
        chain_run(
            feed,
            when.date(),
            "crm-rescrape",
            f"crm-rescrape|{feed}|{when.isoformat()}",
            run_config={"ops": {"raw_listings": {"config": {"listing_keys": keys}}}},
        )
        for feed, keys in links.items()
    ]
