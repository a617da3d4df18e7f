"""`crm_linked_properties`: MLS changes reach every linked CRM property (seed 001)."""

from collections import defaultdict
from datetime import UTC, datetime

import dagster as dg

from mls_assets.defs.automation.run_requests import FEED_TAG, TRIGGER_TAG
from mls_assets.defs.failures import fails_clearly
from mls_assets.defs.leases import LeaseResource
from mls_assets.defs.partitions import feed_day_key, feed_day_partitions, split_key
from mls_assets.defs.policies import SINGLE_RUN_BACKFILL
from mls_assets.defs.resources import ClockResource, MongoResource
from mls_assets.lib import crm
from mls_assets.lib.replication.collections import STATUS_COLLECTIONS
from mls_assets.lib.store.merge import PARTITION_FIELD
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.tenants import read_configs


@dg.asset(
    partitions_def=feed_day_partitions,
    backfill_policy=SINGLE_RUN_BACKFILL,
    group_name="crm",
    kinds={"mongodb", "python"},
    deps=["active_listings", "closed_listings", "expired_listings"],
    metadata={"collection": "{tenant}_crm_properties"},
)
@fails_clearly
def crm_linked_properties(context: dg.AssetExecutionContext, mongo: MongoResource, clock: ClockResource,
                          leases: LeaseResource) -> dg.MaterializeResult:  # fmt: skip
    """For every listing of the partition that changed, updates the CRM properties linked
    to it with the MLS fields (price, status, beds/baths, address, photos summary,
    mlsLastSyncedAt), keeping every CRM-owned field; an unchanged listing causes no write.
    Also completes links the CRM made on its side only."""
    database = mongo.get_database()
    now = clock.now()
    leases.hold_feeds(context)
    totals = crm.SyncCounts()
    repaired = 0
    for key in context.partition_keys:
        feed = FeedKey.parse(split_key(key)[0])
        for pending in crm.needing_sync(database, feed):
            crm.repair_reverse_link(database, feed, pending["_id"], pending["mls_property_id"])
            repaired += 1
        for name in STATUS_COLLECTIONS.values():
            # linked listings are few; a property whose content hash already matches is not written
            linked = list(database[feed.collection(name)].find(
                {PARTITION_FIELD: str(key), "crm_property_ids.0": {"$exists": True}},
                {"listingKey": 1, "crm_property_ids": 1}))  # fmt: skip
            counts = crm.sync_linked(database, feed.tenant, linked, now)
            totals.updated, totals.unchanged, totals.broken = (
                totals.updated + counts.updated, totals.unchanged + counts.unchanged, totals.broken + counts.broken)
        for pending in crm.needing_sync(database, feed):
            outcome = crm.sync_property(database, feed.tenant, pending["_id"], now)
            setattr(totals, outcome, getattr(totals, outcome) + 1)
    return dg.MaterializeResult(metadata={"properties_updated": totals.updated, "properties_unchanged": totals.unchanged,
                                          "links_broken": totals.broken, "links_completed": repaired})  # fmt: skip


crm_sync_job = dg.define_asset_job("crm_sync_job", selection=[crm_linked_properties])


@dg.sensor(job=crm_sync_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
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
        dg.RunRequest(run_key=f"crm-link|{feed}|{at.isoformat()}", partition_key=str(feed_day_key(feed, today)),
                      tags={FEED_TAG: feed, TRIGGER_TAG: "crm-link"})
        for feed, at in sorted(feeds.items())
    ]  # fmt: skip
    return dg.SensorResult(run_requests=requests, cursor=newest.isoformat())
