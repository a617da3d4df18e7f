"""The status collections: every listing in exactly one of active, closed or expired.

One multi-asset routes the partition's flattened listings, because the three
collections and the status history are decided together: where a listing lived before
decides where it moves from and which transition is recorded.
"""

from collections import Counter, defaultdict

import dagster as dg

from mls_assets.defs.failures import fails_clearly
from mls_assets.defs.leases import LeaseResource
from mls_assets.defs.partitions import feed_day_partitions, split_key
from mls_assets.defs.policies import SINGLE_RUN_BACKFILL
from mls_assets.defs.resources import ClockResource, MongoResource
from mls_assets.lib.crm import break_links
from mls_assets.lib.replication.collections import (
    ACTIVE,
    CLOSED,
    EXPIRED,
    FLATTENED,
    HISTORY,
    INDEXES,
    REJECTS,
)
from mls_assets.lib.replication.routing import Routed, route, stored_versions
from mls_assets.lib.store.documents import CommitAfterWrite
from mls_assets.lib.store.merge import MergeSpec, clear_pending, evict
from mls_assets.lib.tenants import feed_config
from mls_assets.lib.transform.fields import CRM_OWNED_FIELDS

COLLECTIONS = {"active_listings": ACTIVE, "closed_listings": CLOSED, "expired_listings": EXPIRED}
LISTING_KEY = MergeSpec(("listingKey",), "modificationTimestamp")


def _storage(name: str) -> dict:
    siblings = [other for other in COLLECTIONS.values() if other != name]
    return {
        "collection": "{tenant}_{mls}_" + name,
        "key_fields": ["listingKey"],
        "version_field": "modificationTimestamp",
        "protected_fields": list(CRM_OWNED_FIELDS),
        "volatile_fields": ["lastSyncedAt"],
        "evicts_from": ["{tenant}_{mls}_" + other for other in siblings],
        "indexes": INDEXES[name],
    }


HISTORY_STORAGE = {
    "collection": "{tenant}_{mls}_" + HISTORY,
    "key_fields": ["listingKey", "at", "to"],
    "indexes": INDEXES[HISTORY],
}
DESCRIPTIONS = {
    "active_listings": "On-market listings (Active, Active Under Contract, Pending, Coming Soon).",
    "closed_listings": "Closed (sold) listings.",
    "expired_listings": "Expired, Canceled and Withdrawn listings within 90 days of their status "
    "change: `expiresAt` is a BSON date with a TTL index; lead fields are set on insert only.",
}


@dg.multi_asset(
    partitions_def=feed_day_partitions,
    backfill_policy=SINGLE_RUN_BACKFILL,
    group_name="status",
    ins={"flattened_listings": dg.AssetIn(metadata={"load_as": "batches", "pending_only": "status"})},
    outs={
        **{
            name: dg.AssetOut(description=DESCRIPTIONS[name], metadata=_storage(collection), kinds={"mongodb"},
                              is_required=True)  # fmt: skip
            for name, collection in COLLECTIONS.items()
        },
        "listing_status_history": dg.AssetOut(
            description="Append-only status transitions {listingKey, from, to, at, partition, runId}.",
            metadata=HISTORY_STORAGE, kinds={"mongodb"},
        ),  # fmt: skip
    },
)
@fails_clearly
def status_collections(context: dg.AssetExecutionContext, flattened_listings, mongo: MongoResource,
                       clock: ClockResource, leases: LeaseResource):  # fmt: skip
    """Routes each flattened listing of the partition (those changed since it last ran) into exactly one status collection
    of its feed, moving it out of the other two, and records each observed transition."""
    database = mongo.get_database()
    now = clock.now()
    leases.hold_feeds(context)
    by_class: dict[str, list] = defaultdict(list)
    history: list[dict] = []
    removed = stale = out_of_window = 0
    transitions: Counter[str] = Counter()
    processed: dict[str, list] = defaultdict(list)
    feeds = {}
    leaving: dict[str, list] = defaultdict(list)
    for batch in flattened_listings:
        per_feed: dict[str, list] = defaultdict(list)
        for doc in batch:
            per_feed[split_key(doc["_partitionKey"])[0]].append(doc)
        for feed_key, docs in per_feed.items():
            feed = feeds.setdefault(feed_key, feed_config(database, feed_key))
            processed[feed_key].extend((d["listingKey"],) for d in docs)
            stored = stored_versions(database, feed, [d["listingKey"] for d in docs])
            routed: Routed = route(docs, stored, now, context.run.run_id)
            for klass, routed_docs in routed.by_class.items():
                by_class[klass].extend(routed_docs)
            history.extend(routed.transitions)
            transitions.update(f"{t['from']} -> {t['to']}" for t in routed.transitions)
            stale += routed.stale
            out_of_window += routed.out_of_window
            leaving[feed_key].extend(routed.leaving)

    partitions = [str(k) for k in context.partition_keys]
    errors = sum(database[f.collection(REJECTS)].count_documents({"partition": {"$in": partitions}})
                 for f in feeds.values())  # fmt: skip
    summary = {  # seed 003's sync result
        "totalListings": sum(len(v) for v in processed.values()),
        "routed": {klass: len(docs) for klass, docs in by_class.items()},
        "statusChanges": dict(transitions),
        "errors": errors,
    }
    # The history first: a run that stops after moving a listing but before recording the
    # move would find nothing to record when run again (the listing already sits in its new
    # collection). Recorded first, a rerun records the same event again, idempotently.
    yield dg.Output(history, output_name="listing_status_history",
                    metadata={"transitions": dict(transitions), "events": len(history), "summary": summary})  # fmt: skip
    for feed_key, docs in leaving.items():
        for name in COLLECTIONS.values():
            removed += evict(database[feeds[feed_key].collection(name)], docs, LISTING_KEY)
        break_links(database, feeds[feed_key].key, [d["listingKey"] for d in docs])
    context.log.info(f"routed {sum(map(len, by_class.values()))}, removed {removed}, transitions {dict(transitions)}")

    def routed_everything() -> None:  # after the last output is stored
        for feed_key, keys in processed.items():
            clear_pending(database[feeds[feed_key].collection(FLATTENED)], "status", keys, LISTING_KEY)

    common = {"stale_skipped": stale, "removed_from_all": removed, "out_of_retention": out_of_window}
    outputs = (("active_listings", "active"), ("closed_listings", "closed"), ("expired_listings", "expired"))
    for n, (name, klass) in enumerate(outputs):
        data = by_class[klass] if n < len(outputs) - 1 else CommitAfterWrite(by_class[klass], on_commit=routed_everything)
        yield dg.Output(data, output_name=name, metadata={"routed": len(by_class[klass]), **common})
