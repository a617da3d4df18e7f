"""Feeds as dynamic partitions: the configs decide which `tenant.mls` partitions exist."""

import dagster as dg
from pymongo.database import Database

from mls_assets.defs.partitions import FEEDS_PARTITION_NAME
from mls_assets.lib.tenants import LoadedFeeds, load_tenants_file, read_feeds, sync_configs


def load_and_register_configs(database: Database, load_file: bool = True) -> LoadedFeeds:
    """Tenants file (unless `load_file` is false) -> `agent_mls_configs` -> the valid feeds,
    with every refused entry of the file and of MongoDB.

    Registration creates no collection: a feed's collections are created by their writers at
    its first load (a collection is loaded unindexed and indexed once, several times faster
    than into indexes made beforehand) and its tenant's collections by that first load too
    (`provision_feed`). Creating them here cost 70 ms a feed, 144 s for 2,000 in one tick."""
    problems = []
    if load_file:
        loaded = load_tenants_file()  # TenantsFileError: the whole file refused, nothing written
        sync_configs(database, loaded.feeds, loaded.problems)
        problems.extend(loaded.problems)
    current = read_feeds(database)
    return LoadedFeeds(current.feeds, problems + current.problems)


def partition_changes(instance: dg.DagsterInstance, feeds: LoadedFeeds) -> tuple[list[str], list[str]]:
    """(feeds to add, feeds to remove) as `feeds` partitions. A disabled feed keeps its
    partition (the schedules skip it); a feed whose new entry was refused keeps its partition
    too: only feeds deleted from the configs lose theirs (their data is kept). New feeds are
    added in the order of their sources, so that the feeds of one source lie next to each
    other and one run over a range of them serves them all (`shared_runs`)."""
    wanted = {str(f.key) for f in feeds.feeds} | {p.feed for p in feeds.problems if p.feed}
    current = set(instance.get_dynamic_partitions(FEEDS_PARTITION_NAME))
    added = [str(f.key) for f in sorted(feeds.feeds, key=lambda f: (f.source, str(f.key))) if str(f.key) not in current]
    return added, sorted(current - wanted)


def sync_feed_partitions(instance: dg.DagsterInstance, database: Database) -> tuple[LoadedFeeds, list[str], list[str]]:
    """The CLI's and `make run`'s registration: load the file, add and remove partitions."""
    feeds = load_and_register_configs(database)
    added, removed = partition_changes(instance, feeds)
    if added:
        instance.add_dynamic_partitions(FEEDS_PARTITION_NAME, added)
    for key in removed:
        instance.delete_dynamic_partition(FEEDS_PARTITION_NAME, key)
    return feeds, added, removed
