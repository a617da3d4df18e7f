"""Asset checks that a data engineer can act on: each names what is wrong, how much of it,
and the first offending keys. They evaluate the feeds of the run that materialized the
asset (from its partition tags), or every configured feed when run on their own.

Blocking checks (unique keys, one status collection per listing) stop the assets
downstream of a failure in the same run, so bad routing never reaches the photos.
"""

import os
from datetime import datetime, timedelta

import dagster as dg

from mls_assets.defs.resources import ClockResource, MongoResource, SparkResource
from mls_assets.lib.quality import measures
from mls_assets.lib.replication.collections import ACTIVE, CLOSED, EXPIRED, REJECTS
from mls_assets.lib.spark import sparkql
from mls_assets.lib.store.cursors import read_cursor
from mls_assets.lib.tenants import FeedConfig, read_configs

REJECT_RATE_THRESHOLD = float(os.environ.get("MLS_REJECT_RATE_THRESHOLD", "0.01"))
COUNT_TOLERANCE = float(os.environ.get("MLS_COUNT_TOLERANCE", "0.02"))
FRESHNESS_MINUTES = int(os.environ.get("MLS_FRESHNESS_MINUTES", "60"))
MAX_PULL_MINUTES = float(os.environ.get("MLS_MAX_PULL_MINUTES", "30"))
# MongoDB's TTL monitor deletes expired documents once a minute, later under load.
TTL_GRACE = timedelta(minutes=float(os.environ.get("MLS_TTL_GRACE_MINUTES", "15")))
BUSINESS_HOURS_UTC = tuple(int(h) for h in os.environ.get("MLS_BUSINESS_HOURS_UTC", "15-3").split("-"))
ACTIVE_STATUSES = ("Active", "Active Under Contract", "Coming Soon", "Pending")


def run_scope(context: dg.AssetCheckExecutionContext, database) -> tuple[list[FeedConfig], list[str]]:
    """The feeds (and partitions) of this run; every configured feed when it has none."""
    tags = context.run.tags
    partitions = [tags["dagster/partition"]] if "dagster/partition" in tags else []
    # a range run is judged on its feed as a whole
    keys = partitions or [tags.get("dagster/asset_partition_range_start", "")]
    feeds = {key.split("|", 1)[-1] for key in keys if key}
    return [f for f in read_configs(database) if not feeds or str(f.key) in feeds], partitions


def result(finding: measures.Finding, what: str, severity=dg.AssetCheckSeverity.ERROR, **extra) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=finding.offending == 0,
        severity=severity,
        description=f"{finding.offending} {what}" if finding.offending else f"no {what}",
        metadata={"offending": finding.offending, "first_offending_keys": finding.sample, **finding.details, **extra},
    )


def _merge(findings: list[tuple[str, measures.Finding]]) -> measures.Finding:
    """One finding over several feeds; sample keys are prefixed with their feed."""
    merged = measures.Finding()
    for feed, finding in findings:
        merged.offending += finding.offending
        merged.sample.extend(f"{feed}:{key}" for key in finding.sample)
        for name, value in finding.details.items():
            merged.details[name] = merged.details.get(name, 0) + value
    merged.sample = merged.sample[: measures.SAMPLE]
    return merged


