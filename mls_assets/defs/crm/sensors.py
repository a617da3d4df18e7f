"""`crm_link_sensor`: new CRM links request the CRM sync of their feed's today partition."""

from collections import defaultdict
from datetime import UTC, datetime

import dagster as dg

from mls_assets.defs.automation.run_requests import FEED_TAG, TRIGGER_TAG
from mls_assets.defs.crm.jobs import crm_sync_job
from mls_assets.defs.instigators import described
from mls_assets.defs.partitions import feed_day_key
from mls_assets.defs.resources import MongoResource
from mls_assets.lib import crm
from mls_assets.lib.tenants import read_configs


@described(dg.sensor, job=crm_sync_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def crm_link_sensor(context: dg.SensorEvaluationContext, mongo: MongoResource):
    """New links since the cursor request the CRM sync of their feed's today partition."""
    database = mongo.get_database()
    after = datetime.fromisoformat(context.cursor) if context.cursor else datetime(1970, 1, 1, tzinfo=UTC)
    newest = after
    feeds: dict[str, datetime] = defaultdict(lambda: after)
    configured = {(f.tenant_id, f.mls): str(f.key) for f in read_configs(database)}
    for tenant in sorted({tenant for tenant, _ in configured}):
        for prop in crm.properties(database, tenant).find({"linkedAt": {"$gt": after}}, {"linkedAt": 1, "mls_feed": 1}):
            linked_at = prop["linkedAt"] if prop["linkedAt"].tzinfo else prop["linkedAt"].replace(tzinfo=UTC)
            newest = max(newest, linked_at)
            feed = configured.get((tenant, prop.get("mls_feed")))
            if feed is not None:  # else a link the CRM wrote to an MLS this tenant has no feed for
                feeds[feed] = max(feeds[feed], linked_at)
    if not feeds:
        return dg.SensorResult(skip_reason="no new CRM links", cursor=newest.isoformat())
    today = datetime.now(UTC).date().isoformat()
    requests = [
        dg.RunRequest(
            run_key=f"crm-link|{feed}|{at.isoformat()}",
            partition_key=str(feed_day_key(feed, today)),
            tags={FEED_TAG: feed, TRIGGER_TAG: "crm-link"},
        )
        for feed, at in sorted(feeds.items())
    ]
    return dg.SensorResult(run_requests=requests, cursor=newest.isoformat())
