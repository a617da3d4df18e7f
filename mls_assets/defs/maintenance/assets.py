"""The maintenance domain: `deleted_listings_sweep`, listings gone from the source removed."""

import dagster as dg

from mls_assets.defs.failures import fails_clearly
from mls_assets.defs.leases import LeaseResource
from mls_assets.defs.partitions import feeds_partitions
from mls_assets.defs.policies import NETWORK_RETRY, SOURCE_POOL
from mls_assets.defs.resources import ClockResource, MongoResource, SourceResource
from mls_assets.lib.replication.sweep import DEFAULT_MIN_FRACTION, source_keys, sweep
from mls_assets.lib.tenants import feed_config


class SweepConfig(dg.Config):
    min_fraction: float = DEFAULT_MIN_FRACTION


@dg.asset(
    partitions_def=feeds_partitions,
    group_name="maintenance",
    kinds={"mongodb", "python"},
    retry_policy=NETWORK_RETRY,
    pool=SOURCE_POOL,
)
@fails_clearly
def deleted_listings_sweep(
    context: dg.AssetExecutionContext,
    config: SweepConfig,
    mongo: MongoResource,
    source: SourceResource,
    clock: ClockResource,
    leases: LeaseResource,
) -> dg.MaterializeResult:
    """Removes listings that vanished from the feed (a complete sweep of the source's keys,
    behind a volume guard) from every swept collection of the catalogue, writes each removal
    to the status history and breaks the CRM links of removed listings; reports what it
    removed from each collection."""
    database = mongo.get_database()
    leases.hold_feed(context.partition_key)
    feed = feed_config(database, context.partition_key)
    with source.provider_for(feed) as provider, leases.pulling(feed, provider.fingerprint):
        found = source_keys(provider)
    if found.unkeyed:
        context.log.warning(
            f"{found.unkeyed} source records had no usable ListingKey (they are quarantined by "
            "the pull); listings named by their Id are kept"
        )
    result = sweep(database, feed, found.keys, clock.now(), context.run.run_id, config.min_fraction)
    return dg.MaterializeResult(
        metadata={
            "source_keys": result.source_keys,
            "unkeyed_source_records": found.unkeyed,
            "stored_keys": result.stored_keys,
            "history_events": result.history_events,
            "crm_links_broken": result.links_broken,
            "removed": sum(result.removed.values()),
            "removed_by_collection": result.removed,
        }
    )
