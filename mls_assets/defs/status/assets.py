"""The status domain: every listing in exactly one of the active, closed or expired
collections of its feed, and the history of its status moves.

One multi-asset owns the four collections because they are decided together: where a
listing was stored decides which transition is recorded, and a listing written to one
collection leaves the other two (the IO manager moves it, with its CRM fields, from the
catalogue's siblings). The history is written first: a run that stopped after moving a
listing but before recording the move would otherwise find nothing to record when run
again.
"""

from collections import Counter
from collections.abc import Iterator
from itertools import chain

import dagster as dg

from mls_assets.defs.feed_assets import feed_multi_asset
from mls_assets.defs.io_manager import Streamed
from mls_assets.defs.leases import LeaseResource
from mls_assets.defs.partitions import run_check
from mls_assets.defs.quality.results import check_result
from mls_assets.defs.resources import ClockResource, MongoResource
from mls_assets.lib.catalogue import HISTORY, REJECTS, STATUS_COLLECTIONS
from mls_assets.lib.quality import measures
from mls_assets.lib.replication.quota import Quota
from mls_assets.lib.replication.routing import Places, home_of_listing, transitions
from mls_assets.lib.store.changes import ChangeSet, WriteMarks, current_sequences
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.store.writes import Tombstone
from mls_assets.lib.tenant_admin import feed as configured_feed
from mls_assets.lib.tenant_admin import record_current_listings

ASSET_OF_CLASS = {"active": "active_listings", "closed": "closed_listings", "expired": "expired_listings"}
ROUTING_FIELDS = {
    "_id": 0,
    "listingKey": 1,
    "listingId": 1,
    "standardStatus": 1,
    "statusChangeTimestamp": 1,
    "modificationTimestamp": 1,
}


CHECKS = [
    *(
        run_check("unique_listing_key", asset, "Each listingKey is stored once (a unique index enforces it).", True)
        for asset in ASSET_OF_CLASS.values()
    ),
    *(
        run_check(
            "required_fields",
            asset,
            "The listings this run wrote carry listingKey, listingId, standardStatus, "
            "modificationTimestamp, tenantId and mlsProvider.",
        )
        for asset in ASSET_OF_CLASS.values()
    ),
    run_check(
        "one_status_collection",
        "active_listings",
        "Every listing this run wrote lives in exactly one of the active, closed and expired collections of its feed.",
        blocking=True,
    ),
    run_check(
        "expires_at_is_a_date_within_retention",
        "expired_listings",
        "The expired listings this run wrote carry "
        "`expiresAt` as a BSON date (else the TTL index never fires) in the future.",
    ),
    run_check(
        "within_listing_quota",
        "active_listings",
        "The feed stores no more listings (active, closed and "
        "expired) than its `maxListings`, the agent's plan; `enforceQuota` stops inserting new ones there.",
    ),
]


@feed_multi_asset(
    {
        "listing_status_history": HISTORY,
        **{asset: STATUS_COLLECTIONS[klass] for klass, asset in ASSET_OF_CLASS.items()},
    },
    group="status",
    changes_of="flattened_listings",
    check_specs=CHECKS,
)
def status_collections(
    context: dg.AssetExecutionContext,
    flattened_listings: ChangeSet,
    mongo: MongoResource,
    clock: ClockResource,
    leases: LeaseResource,
):
    """Routes each flattened listing changed since this asset last ran into exactly one
    status collection of its feed, moving it out of the other two, and records each
    observed status transition."""
    database = mongo.get_database()
    now = clock.now()
    feeds = flattened_listings.feeds
    before = current_sequences(database, feeds)
    seen = {"listings": 0, "stale": 0, "moves": Counter(), "routed": Counter()}
    leaving: dict[FeedKey, list[Tombstone]] = {feed: [] for feed in feeds}
    quota = {feed: _quota(database, feed) for feed in feeds}

    def history(feed: FeedKey) -> Iterator[dict]:
        """Pass one, over the routing fields only: the transitions, and who leaves; then the
        same for the listings the quota held back that this run brings in."""
        places = Places(database, feed, expected=flattened_listings.count(feed))

        def examine(batch: list[dict]) -> list[dict]:
            stored = places.of([d["listingKey"] for d in batch])
            quota[feed].stored_keys.update(stored)
            found = transitions(batch, stored, now, context.run.run_id)
            seen["listings"] += len(batch)
            seen["stale"] += found.stale
            seen["moves"].update(f"{e['from']} -> {e['to']}" for e in found.events)
            leaving[feed].extend(
                Tombstone((doc["listingKey"],), doc["modificationTimestamp"])
                for doc in batch
                if home_of_listing(doc, now) is None
            )
            return found.events

        changed: list[str] = []
        for _, batch in flattened_listings.batches(feed, projection=ROUTING_FIELDS):
            if quota[feed].held_before:
                changed.extend(d["listingKey"] for d in batch)
            yield from examine(batch)
        quota[feed].plan_readmission(changed)
        for batch in quota[feed].held_documents(ROUTING_FIELDS):
            quota[feed].forget(d["listingKey"] for d in batch if home_of_listing(d, now) is None)
            yield from examine(batch)

    def summary() -> dict:  # the sync result an operator reads first
        errors = sum(database[REJECTS.collection_name(f)].count_documents({"runId": context.run.run_id}) for f in feeds)
        return {
            "summary": {
                "totalListings": seen["listings"],
                "statusChanges": dict(seen["moves"]),
                "leaving": sum(map(len, leaving.values())),
                "staleSkipped": seen["stale"],
                "errors": errors,
            }
        }

    yield dg.Output(Streamed({str(f): history(f) for f in feeds}, summary), output_name="listing_status_history")

    def routed(feed: FeedKey, klass: str) -> Iterator[dict | Tombstone]:
        """The changed listings that belong in `klass` (read by their class, so each listing
        is read whole once), then the held listings brought in; a tombstone for each that
        belongs nowhere (deleted, or expired beyond the 90-day window)."""
        where = {"statusClass": klass}
        for batch in chain(
            (b for _, b in flattened_listings.batches(feed, where=where)), quota[feed].held_documents(where=where)
        ):
            for doc in batch:
                if home_of_listing(doc, now) == klass:
                    if not quota[feed].admits(doc, now, context.run.run_id):
                        continue
                    seen["routed"][klass] += 1
                    yield doc
        yield from leaving[feed]

    for klass, asset in ASSET_OF_CLASS.items():
        yield dg.Output({str(f): routed(f, klass) for f in feeds}, output_name=asset)
    flattened_listings.commit(context.run.run_id)
    context.log.info(f"routed {dict(seen['routed'])}, transitions {dict(seen['moves'])}")
    quota_findings = []
    for feed in feeds:
        held = quota[feed].settle()
        if quota[feed].skipped or quota[feed].readmitted:
            context.log.warning(
                f"{feed}: {quota[feed].skipped} new listings held back over the quota, "
                f"{quota[feed].readmitted} held ones brought in; {held} held now"
            )
        current = stored_listings(database, feed)
        record_current_listings(database, feed, current)
        quota_findings.append((str(feed), quota[feed].finding(current, held)))
    yield from _checks(database, feeds, before, now, context.run.run_id)
    yield check_result(
        measures.merge_findings(quota_findings),
        "listings over the feed's maxListings",
        "active_listings",
        "within_listing_quota",
        dg.AssetCheckSeverity.WARN,
    )


