"""`raw_listings`: the feed's Spark records of one day, cleaned, newest version per key."""

import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime

import dagster as dg

from mls_assets.defs.failures import fails_clearly
from mls_assets.defs.leases import LeaseResource
from mls_assets.defs.partitions import feed_day_partitions, split_key
from mls_assets.defs.policies import NETWORK_RETRY, SINGLE_RUN_BACKFILL
from mls_assets.defs.resources import ClockResource, MongoResource, SparkResource
from mls_assets.lib.replication.collections import RAW, REJECTS
from mls_assets.lib.replication.rejects import store_rejects
from mls_assets.lib.replication.window import PullWindow, listings_filter, window_for
from mls_assets.lib.spark.client import SparkClient
from mls_assets.lib.store.cursors import advance_cursor, pull_since, read_cursor
from mls_assets.lib.store.documents import CommitAfterWrite
from mls_assets.lib.tenants import FeedConfig, feed_config
from mls_assets.lib.transform.batch import make_reject
from mls_assets.lib.transform.screen import screen
from mls_assets.lib.transform.values import FieldError

RAW_STORAGE = {
    "collection": "{tenant}_{mls}_" + RAW,
    "key_fields": ["listingKey"],
    "version_field": "modificationTimestamp",
    "indexes": [{"keys": [["modificationTimestamp", 1]]}],
    "pending_for": ["flattened", "photos"],
}


class RawListingsConfig(dg.Config):
    """`listing_keys`: re-pull exactly these listings (the CRM re-scrape) instead of the
    partition's time window; the feed cursor is left alone."""

    listing_keys: list[str] = []


class PullStats:
    """What one partition's pull saw, reported as output metadata once it is stored."""

    def __init__(self, partition: str, window: PullWindow) -> None:
        self.partition, self.window = partition, window
        self.pages = self.listings = self.rejects = 0
        self.statuses: Counter[str] = Counter()
        self.started = time.monotonic()
        self.seconds = 0.0


def _pull(client: SparkClient, leases: LeaseResource, feed: FeedConfig, page_size: int,
          window: PullWindow, stats: PullStats, rejects_collection, partition: str, run_id: str,
          now: datetime) -> Iterator[dict]:  # fmt: skip
    """Stream the partition's records page by page, each through the screen: what passes is
    stored, what does not goes to the rejects with the reason; one record never costs its
    page. Holds one of the token's pull slots while pulling."""
    with client:
        if window.empty:
            return
        with leases.pulling(feed, client.fingerprint):
            yield from _screened_pages(client, feed, page_size, window, stats, rejects_collection, partition, run_id, now)
    stats.seconds = time.monotonic() - stats.started


def _screened_pages(client: SparkClient, feed: FeedConfig, page_size: int, window: PullWindow, stats: PullStats,
                    rejects_collection, partition: str, run_id: str, now: datetime) -> Iterator[dict]:  # fmt: skip
    for page in client.pages(listings_filter(feed, window), limit=page_size, expand=["Photos"]):
        stats.pages += 1
        rejects = []
        for record in page.results:
            try:
                screened = screen(record, now)
            except FieldError as error:
                rejects.append(make_reject(record, error.reason, error.field, now))
                continue
            stats.listings += 1
            stats.statuses[str(screened.status)[:40]] += 1
            document = {"listingKey": screened.key, "modificationTimestamp": screened.modified,
                        "standardStatus": screened.status, "record": screened.record}  # fmt: skip
            if screened.dropped_fields:
                document["droppedFields"] = screened.dropped_fields
            yield document
        if rejects:
            stats.rejects += store_rejects(rejects_collection, rejects, "raw", partition, run_id)


@dg.asset(
    partitions_def=feed_day_partitions,
    group_name="listings",
    kinds={"mongodb", "python"},
    metadata=RAW_STORAGE,
    retry_policy=NETWORK_RETRY,
    backfill_policy=SINGLE_RUN_BACKFILL,
)
@fails_clearly
def raw_listings(
    context: dg.AssetExecutionContext,
    config: RawListingsConfig,
    mongo: MongoResource,
    spark: SparkResource,
    clock: ClockResource,
    leases: LeaseResource,
) -> CommitAfterWrite:
    """The feed's listings whose ModificationTimestamp falls in the partition's day, pulled
    from the Spark replication endpoint with photos expanded, cleaned, newest version per
    ListingKey. Today's partition pulls from the feed cursor (minus 20 minutes) to now and
    advances the cursor only once the records are stored."""
    database = mongo.get_database()
    now = clock.now()
    leases.hold_feeds(context)
    streams, stats, cursors, feeds = {}, [], [], {}
    for key in context.partition_keys:
        feed_key, day = split_key(key)
        feed = feeds.setdefault(feed_key, feed_config(database, feed_key))
        client = spark.client_for(feed)  # a bad config fails here, before anything is written
        cursor = read_cursor(database, feed_key)
        window = window_for(day, now, pull_since(cursor), only_keys=tuple(config.listing_keys))
        if window.incremental and not window.only_keys:
            cursors.append((feed_key, now))
        stat = PullStats(str(key), window)
        stats.append(stat)
        rejects = database[feed.collection(REJECTS)]
        streams[str(key)] = _pull(client, leases, feed, spark.page_size, window, stat, rejects, str(key),
                                  context.run.run_id, now)  # fmt: skip
        context.log.info(f"{key}: {window.describe()}")

    def commit() -> None:
        for feed_key, started in cursors:
            advance_cursor(database, feed_key, started, context.run.run_id)

    def metadata() -> dict:
        statuses = sum((s.statuses for s in stats), Counter())
        return {
            "pulled": sum(s.listings for s in stats),
            "pages": sum(s.pages for s in stats),
            "rejects": sum(s.rejects for s in stats),
            "status_counts": dict(statuses),
            "windows": {s.partition: s.window.describe() for s in stats},
            "pull_seconds": round(sum(s.seconds for s in stats), 2),
            "cursor_advanced_to": {f: t.isoformat() for f, t in cursors} or "not an incremental run",
        }

    return CommitAfterWrite(streams, on_commit=commit, metadata=metadata)
