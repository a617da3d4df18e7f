"""Audits: whole-collection checks of every enabled feed, run by `quality_audit_job` on a
schedule (they read whole collections, so they do not run with every 15-minute sync; the
checks that run with the chain check what each run wrote and live beside their assets).

They are the checks of `collection_audit`, an asset that only the audit job materializes
(one materialization per audit: when it ran and over how many feeds), not of the listings
assets. So the UI shows each audit's last result on that asset until the next audit (a
check of `active_listings` is "not evaluated" again as soon as any feed syncs), and no run
of a feed ever carries them (Dagster adds a selected asset's checks to a job-page backfill or
a CLI `--select`, where a whole-collection audit would be billed to that run's feed).

Each names what is wrong, how much of it, and the first keys, prefixed with their feed; its
`feeds_at_fault` says which feeds' data fails it, and the alert sensor files one alert per
such feed.
"""

from collections.abc import Callable
from datetime import datetime, timedelta

import dagster as dg

from mls_assets.defs.quality.results import check_result, feeds_metadata
from mls_assets.defs.resources import ClockResource, MongoResource, SourceResource
from mls_assets.lib.catalogue import STATUS_COLLECTIONS
from mls_assets.lib.quality import measures
from mls_assets.lib.replication.window import EVERYTHING
from mls_assets.lib.settings import SETTINGS
from mls_assets.lib.store.cursors import read_cursor
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.tenants import read_configs

FRESHNESS_MINUTES = SETTINGS.freshness_minutes
# MongoDB's TTL monitor deletes expired documents once a minute, later under load.
TTL_GRACE = timedelta(minutes=SETTINGS.ttl_grace_minutes)
BUSINESS_HOURS_UTC = SETTINGS.business_hours_utc
COUNT_TOLERANCE = SETTINGS.count_tolerance
ACTIVE_STATUSES = ("Active", "Active Under Contract", "Coming Soon", "Pending")


AUDITED = (
    "raw_listings",
    "flattened_listings",
    "active_listings",
    "closed_listings",
    "expired_listings",
    "listing_photos",
    "expired_listing_photos",
    "crm_linked_properties",
)


@dg.asset(group_name="quality", kinds={"mongodb"}, deps=AUDITED)
def collection_audit(mongo: MongoResource) -> dg.MaterializeResult:
    """The whole-collection audit of every enabled feed: its checks read each feed's stored
    collections (not what one run wrote) and name the feeds whose data fails them."""
    feeds = [str(f.key) for f in read_configs(mongo.get_database()) if f.enabled]
    return dg.MaterializeResult(metadata={"feeds_audited": len(feeds), "first_feeds": feeds[:20]})


