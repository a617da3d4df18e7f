"""The listings domain: `raw_listings` (the feed's source records of one day, screened) and
`flattened_listings` (flat camelCase documents with derived fields)."""

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime

import dagster as dg
from pymongo.errors import ConnectionFailure

from mls_assets.defs.feed_assets import feed_asset
from mls_assets.defs.io_manager import Streamed
from mls_assets.defs.leases import LeaseResource
from mls_assets.defs.partitions import FIRST_DAY, days_by_feed, run_check
from mls_assets.defs.policies import NETWORK_RETRY, SOURCE_POOL
from mls_assets.defs.resources import ClockResource, MongoResource, SourceResource
from mls_assets.lib.catalogue import FLATTENED, RAW, REJECTS, provision_feed
from mls_assets.lib.prefetch import prefetched
from mls_assets.lib.redact import redact
from mls_assets.lib.replication.progress import PullProgress
from mls_assets.lib.replication.rejects import Quarantine
from mls_assets.lib.replication.sweep import remove_announced
from mls_assets.lib.replication.window import PullWindow, contiguous, window_for_days
from mls_assets.lib.settings import SETTINGS
from mls_assets.lib.sources.base import ListingsProvider
from mls_assets.lib.sources.pool import ClientPool
from mls_assets.lib.store.alone import mark_alone, release
from mls_assets.lib.store.changes import ChangeSet
from mls_assets.lib.store.client import DatabaseUnavailable
from mls_assets.lib.store.cursors import advance_cursor, pull_since, read_cursor
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.tenants import FeedConfig, feed_config
from mls_assets.lib.transform.batch import make_reject, transform_record
from mls_assets.lib.transform.screen import screen
from mls_assets.lib.transform.values import FieldError

MAX_PULL_MINUTES = SETTINGS.max_pull_minutes
REJECT_RATE_THRESHOLD = SETTINGS.reject_rate_threshold


class RawListingsConfig(dg.Config):
    """`listing_keys`: re-pull exactly these listings (the CRM re-scrape) instead of the
    partition's time window; the feed cursor is left alone."""

    listing_keys: list[str] = []


class PullStats:
    """What one pull (a feed's contiguous days) saw, reported as output metadata once it is
    stored: in total, and per day of the records' ModificationTimestamp."""

    def __init__(self, partition: str, window: PullWindow) -> None:
        self.partition, self.window = partition, window
        self.pages = self.listings = self.rejects = 0
        self.deletions: dict[str, datetime] = {}  # announced by the source: key -> when
        self.statuses: Counter[str] = Counter()
        self.by_day: dict[date, Counter[str]] = {}
        self.started = time.monotonic()
        self.seconds = 0.0

    def count(self, status: str, modified: datetime) -> None:
        self.listings += 1
        self.statuses[status] += 1
        self.by_day.setdefault(modified.astimezone(UTC).date(), Counter())[status] += 1


def _pull(
    provider: ListingsProvider,
    leases: LeaseResource,
    feed: FeedConfig,
    page_size: int,
    window: PullWindow,
    stats: PullStats,
    quarantine: Quarantine,
    now: datetime,
    progress: PullProgress,
) -> Iterator[dict]:
    """Stream the window's records page by page, each through the screen: what passes is
    stored, what does not goes to the quarantine with the reason; one record never costs its
    page. Deletions the source announces pass the same screen and are kept aside for
    removal once the stream is stored. Holds one of the token's pull slots while pulling;
    says how far it got every few pages and whenever it waits to retry."""
    provider.on_retry(progress.retrying)
    with provider:
        if window.empty:
            return
        with leases.pulling(feed, provider.fingerprint):
            for page in prefetched(provider.pages(window, page_size)):
                progress.page(stats.pages, stats.listings)  # the previous page is stored by now
                stats.pages += 1
                rejects = []
                for record in page.deletions:
                    try:
                        deleted = screen(record, now)
                    except FieldError as error:
                        rejects.append(make_reject(record, f"deletion: {error.reason}", error.field, now))
                        continue
                    if deleted.modified >= stats.deletions.get(deleted.key, deleted.modified):
                        stats.deletions[deleted.key] = deleted.modified
                for record in page.records:
                    try:
                        screened = screen(record, now)
                    except FieldError as error:
                        rejects.append(make_reject(record, error.reason, error.field, now))
                        continue
                    stats.count(str(screened.status)[:40], screened.modified)
                    document = {
                        "listingKey": screened.key,
                        "modificationTimestamp": screened.modified,
                        "standardStatus": screened.status,
                        "record": screened.record,
                    }
                    if screened.dropped_fields:
                        document["droppedFields"] = screened.dropped_fields
                    yield document
                stats.rejects += quarantine.store(rejects, stats.partition)
    stats.seconds = time.monotonic() - stats.started


# A shared run fails as a whole, never one feed, when the database is gone.
SHARED_RUN_FATAL = (ConnectionFailure, DatabaseUnavailable)


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {redact(str(error))}"[:300]