def _quota(database, feed: FeedKey) -> Quota:
    config = configured_feed(database, feed)
    enforced = config.max_listings is not None and config.enforce_quota
    return Quota.of(
        database, feed, config.max_listings, config.enforce_quota, stored_listings(database, feed) if enforced else 0
    )


def stored_listings(database, feed: FeedKey) -> int:
    """Listings the feed stores in its status collections, as the writers counted them (O(1);
    the quality audit recounts them, which absorbs TTL expiries)."""
    marks = WriteMarks(database)
    return sum(marks.count(database[spec.collection_name(feed)]) for spec in STATUS_COLLECTIONS.values())


def _checks(
    database, feeds: list[FeedKey], before: dict[FeedKey, int], now, run_id: str
) -> Iterator[dg.AssetCheckResult]:
    """The run's own writes (`_seq` beyond the feed's sequence when the run began), checked
    where the rule can break; a collection the run did not write is not read at all.
    Whole-collection audits are the quality domain's scheduled checks."""
    marks = WriteMarks(database)

    def written(spec, feed: FeedKey) -> bool:
        return (marks.last(database[spec.collection_name(feed)]) or 0) > before[feed]

    def scoped(measure, spec) -> measures.Finding:
        return measures.merge_findings(
            (str(f), measure(database[spec.collection_name(f)], f)) for f in feeds if written(spec, f)
        )

    written_keys: dict[FeedKey, dict[str, list[str]]] = {f: {} for f in feeds}  # read once, for both checks

    def required(collection, f: FeedKey, klass: str) -> measures.Finding:
        return measures.missing_required(collection, before[f], written_keys[f].setdefault(klass, []))

    for klass, asset in ASSET_OF_CLASS.items():
        spec = STATUS_COLLECTIONS[klass]
        unique = measures.merge_findings(
            (str(f), measures.key_index_is_unique(database[spec.collection_name(f)], spec)) for f in feeds
        )
        yield check_result(unique, "collections without their unique listingKey index", asset, "unique_listing_key")
        missing = scoped(lambda collection, f, klass=klass: required(collection, f, klass), spec)
        yield check_result(missing, "listings missing a required field", asset, "required_fields")
    twins = measures.merge_findings(
        (
            str(f),
            measures.in_several_collections(
                database, f, {(f, k): before[f] for k in STATUS_COLLECTIONS}, written_keys[f], run_id
            ),
        )
        for f in feeds
        if any(written(spec, f) for spec in STATUS_COLLECTIONS.values())
    )
    yield check_result(twins, "listings in more than one status collection", "active_listings", "one_status_collection")
    expiry = scoped(
        lambda collection, f: measures.bad_expiry(collection, before[f], now), STATUS_COLLECTIONS["expired"]
    )
    yield check_result(
        expiry,
        "expired listings with a bad or past expiresAt",
        "expired_listings",
        "expires_at_is_a_date_within_retention",
    )
