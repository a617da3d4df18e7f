"""The media domain: `photo_media`, each feed's photos re-hosted as WebP variants in our own
storage, downstream of the photo collections (`lib/media/sync.py` says how).

It runs in its own job (`media_job`, started by `photo_media_sensor`), not in the replication
chain: photos take seconds each where a listing sync takes milliseconds, so a feed's listings
never wait for its images. Its runs hold each feed's media lease, not its feed lease.
"""

from collections import Counter
from urllib.parse import urlsplit

import dagster as dg

from mls_assets.defs.automation.run_requests import TRIGGER_TAG
from mls_assets.defs.failures import fails_clearly
from mls_assets.defs.feed_assets import changes_in
from mls_assets.defs.leases import LeaseResource
from mls_assets.defs.partitions import feed_day_partitions, run_check
from mls_assets.defs.policies import SINGLE_RUN_BACKFILL
from mls_assets.defs.quality.results import check_result
from mls_assets.defs.resources import ClockResource, MediaResource, MongoResource, SourceResource
from mls_assets.lib.catalogue import PHOTO_MEDIA
from mls_assets.lib.local_mode import is_local_mode
from mls_assets.lib.media.download import PhotoDownloader
from mls_assets.lib.media.sync import RETRY_FIRST, MediaReport, MediaSync, coverage, next_due
from mls_assets.lib.quality.measures import Finding, merge_findings
from mls_assets.lib.redact import redact
from mls_assets.lib.sources.errors import SourceConfigurationError, SourceUnavailable
from mls_assets.lib.sources.rate import budget_of
from mls_assets.lib.store.changes import ChangeSet
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.tenants import feed_config

MEDIA_JOB = "media_job"
MEDIA_BACKLOG = "media_backlog"  # {_id: feed, dueAt}: feeds with photos waiting (read by the sensor)
COVERAGE_BELOW = 0.95  # of a feed's photos with their variants stored, below which the check warns