def per_feed(context: dg.AssetCheckExecutionContext, mongo: MongoResource, measure, what: str,
             severity=dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckResult:  # fmt: skip
    """Run `measure(database, feed)` on each feed of the run and report them together."""
    database = mongo.get_database()
    feeds, _ = run_scope(context, database)
    return result(_merge([(str(f.key), measure(database, f)) for f in feeds]), what, severity)


def _status_checks(asset: str, collection: str) -> list[dg.AssetChecksDefinition]:
    @dg.asset_check(asset=asset, name="unique_listing_key", blocking=True,
                    description=f"Each listingKey appears once in the feed's {collection} collection.")  # fmt: skip
    def unique_listing_key(context: dg.AssetCheckExecutionContext, mongo: MongoResource) -> dg.AssetCheckResult:
        return per_feed(context, mongo, lambda db, f: measures.duplicate_keys(db, f, collection), "duplicated listing keys")

    @dg.asset_check(asset=asset, name="required_fields",
                    description="listingKey, listingId, standardStatus, modificationTimestamp, tenantId and "
                    "mlsProvider are present on every listing.")  # fmt: skip
    def required_fields(context: dg.AssetCheckExecutionContext, mongo: MongoResource) -> dg.AssetCheckResult:
        return per_feed(context, mongo, lambda db, f: measures.missing_required(db, f, collection), "listings missing a required field")

    return [unique_listing_key, required_fields]


@dg.asset_check(asset="active_listings", name="one_status_collection", blocking=True,
                description="Every listing lives in exactly one of the active, closed and expired collections "
                "of its feed.")  # fmt: skip
def one_status_collection(context: dg.AssetCheckExecutionContext, mongo: MongoResource) -> dg.AssetCheckResult:
    return per_feed(context, mongo, measures.in_several_collections, "listings in more than one status collection")


@dg.asset_check(asset="expired_listings", name="expires_at_is_a_date_within_retention",
                description="expiresAt is a BSON date (else the TTL index never fires) and none is past the "
                "90-day window by more than the TTL monitor's lag (MLS_TTL_GRACE_MINUTES).")  # fmt: skip
def expires_at_is_a_date(context: dg.AssetCheckExecutionContext, mongo: MongoResource,
                         clock: ClockResource) -> dg.AssetCheckResult:  # fmt: skip
    cutoff = clock.now() - TTL_GRACE
    return per_feed(context, mongo, lambda db, f: measures.bad_expiry(db, f, cutoff),
                    "expired listings with a bad or past expiresAt")


@dg.asset_check(asset="listing_photos", name="no_orphan_or_wiped_photos",
                description="No photo without its listing, and no listing with photos whose photos are gone "
                "(an empty expansion must never wipe them).")  # fmt: skip
def no_orphan_photos(context: dg.AssetCheckExecutionContext, mongo: MongoResource) -> dg.AssetCheckResult:
    return per_feed(context, mongo, measures.orphan_photos, "orphan photos or listings missing their photos",
                    dg.AssetCheckSeverity.WARN)


@dg.asset_check(asset="active_listings", name="count_matches_source",
                description=f"Stored active listings are within {COUNT_TOLERANCE:.0%} of the source's count "
                "(_pagination=count) for the feed's active scope.")  # fmt: skip
def count_matches_source(context: dg.AssetCheckExecutionContext, mongo: MongoResource,
                         spark: SparkResource) -> dg.AssetCheckResult:  # fmt: skip
    database = mongo.get_database()
    feeds, _ = run_scope(context, database)
    counts, worst = {}, 0.0
    for feed in feeds:
        scope = sparkql.all_of(sparkql.eq("MlsId", feed.mls_id), sparkql.one_of("PropertyType", feed.property_types),
                               sparkql.one_of("StandardStatus", ACTIVE_STATUSES))  # fmt: skip
        with spark.client_for(feed) as client:
            source = client.count(scope)
        # what we hold of the feed counts quarantined records too: the reject rate has its own check
        stored = database[feed.collection(ACTIVE)].estimated_document_count() + database[
            feed.collection(REJECTS)].count_documents({"raw": {"$regex": "|".join(ACTIVE_STATUSES)}})
        gap = abs(stored - source) / source if source else float(stored > 0)
        counts[str(feed.key)] = {"stored": stored, "source": source, "gap": round(gap, 4)}
        worst = max(worst, gap)
    return dg.AssetCheckResult(
        passed=worst <= COUNT_TOLERANCE, severity=dg.AssetCheckSeverity.WARN,
        description=f"largest gap between stored and source counts: {worst:.1%} (tolerance {COUNT_TOLERANCE:.0%})",
        metadata={"counts": counts, "largest_gap": round(worst, 4)},
    )  # fmt: skip


@dg.asset_check(asset="flattened_listings", name="reject_rate_below_threshold",
                description=f"Fewer than {REJECT_RATE_THRESHOLD:.0%} of the run's records were rejected "
                "(seed 003's alert on a high error rate).")  # fmt: skip
def reject_rate_below_threshold(context: dg.AssetCheckExecutionContext, mongo: MongoResource) -> dg.AssetCheckResult:
    database = mongo.get_database()
    feeds, partitions = run_scope(context, database)
    rejects = flattened = 0
    samples: list[str] = []
    for feed in feeds:
        _, r, f, sample = measures.reject_rate(database, feed, [p for p in partitions if p.endswith(str(feed.key))])
        rejects, flattened = rejects + r, flattened + f
        samples.extend(sample)
    rate = rejects / (rejects + flattened) if rejects + flattened else 0.0
    return dg.AssetCheckResult(
        passed=rate < REJECT_RATE_THRESHOLD, severity=dg.AssetCheckSeverity.WARN,
        description=f"{rate:.2%} of records rejected ({rejects} of {rejects + flattened})",
        metadata={"reject_rate": round(rate, 4), "rejects": rejects, "first_rejects": samples[: measures.SAMPLE]},
    )  # fmt: skip


def business_hours(now: datetime) -> bool:
    start, end = BUSINESS_HOURS_UTC
    return start <= now.hour < end if start < end else now.hour >= start or now.hour < end


@dg.asset_check(asset="raw_listings", name="feed_is_fresh",
                description=f"Each enabled feed was synced (cursor advanced) within {FRESHNESS_MINUTES} minutes "
                "during business hours (MLS_BUSINESS_HOURS_UTC), within a day otherwise.")  # fmt: skip
def feed_is_fresh(context: dg.AssetCheckExecutionContext, mongo: MongoResource,
                  clock: ClockResource) -> dg.AssetCheckResult:  # fmt: skip
    database = mongo.get_database()
    feeds, _ = run_scope(context, database)
    now = clock.now()
    limit = timedelta(minutes=FRESHNESS_MINUTES) if business_hours(now) else timedelta(days=1)
    ages = {}
    stale = measures.Finding()
    for feed in feeds:
        if not feed.enabled:
            continue
        cursor = read_cursor(database, str(feed.key))
        age = now - cursor if cursor else None
        ages[str(feed.key)] = round(age.total_seconds() / 60, 1) if age is not None else "never synced"
        if age is None or age > limit:
            stale.add([str(feed.key)])
    return result(stale, "stale feeds", dg.AssetCheckSeverity.WARN, age_minutes=ages,
                  limit_minutes=limit.total_seconds() / 60)  # fmt: skip


@dg.asset_check(asset="raw_listings", name="pull_duration_within_limit",
                description=f"The run's Spark pull took less than {MAX_PULL_MINUTES:g} minutes (seed 003's alert "
                "on a slow sync): a slower pull means rate limits, an overloaded source or a runaway window.")  # fmt: skip
def pull_duration_within_limit(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("raw_listings")), limit=1)  # fmt: skip
    seconds = 0.0
    if records.records and records.records[0].run_id == context.run.run_id:
        meta = records.records[0].asset_materialization.metadata
        seconds = float(getattr(meta.get("pull_seconds"), "value", 0.0) or 0.0)
    return dg.AssetCheckResult(
        passed=seconds < MAX_PULL_MINUTES * 60, severity=dg.AssetCheckSeverity.WARN,
        description=f"pull took {seconds:.1f}s (limit {MAX_PULL_MINUTES:g} min)",
        metadata={"pull_seconds": seconds, "limit_seconds": MAX_PULL_MINUTES * 60},
    )  # fmt: skip


@dg.asset_check(asset="active_listings", name="crm_links_consistent",
                description="CRM links agree both ways: mls_property_id on the property, crm_property_ids on "
                "the listing.")  # fmt: skip
def crm_links_consistent(context: dg.AssetCheckExecutionContext, mongo: MongoResource) -> dg.AssetCheckResult:
    return per_feed(context, mongo, measures.inconsistent_crm_links, "broken CRM links")


CHECKS = [
    *_status_checks("active_listings", ACTIVE),
    *_status_checks("closed_listings", CLOSED),
    *_status_checks("expired_listings", EXPIRED),
    one_status_collection,
    expires_at_is_a_date,
    no_orphan_photos,
    count_matches_source,
    reject_rate_below_threshold,
    feed_is_fresh,
    pull_duration_within_limit,
    crm_links_consistent,
]