def _isolated(stream: Iterator[dict], feed_key: str, failures: dict[str, str]) -> Iterator[dict]:
    """A feed's stream in a shared run: its failure ends its stream and is kept for the step's
    verdict; the other feeds' streams are still stored."""
    if feed_key in failures:
        return
    try:
        yield from stream
    except SHARED_RUN_FATAL:
        raise
    except Exception as error:
        failures.setdefault(feed_key, _reason(error))


def _shared_run_failed(failures: dict[str, str], feeds: int) -> dg.Failure:
    """The step's failure when feeds of a shared run failed: which and why (redacted), and
    that the others are stored."""
    shown = "; ".join(f"{key}: {why}" for key, why in list(failures.items())[:10])
    return dg.Failure(
        description=f"{len(failures)} of the {feeds} feeds of this shared run failed and run alone from now on "
        f"({shown}); the other {feeds - len(failures)} are stored and get a catch-up run",
        metadata={"failed_feeds": sorted(failures), "stored_feeds": feeds - len(failures)},
        allow_retries=False,
    )


@feed_asset(
    RAW,
    group="listings",
    retry_policy=NETWORK_RETRY,
    pool=SOURCE_POOL,
    check_specs=[
        run_check(
            "pull_duration_within_limit",
            asset="raw_listings",
            description=f"The run's source pull took less than {MAX_PULL_MINUTES:g} minutes (MLS_MAX_PULL_MINUTES): "
            "a slower pull means rate limits, an overloaded source or a runaway window.",
        )
    ],
)
def raw_listings(
    context: dg.AssetExecutionContext,
    config: RawListingsConfig,
    mongo: MongoResource,
    source: SourceResource,
    clock: ClockResource,
    leases: LeaseResource,
):
    """The feed's listings whose ModificationTimestamp falls in the partition's day, pulled
    from the feed's provider (Spark's replication endpoint, or a RESO Web API) with photos
    expanded, screened, newest version per ListingKey. A range run pulls each feed's stretch
    of days at once and reports every day's own counts. Today's partition pulls from the feed
    cursor (minus 20 minutes) to now and advances the cursor only once the records are
    stored; a feed's first pull takes its whole history. Listings the source says were
    deleted are removed from every collection once the records are stored."""
    database = mongo.get_database()
    now = clock.now()
    streams, cursors, feeds = {}, [], {}
    stats: dict[str, list[PullStats]] = {}
    days_of = days_by_feed([str(key) for key in context.partition_keys])
    shared = len(days_of) > 1
    # one pooled client per host for the run's feeds (a shared run: many feeds, one connection)
    with ClientPool(timeout_s=source.timeout_s, connections=4) as clients:
        failures: dict[str, str] = {}  # a shared run's feeds that failed: feed -> why
        for feed_key, partitions in days_of.items():
            try:
                feed = feeds.setdefault(feed_key, feed_config(database, feed_key))
                cursor = read_cursor(database, feed_key)
                since = pull_since(cursor)
                for days in contiguous(list(partitions)):  # one pull per stretch of days, not one per day
                    provider = source.provider_for(
                        feed, clients=clients
                    )  # a bad config fails here, before anything is written
                    if cursor is None:  # the feed's first load: its tenant's collections first
                        provision_feed(database, feed.key)
                    window = window_for_days(days, now, since, tuple(config.listing_keys), first_day=FIRST_DAY)
                    if window.incremental and not window.only_keys:
                        cursors.append((feed_key, now))
                    label = partitions[days[0]] if len(days) == 1 else f"{partitions[days[0]]}..{partitions[days[-1]]}"
                    stat = PullStats(label, window)
                    stats.setdefault(feed_key, []).append(stat)
                    quarantine = Quarantine(database[REJECTS.collection_name(feed.key)], "raw", context.run.run_id)
                    progress = PullProgress(context.log.info, label)
                    stream = _pull(provider, leases, feed, source.page_size, window, stat, quarantine, now, progress)
                    streams[partitions[days[0]]] = _isolated(stream, feed_key, failures) if shared else stream
                    context.log.info(f"{label}: {window.describe()}")
            except SHARED_RUN_FATAL:
                raise
            except Exception as error:
                if not shared:
                    raise
                failures[feed_key] = _reason(error)  # its streams, if any, stop at once (`_isolated`)

        def report() -> dict:
            every = [stat for feed_stats in stats.values() for stat in feed_stats]
            return {
                "pulled_in_window": sum(s.listings for s in every),  # every day the window reached
                "pages": sum(s.pages for s in every),
                "rejects": sum(s.rejects for s in every),
                "deletions_announced": sum(len(s.deletions) for s in every),
                "status_counts": dict(sum((s.statuses for s in every), Counter())),
                "windows": {s.partition: s.window.describe() for s in every},
                "pull_seconds": round(sum(s.seconds for s in every), 2),
            }

        def by_partition() -> dict[str, dict]:
            """Each day's own records (a range run's totals would be wrong on every day)."""
            found: dict[str, dict] = {}
            for feed_key, partitions in days_of.items():
                for day, key in partitions.items():
                    statuses = sum((s.by_day.get(day, Counter()) for s in stats.get(feed_key, [])), Counter())
                    found[key] = {"pulled": sum(statuses.values()), "status_counts": dict(statuses)}
            return found

        def settle() -> None:
            """The records are stored: the deletions the sources announced, then the cursors (the
            next pull may start there). In a shared run a feed that failed moves nothing, runs alone
            from now on, and fails the step (before any day is recorded as materialized); the
            others are stored and get their catch-up run (`shared_run_failure_sensor`)."""
            for feed_key, feed_stats in stats.items():
                deletions = {key: at for stat in feed_stats for key, at in stat.deletions.items()}
                if deletions and feed_key not in failures:
                    events, broken, removed = remove_announced(
                        database, feeds[feed_key], deletions, now, context.run.run_id
                    )
                    context.log.info(
                        f"{feed_key}: {len(deletions)} deletions announced by the source; removed "
                        f"{removed.get(RAW.name, 0)} stored listings ({events} Deleted events, {broken} CRM "
                        "links broken)"
                    )
            for feed_key, started in cursors:
                if feed_key not in failures:
                    advance_cursor(database, feed_key, started, context.run.run_id)
            release(database, [key for key in days_of if key not in failures])
            if failures:
                mark_alone(database, failures, context.run.run_id, now)
                raise _shared_run_failed(failures, len(days_of))

        yield dg.Output(Streamed(streams, report, by_partition, settle))
    seconds = sum(s.seconds for feed_stats in stats.values() for s in feed_stats)
    yield dg.AssetCheckResult(
        check_name="pull_duration_within_limit",
        passed=seconds < MAX_PULL_MINUTES * 60,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"pull took {seconds:.1f}s (limit {MAX_PULL_MINUTES:g} min)",
        metadata={"pull_seconds": round(seconds, 2), "limit_seconds": MAX_PULL_MINUTES * 60},
    )


