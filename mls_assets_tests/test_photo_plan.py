"""The photo plan against the real server: a stored set is recognised by any of its photos;
the run's photo check reads a bounded spread of its listings."""

import uuid
from datetime import UTC, datetime

from mls_assets.defs.photos.assets import CHECKED_LISTINGS, checked_listings
from mls_assets.lib.catalogue import EXPIRED_PHOTOS, PHOTOS
from mls_assets.lib.replication.photos import plan_photos
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.store.writes import CollectionWriter, Tombstone

FEED = FeedKey("jpsrealtor", "gps")
T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)


def raw_listing(key: str) -> dict:
    """A listing whose first photo has no usable URI: its set starts at order 1."""
    photos = [
        {"Id": f"{key}-a", "Caption": "no uri"},
        {"Id": f"{key}-b", "UriLarge": f"https://cdn.example/{key}/b.jpg"},
        {"Id": f"{key}-c", "Uri300": f"https://cdn.example/{key}/c.jpg"},
    ]
    fields = {"ListingKey": key, "ListingId": f"id-{key}", "PhotosChangeTimestamp": T0.isoformat(), "Photos": photos}
    return {"listingKey": key, "modificationTimestamp": T0, "record": {"StandardFields": fields}}


def test_a_set_without_a_first_photo_is_neither_rewritten_nor_left_behind(mongo_db):
    raws = [raw_listing("L1"), raw_listing("L2")]
    planned = list(plan_photos(mongo_db, FEED, PHOTOS, raws, {"L1": "active", "L2": "closed"}, empty=True))
    assert sorted(p["order"] for p in planned if p["listingKey"] == "L1") == [1, 2]
    collection = mongo_db[PHOTOS.collection_name(FEED)]
    CollectionWriter(collection, PHOTOS, run_id=uuid.uuid4().hex).write(planned)
    assert collection.count_documents({}) == 4

    # the same sets again: recognised although no photo has order 0, so nothing is written
    assert list(plan_photos(mongo_db, FEED, PHOTOS, raws, {"L1": "active", "L2": "closed"}, empty=False)) == []
    # L1 expired: its set leaves this collection (an orphan otherwise); L2 stays untouched
    moved = list(plan_photos(mongo_db, FEED, PHOTOS, raws, {"L1": "expired", "L2": "closed"}, empty=False))
    assert moved == [Tombstone(("L1",))]


def test_a_run_checks_the_photos_of_a_bounded_spread_of_its_listings():
    """A first sync of 8.7k listings checks 500 of them, the same ones whatever the order,
    spread over the feed; a small run checks all (the scheduled audit reads every one)."""
    keys = [f"20260101{n:010d}" for n in range(8749)]
    checked = checked_listings(keys)
    assert len(checked) == CHECKED_LISTINGS == 500 and set(checked) <= set(keys)
    assert sorted(checked) == sorted(checked_listings(list(reversed(keys))))
    position = {key: n for n, key in enumerate(keys)}
    assert min(position[k] for k in checked) < 200 and max(position[k] for k in checked) > 8500
    assert checked_listings(keys[:50]) == keys[:50]


def test_photos_carry_the_listing_id_their_flattened_listing_has():
    """Padded text and a number, as a source may send them: the photos' `listingId` is the
    listing's (the flattening strips text and writes numbers as text)."""
    padded, numbered = raw_listing("L1"), raw_listing("L2")
    padded["record"]["StandardFields"]["ListingId"] = "  id-L1 "
    numbered["record"]["StandardFields"]["ListingId"] = 1234
    planned = list(plan_photos(None, FEED, PHOTOS, [padded, numbered], {"L1": "active", "L2": "active"}, empty=True))
    assert {p["listingKey"]: p["listingId"] for p in planned} == {"L1": "id-L1", "L2": "1234"}


def test_a_record_without_photos_brings_its_set_along_unless_the_other_collection_began_empty(mongo_db):
    """L1 moved from expired to active, its record without the Photos expansion: the set
    stored with the expired photos moves in. Had that collection been empty when the run
    began, nothing could move in, and nothing is read."""
    raws = [raw_listing("L1")]
    expired_photos = plan_photos(mongo_db, FEED, EXPIRED_PHOTOS, raws, {"L1": "expired"}, empty=True, expires_at={})
    CollectionWriter(mongo_db[EXPIRED_PHOTOS.collection_name(FEED)], EXPIRED_PHOTOS, run_id="r1").write(expired_photos)
    del raws[0]["record"]["StandardFields"]["Photos"]
    moved = list(plan_photos(mongo_db, FEED, PHOTOS, raws, {"L1": "active"}, empty=True))
    assert sorted(p["order"] for p in moved) == [1, 2] and all("expiresAt" not in p for p in moved)
    assert list(plan_photos(None, FEED, PHOTOS, raws, {"L1": "active"}, empty=True, sibling_empty=True)) == []