def audit(
    mongo: MongoResource,
    measure: Callable[..., measures.Finding],
    what: str,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> dg.AssetCheckResult:
    """`measure(database, feed)` over every enabled feed, reported together, with the feeds at
    fault named."""
    database = mongo.get_database()
    findings = [(str(f.key), measure(database, f.key)) for f in read_configs(database) if f.enabled]
    return check_result(measures.merge_findings(findings), what, severity=severity, by_feed=findings)


def _status_audits(klass: str) -> list[dg.AssetChecksDefinition]:
    spec = STATUS_COLLECTIONS[klass]

    @dg.asset_check(
        asset=collection_audit,
        name=f"{klass}_unique_listing_key",
        description=f"No listingKey is stored twice in any feed's {spec.name} collection.",
    )
    def unique(mongo: MongoResource) -> dg.AssetCheckResult:
        return audit(mongo, lambda db, f: measures.duplicate_keys(db[spec.collection_name(f)]), "duplicated keys")

    @dg.asset_check(
        asset=collection_audit,
        name=f"{klass}_required_fields",
        description=f"Every listing stored in {spec.name} carries listingKey, listingId, standardStatus, "
        "modificationTimestamp, tenantId and mlsProvider.",
    )
    def required(mongo: MongoResource) -> dg.AssetCheckResult:
        return audit(
            mongo,
            lambda db, f: measures.missing_required(db[spec.collection_name(f)]),
            "listings missing a required field",
        )

    return [unique, required]


@dg.asset_check(
    asset=collection_audit,
    name="one_status_collection",
    description="Every stored listing lives in exactly one of the active, closed and expired collections of its feed.",
)
def audit_one_status_collection(mongo: MongoResource) -> dg.AssetCheckResult:
    return audit(mongo, measures.in_several_collections, "listings in more than one status collection")


@dg.asset_check(
    asset=collection_audit,
    name="expires_at_within_retention",
    description="Every stored expiresAt is a BSON date (else the TTL index never fires), none past "
    "by more than the TTL monitor's lag (MLS_TTL_GRACE_MINUTES).",
)
def audit_expires_at(mongo: MongoResource, clock: ClockResource) -> dg.AssetCheckResult:
    cutoff = clock.now() - TTL_GRACE
    spec = STATUS_COLLECTIONS["expired"]
    return audit(
        mongo,
        lambda db, f: measures.bad_expiry(db[spec.collection_name(f)], None, cutoff),
        "expired listings with a bad or past expiresAt",
    )


@dg.asset_check(
    asset=collection_audit,
    name="orphan_or_wiped_photos",
    description="No stored photo without its listing, and no listing with photos whose photos are gone.",
)
def audit_orphan_photos(mongo: MongoResource) -> dg.AssetCheckResult:
    return audit(
        mongo, measures.orphan_photos, "orphan photos or listings missing their photos", dg.AssetCheckSeverity.WARN
    )


@dg.asset_check(
    asset=collection_audit,
    name="crm_links_consistent",
    description="Every CRM link agrees both ways: mls_property_id on the property, crm_property_ids on the listing.",
)
def audit_crm_links(mongo: MongoResource) -> dg.AssetCheckResult:
    return audit(mongo, measures.inconsistent_crm_links, "broken CRM links")


@dg.asset_check(
    asset=collection_audit,
    name="count_matches_source",
    description=f"Each enabled feed's stored (plus quarantined) active listings are within "
    f"{COUNT_TOLERANCE:.0%} of the source's count (_pagination=count; MLS_COUNT_TOLERANCE).",
)
def count_matches_source(mongo: MongoResource, source: SourceResource) -> dg.AssetCheckResult:
    database = mongo.get_database()
    counts, worst = {}, 0.0
    for feed in (f for f in read_configs(database) if f.enabled):
        with source.provider_for(feed) as provider:
            in_source = provider.count(EVERYTHING, statuses=ACTIVE_STATUSES)
        stored = measures.stored_active(database, feed.key, ACTIVE_STATUSES)
        gap = abs(stored - in_source) / in_source if in_source else float(stored > 0)
        counts[str(feed.key)] = {"stored": stored, "source": in_source, "gap": round(gap, 4)}
        worst = max(worst, gap)
    by_feed = [
        (
            feed,
            measures.Finding(1, [f"stored {c['stored']}, source {c['source']}"])
            if c["gap"] > COUNT_TOLERANCE
            else measures.Finding(),
        )
        for feed, c in counts.items()
    ]
    return dg.AssetCheckResult(
        passed=worst <= COUNT_TOLERANCE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"counts": counts, "largest_gap": round(worst, 4), **feeds_metadata(by_feed)},
        description=f"largest gap between stored and source counts: {worst:.1%} (tolerance {COUNT_TOLERANCE:.0%})",
    )


def business_hours(now: datetime) -> bool:
    start, end = BUSINESS_HOURS_UTC
    return start <= now.hour < end if start < end else now.hour >= start or now.hour < end


@dg.asset_check(
    asset=collection_audit,
    name="feed_is_fresh",
    description=f"Each enabled feed was synced (cursor advanced) within {FRESHNESS_MINUTES} minutes "
    "during business hours (MLS_BUSINESS_HOURS_UTC), within a day otherwise.",
)
def feed_is_fresh(mongo: MongoResource, clock: ClockResource) -> dg.AssetCheckResult:
    now = clock.now()
    limit = timedelta(minutes=FRESHNESS_MINUTES) if business_hours(now) else timedelta(days=1)
    ages: dict[str, object] = {}

    def stale(database, feed: FeedKey) -> measures.Finding:
        cursor = read_cursor(database, str(feed))
        age = now - cursor if cursor else None
        ages[str(feed)] = round(age.total_seconds() / 60, 1) if age is not None else "never synced"
        finding = measures.Finding()
        if age is None or age > limit:
            finding.add([str(ages[str(feed)])])
        return finding

    result = audit(mongo, stale, "stale feeds", dg.AssetCheckSeverity.WARN)
    return dg.AssetCheckResult(
        passed=result.passed,
        severity=result.severity,
        description=result.description,
        metadata={**result.metadata, "age_minutes": ages, "limit_minutes": limit.total_seconds() / 60},
    )


AUDIT_CHECKS = [
    *(c for klass in STATUS_COLLECTIONS for c in _status_audits(klass)),
    audit_one_status_collection,
    audit_expires_at,
    audit_orphan_photos,
    audit_crm_links,
    count_matches_source,
    feed_is_fresh,
]
