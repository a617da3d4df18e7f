"""The CRM domain: `crm_linked_properties`, MLS changes carried to every linked CRM property."""

from collections import Counter
from collections.abc import Iterable, Iterator

import dagster as dg

from mls_assets.defs.feed_assets import feed_asset
from mls_assets.defs.io_manager import Streamed
from mls_assets.defs.leases import LeaseResource
from mls_assets.defs.partitions import run_check
from mls_assets.defs.quality.results import check_result
from mls_assets.defs.resources import ClockResource, MongoResource
from mls_assets.lib import crm
from mls_assets.lib.catalogue import CRM_PROPERTIES
from mls_assets.lib.quality import measures
from mls_assets.lib.store.changes import ChangeSet
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.store.writes import SCAN_ABOVE, Patch


@feed_asset(
    CRM_PROPERTIES,
    group="crm",
    changes_of="flattened_listings",
    projection={"_id": 0, "listingKey": 1},
    deps=["active_listings", "closed_listings", "expired_listings"],
    check_specs=[
        run_check(
            "crm_links_consistent",
            asset="crm_linked_properties",
            description="For the listings this run changed, CRM links agree both ways: mls_property_id on the "
            "property, crm_property_ids on the listing.",
        )
    ],
)
def crm_linked_properties(
    context: dg.AssetExecutionContext,
    flattened_listings: ChangeSet,
    mongo: MongoResource,
    clock: ClockResource,
    leases: LeaseResource,
):
    """For every listing changed since this asset last ran, updates the CRM properties
    linked to it with the MLS fields (price, status, beds/baths, address, photos summary,
    mlsLastSyncedAt), keeping every CRM-owned field; a property whose listing left the feed
    is marked `mls_link_broken`; an unchanged listing causes no CRM write. Also completes
    links the CRM made on its side only."""
    database = mongo.get_database()
    now = clock.now()
    outcomes: Counter[str] = Counter({"updated": 0, "unchanged": 0, "broken": 0, "links_completed": 0})
    changed: dict[FeedKey, list[str]] = {feed: [] for feed in flattened_listings.feeds}

    def patches(feed: FeedKey) -> Iterator[Patch]:
        synced: set = set()

        def sync(prop: dict) -> Iterator[Patch]:
            if prop["_id"] in synced:
                return
            synced.add(prop["_id"])
            outcome, patch = crm.property_patch(database, feed, prop, now)
            outcomes[outcome] += 1
            if patch is not None:
                yield patch

        for prop in crm.needing_sync(database, feed):  # linked by the CRM, never synced
            outcomes["links_completed"] += crm.complete_reverse_link(
                database, feed, prop["_id"], prop["mls_property_id"]
            )
            yield from sync(prop)
        every_link = crm.linked_by_listing(database, feed) if flattened_listings.count(feed) > SCAN_ABOVE else None
        for _, batch in flattened_listings.batches(feed):
            keys = [doc["listingKey"] for doc in batch]
            changed[feed].extend(keys)
            if every_link is None:
                linked: Iterable[dict] = crm.linked_to(database, feed, keys)
            else:
                linked = [prop for key in keys for prop in every_link.get(key, ())]
            for prop in linked:
                yield from sync(prop)

    def report() -> dict:
        return {f"properties_{name}": count for name, count in sorted(outcomes.items())}

    yield dg.Output(Streamed({str(feed): patches(feed) for feed in flattened_listings.feeds}, report))
    flattened_listings.commit(context.run.run_id)
    finding = measures.merge_findings(
        (str(f), measures.inconsistent_crm_links(database, f, keys)) for f, keys in changed.items()
    )
    yield check_result(finding, "broken CRM links", "crm_linked_properties", "crm_links_consistent")