@feed_asset(
    FLATTENED,
    group="listings",
    changes_of="raw_listings",
    check_specs=[
        run_check(
            "reject_rate_below_threshold",
            asset="flattened_listings",
            description=f"Fewer than {REJECT_RATE_THRESHOLD:.0%} of the records this run read were quarantined, "
            "at the pull (unreadable keys, values, dates) or at the flattening (MLS_REJECT_RATE_THRESHOLD).",
        )
    ],
)
def flattened_listings(
    context: dg.AssetExecutionContext,
    raw_listings: ChangeSet,
    mongo: MongoResource,
    clock: ClockResource,
    leases: LeaseResource,
):
    """Every raw listing written since this asset last ran, flattened to camelCase, with
    slugs, GeoJSON location, land lease details, status class, lead fields for expired
    listings and a `contentHash` of its source content. Records that cannot be made valid go
    to the quarantine with the reason and never fail the batch."""
    database = mongo.get_database()
    now = clock.now()
    seen = {"flattened": 0, "rejected": 0, "pull_rejected": 0, "classes": Counter(), "samples": []}

    def documents(feed_key: FeedKey) -> Iterator[dict]:
        feed = feed_config(database, str(feed_key))
        quarantine = Quarantine(database[REJECTS.collection_name(feed_key)], "flatten", context.run.run_id)
        seen["pull_rejected"] += quarantine.count_of_run("raw")  # screened out at the pull, never reached raw
        for _, batch in raw_listings.batches(feed_key):
            rejects, passed = [], []
            for raw in batch:
                result = transform_record(raw["record"], feed, now, screened=True)
                if result.reject is not None:
                    rejects.append(result.reject)
                    continue
                passed.append(result.listing["listingKey"])
                seen["classes"][result.listing["statusClass"]] += 1
                yield result.listing
            seen["flattened"] += len(passed)
            seen["rejected"] += quarantine.store(rejects)
            seen["samples"].extend(f"{r.get('listingKey')}: {r['field']}: {r['reason']}" for r in rejects[:10])
            quarantine.release(passed)

    started = time.monotonic()

    def report() -> dict:
        total = seen["flattened"] + seen["rejected"]
        return {
            "flattened": seen["flattened"],
            "rejected": seen["rejected"],
            "reject_rate": round(seen["rejected"] / total, 4) if total else 0.0,
            "status_class_counts": dict(seen["classes"]),
            "transform_seconds": round(time.monotonic() - started, 2),
        }

    yield dg.Output(Streamed({str(feed): documents(feed) for feed in raw_listings.feeds}, report))
    raw_listings.commit(context.run.run_id)  # stored: this consumer has seen these changes
    rejected = seen["rejected"] + seen["pull_rejected"]
    total = seen["flattened"] + rejected  # every record the run read: the pull's rejects too
    rate = rejected / total if total else 0.0
    yield dg.AssetCheckResult(
        check_name="reject_rate_below_threshold",
        passed=rate < REJECT_RATE_THRESHOLD,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{rate:.2%} of records quarantined "
        f"({rejected} of {total}: {seen['pull_rejected']} at the pull, {seen['rejected']} at the flattening)",
        metadata={
            "reject_rate": round(rate, 4),
            "rejects": rejected,
            "pull_rejects": seen["pull_rejected"],
            "flatten_rejects": seen["rejected"],
            "records_read": total,
            "first_rejects": seen["samples"][:10],
        },
    )
