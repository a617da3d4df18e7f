"""The photo plan against the real server: a stored set is recognised by any of its photos."""

import uuid
from datetime import UTC, datetime

from mls_assets.lib.catalogue import PHOTOS
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
