"""Which cities a reference asset must rebuild: those whose listings changed since it last
ran (the flattened listings' change sequence), every city of an MLS that lost listings (a
deletion names no city), and everything on its first run or when most cities changed.

A city's figures (medians, centroids, counts of one version per MLS listing across the
tenants that hold it) need all of its listings, so the unit of work is a touched city, read
through the `city` index; untouched cities and feeds are not read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pymongo.database import Database

from mls_assets.lib.catalogue import FLATTENED, HISTORY
from mls_assets.lib.reference.listings import city_id
from mls_assets.lib.reference.names import clean_name
from mls_assets.lib.reference.places import CITIES
from mls_assets.lib.settings import SETTINGS
from mls_assets.lib.store.changes import ChangeSet
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.store.writes import LOOKUP_CHUNK, batched

# When at least this fraction of the known cities changed, every listing is read in one scan
# (on the embedded server, reading most of a collection through an index is slower).
FULL_READ_FRACTION = SETTINGS.reference_full_read_fraction


@dataclass
class CitiesToRebuild:
    """`everything`, or the city ids that changed and how their names are stored."""

    everything: bool
    cities: set[str] = field(default_factory=set)
    spellings: set[str] = field(default_factory=set)
    changed_listings: int = 0
    change_sets: list[ChangeSet] = field(default_factory=list)

    def commit(self, run_id: str) -> None:
        """The rebuild is stored: the next one starts after these changes."""
        for changes in self.change_sets:
            changes.commit(run_id)


def cities_to_rebuild(database: Database, consumer: str, feeds: Iterable[FeedKey]) -> CitiesToRebuild:
    feeds = list(feeds)
    listings = ChangeSet.open(
        database,
        consumer,
        {f: database[FLATTENED.collection_name(f)] for f in feeds},
        projection={"_id": 0, "city": 1, "stateOrProvince": 1},
    )
    history = ChangeSet.open(
        database, consumer, {f: database[HISTORY.collection_name(f)] for f in feeds}, projection={"_id": 0, "to": 1}
    )
    found = CitiesToRebuild(
        everything=all(source.after == 0 for source in listings.sources)
        or database[CITIES].estimated_document_count() == 0,
        change_sets=[listings, history],
    )
    if found.everything:
        return found
    for _, batch in listings.batches():
        for doc in batch:
            found.changed_listings += 1
            city = clean_name(doc.get("city"))
            if city:
                found.cities.add(city_id((clean_name(doc.get("stateOrProvince")) or "na").upper(), city))
                found.spellings.add(doc["city"])
    for feed, _ in history.batches(where={"to": "Deleted"}):  # a deleted listing names no city: all of its MLS
        found.cities.update(d["_id"] for d in database[CITIES].find({"mlsIds": feed.mls}, {"_id": 1}))
    known = database[CITIES].count_documents({})
    if known and len(found.cities) >= FULL_READ_FRACTION * known:
        found.everything = True  # most cities: one scan reads them faster than the city index
        return found
    for chunk in batched(sorted(found.cities), LOOKUP_CHUNK):
        for doc in database[CITIES].find({"_id": {"$in": chunk}}, {"spellings": 1}):
            found.spellings.update(doc.get("spellings") or [])
    return found
