"""Feeds as dynamic partitions: the configs decide which `tenant.mls` partitions exist."""

import dagster as dg
from pymongo.database import Database

from mls_assets.defs.partitions import FEEDS_PARTITION_NAME
from mls_assets.lib.replication.collections import ensure_feed_collections
from mls_assets.lib.tenants import FeedConfig, load_feeds, read_configs, sync_configs


def load_and_register_configs(database: Database, load_file: bool = True) -> list[FeedConfig]:
    """Tenants file (unless `load_file` is false) -> `agent_mls_configs` -> every feed's
    collections and indexes."""
    if load_file:
        sync_configs(database, load_feeds())
    feeds = read_configs(database)
    for feed in feeds:
        ensure_feed_collections(database, feed)
    return feeds


def sync_feed_partitions(instance: dg.DagsterInstance, database: Database) -> tuple[list[str], list[str]]:
    """Add configured feeds as `feeds` partitions and remove feeds no longer configured
    (a disabled feed keeps its partition: the schedules skip it); data is kept."""
    feeds = load_and_register_configs(database)
    wanted = {str(f.key) for f in feeds}
    current = set(instance.get_dynamic_partitions(FEEDS_PARTITION_NAME))
    added, removed = sorted(wanted - current), sorted(current - wanted)
    if added:
        instance.add_dynamic_partitions(FEEDS_PARTITION_NAME, added)
    for key in removed:
        instance.delete_dynamic_partition(FEEDS_PARTITION_NAME, key)
    return added, removed
