"""The weekly deletion sweep per feed (cron `MLS_SWEEP_CRON`, default Sundays 04:00 UTC)."""

import os

import dagster as dg

from mls_assets.defs.automation.run_requests import FEED_TAG, TRIGGER_TAG
from mls_assets.defs.failures import fails_clearly
from mls_assets.defs.leases import LeaseResource
from mls_assets.defs.partitions import feeds_partitions
from mls_assets.defs.policies import NETWORK_RETRY
from mls_assets.defs.resources import ClockResource, MongoResource, SparkResource
from mls_assets.lib.replication.sweep import DEFAULT_MIN_FRACTION, source_keys, sweep
from mls_assets.lib.tenants import feed_config, read_configs

SWEEP_CRON = os.environ.get("MLS_SWEEP_CRON", "0 4 * * 0")


class SweepConfig(dg.Config):
    min_fraction: float = DEFAULT_MIN_FRACTION


@dg.asset(partitions_def=feeds_partitions, group_name="maintenance", kinds={"mongodb", "python"},
          retry_policy=NETWORK_RETRY)  # fmt: skip
@fails_clearly
def deleted_listings_sweep(context: dg.AssetExecutionContext, config: SweepConfig, mongo: MongoResource,
                           spark: SparkResource, clock: ClockResource, leases: LeaseResource) -> dg.MaterializeResult:  # fmt: skip
    """Removes listings that vanished from the feed (a complete `_select=ListingKey` sweep,
    behind a volume guard), writing each removal to the status history."""
    database = mongo.get_database()
    leases.hold_feed(context.partition_key)
    feed = feed_config(database, context.partition_key)
    with spark.client_for(feed) as client, leases.pulling(feed, client.fingerprint):
        found = source_keys(client, feed)
    if found.unkeyed:
        context.log.warning(f"{found.unkeyed} source records had no usable ListingKey (they are quarantined by "
                            "the pull); listings named by their Id are kept")  # fmt: skip
    result = sweep(database, feed, found.keys, clock.now(), context.run.run_id, config.min_fraction)
    return dg.MaterializeResult(metadata={"source_keys": result.source_keys, "unkeyed_source_records": found.unkeyed,
                                          "stored_keys": result.stored_keys, "removed": result.removed,
                                          "history_events": result.history_events})  # fmt: skip


deletion_sweep_job = dg.define_asset_job("deletion_sweep_job", selection=[deleted_listings_sweep])


@dg.schedule(cron_schedule=SWEEP_CRON, job=deletion_sweep_job, execution_timezone="UTC")
def weekly_deletion_sweep(context: dg.ScheduleEvaluationContext, mongo: MongoResource):
    """One sweep per enabled feed."""
    when = context.scheduled_execution_time.isoformat()
    feeds = [f for f in read_configs(mongo.get_database()) if f.enabled]
    if not feeds:
        return dg.SkipReason("no enabled feeds")
    return [dg.RunRequest(run_key=f"sweep|{f.key}|{when}", partition_key=str(f.key),
                          tags={FEED_TAG: str(f.key), TRIGGER_TAG: "sweep"}) for f in feeds]  # fmt: skip