@dg.asset(
    partitions_def=feed_day_partitions,
    backfill_policy=SINGLE_RUN_BACKFILL,
    group_name="media",
    kinds={"python", "mongodb", "webp"},
    metadata={"collection": PHOTO_MEDIA.name},
    ins=changes_in("raw_listings", projection={"_id": 0, "listingKey": 1}),
    deps=["listing_photos", "expired_listing_photos"],
    check_specs=[
        run_check(
            "media_coverage",
            asset="photo_media",
            description=f"Each feed of the run has at least {COVERAGE_BELOW:.0%} of its photos with their WebP "
            "variants stored (the rest show the source's URL); metadata: each feed's coverage.",
        ),
        run_check(
            "media_failures",
            asset="photo_media",
            description="No photo of the run's feeds is failing (each failure is retried with backoff); "
            "metadata: each feed's failures by reason.",
        ),
    ],
)
@fails_clearly
def photo_media(
    context: dg.AssetExecutionContext,
    raw_listings: ChangeSet,
    mongo: MongoResource,
    source: SourceResource,
    media: MediaResource,
    clock: ClockResource,
    leases: LeaseResource,
):
    """Downloads the new and changed photos of the listings that changed (and the retries that
    are due), renders the large / medium / thumbnail WebP variants, stores them and writes
    their URLs and sizes into the photo documents; removes the media of photos that were
    replaced, of deleted listings and of expired listings past their TTL. A photo that fails
    costs only itself: it is recorded with its reason and retried later."""
    database = mongo.get_database()
    feeds = leases.hold_media(context)
    storage = media.storage()
    now = clock.now()
    photos_each = max(1, media.photos_per_run // max(1, len(feeds)))
    changed = {
        feed: {doc["listingKey"] for _, batch in raw_listings.batches(feed) for doc in batch}
        for feed in raw_listings.feeds
    }
    figures, coverage_by_feed, failing_by_feed = {}, [], []
    failed_feeds: dict[str, str] = {}
    for feed_key in raw_listings.feeds:
        try:
            report = _rehost_feed(context, database, feed_key, source, media, storage, now, photos_each, changed)
        except Exception as error:  # noqa: BLE001 - one feed's failure costs only that feed
            failed_feeds[str(feed_key)] = redact(f"{type(error).__name__}: {error}")[:300]
            context.log.error(f"{feed_key}: its media run failed, tried again next run: {failed_feeds[str(feed_key)]}")
            _note_backlog(database, str(feed_key), now + RETRY_FIRST)
            failing_by_feed.append((str(feed_key), Finding(offending=1, sample=[failed_feeds[str(feed_key)]])))
            continue
        shown = coverage(database, feed_key, now)
        figures[str(feed_key)] = {**report.as_metadata(), **shown}
        coverage_by_feed.append((str(feed_key), _coverage_finding(shown)))
        failing_by_feed.append((str(feed_key), _failure_finding(shown)))
    raw_listings.commit(context.run.run_id, except_feeds={FeedKey.parse(f) for f in failed_feeds})
    totals = Counter()
    for values in figures.values():
        totals.update({k: v for k, v in values.items() if isinstance(v, int) and k != "coverage"})
    yield dg.MaterializeResult(
        metadata={
            **dict(sorted(totals.items())),
            "storage": storage.where,
            "by_feed": dg.MetadataValue.json(figures),
            "failed_feeds": dg.MetadataValue.json(failed_feeds),
        }
    )
    yield check_result(
        merge_findings(coverage_by_feed),
        f"feeds with less than {COVERAGE_BELOW:.0%} of their photos re-hosted",
        "photo_media",
        "media_coverage",
        dg.AssetCheckSeverity.WARN,
        by_feed=coverage_by_feed,
    )
    yield check_result(
        merge_findings(failing_by_feed),
        "photos failing to re-host",
        "photo_media",
        "media_failures",
        dg.AssetCheckSeverity.WARN,
        by_feed=failing_by_feed,
    )


def _rehost_feed(context, database, feed_key, source, media, storage, now, photos_each, changed) -> MediaReport:
    """One feed's part of the run: its photos' media made, removed or re-stamped."""
    feed = feed_config(database, str(feed_key))
    token, token_host = _token_and_host(source, feed)
    with PhotoDownloader(
        token=token,
        token_hosts=[token_host] if token_host else [],
        local=is_local_mode(),
        budget=budget_of(token, feed.rate_limit) if token else None,
        per_host=media.per_host,
    ) as downloader:
        report = MediaSync(
            database,
            feed_key,
            storage,
            downloader,
            now,
            budget=photos_each,
            workers=media.workers,
            max_attempts=media.max_attempts,
            log=context.log.warning,
        ).run(changed.get(feed_key, ()))
    _note_backlog(database, str(feed_key), next_due(database, feed_key))
    context.log.info(
        f"{feed_key}: {report.stored} photos stored, {sum(report.failed.values())} failed, "
        f"{report.pending} left for the next run, {report.objects_deleted} objects removed"
    )
    return report


def _token_and_host(source: SourceResource, feed) -> tuple[str | None, str | None]:
    """The feed's token and its source's host (the one host its token may go to), or none when
    the feed's source is not configured here: its photos are then fetched without a token."""
    try:
        url, simulated = source.base_url_for(feed)
        return source.token_for(feed, simulated), urlsplit(url).hostname
    except (SourceConfigurationError, SourceUnavailable):
        return None, None


def _coverage_finding(shown: dict) -> Finding:
    finding = Finding(details={"coverage": shown["coverage"], "photos": shown["photos"]})
    if shown["coverage"] < COVERAGE_BELOW:
        finding.add([f"coverage {shown['coverage']:.1%} of {shown['photos']} photos"])
    return finding


def _failure_finding(shown: dict) -> Finding:
    finding = Finding(details=dict(shown["failed_by_reason"]))
    finding.offending = shown["failing"]
    finding.sample = [f"{reason}: {count}" for reason, count in shown["failed_by_reason"].items()][:10]
    return finding


def _note_backlog(database, feed: str, due) -> None:
    """Tell the sensor when this feed has photos waiting (a retry, the rest of a budget)."""
    if due is None:
        database[MEDIA_BACKLOG].delete_one({"_id": feed})
    else:
        database[MEDIA_BACKLOG].update_one({"_id": feed}, {"$set": {"dueAt": due}}, upsert=True)


media_job = dg.define_asset_job(
    MEDIA_JOB,
    selection=dg.AssetSelection.assets("photo_media"),
    tags={TRIGGER_TAG: "media"},
    description="Re-host the photos of feed-day partitions as WebP variants (new and changed photos only, due "
    "retries, removals). Started by photo_media_sensor after feed runs; runnable by hand for any feed.",
)
