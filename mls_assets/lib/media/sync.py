"""Re-hosting a feed's photos: each new or changed photo downloaded once, rendered to the
WebP variants and stored; its photo document told where they are; media nobody shows any
more removed from storage.

The state of every photo is one document of `{t}_{m}_photo_media` (`PHOTO_MEDIA`, keyed by
the photo's id): the version it was made from (its source URL and modification time), `ok`
with each variant's key, size and bytes, or `failed` with a reason, a retry count and when
to try again (`pending`: found but left for a later run by the per-run budget). The photo
documents in `photos` / `expired_photos` carry a copy (`media`) a website reads; those are
replaced whole when a listing's photo set changes, so the copy is written again from the
state (no download) whenever it is missing or stale.

What a run looks at is bounded by what changed: the listings whose raw records changed since
the media asset last ran (its `ChangeSet`), the listings with photos due for a retry or left
pending, the listings a deletion removed (`mark_gone`), and the expired listings whose
`expiresAt` has passed (the TTL removes their photos). A run with nothing changed reads a few
index entries and downloads nothing.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import DeleteOne, ReplaceOne, UpdateOne
from pymongo.database import Database

from mls_assets.lib.catalogue import EXPIRED_PHOTOS, PHOTO_MEDIA, PHOTOS
from mls_assets.lib.media.download import PhotoDownloader
from mls_assets.lib.media.images import ImageRejected, Limits, render_variants
from mls_assets.lib.media.storage import MediaStorage, media_key
from mls_assets.lib.store.indexes import ensure_indexes
from mls_assets.lib.store.lookup import GROUP_IN_CHUNK
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.store.writes import LOOKUP_CHUNK, batched

# The photo's own URL to download: the largest size the source gives (the large variant is
# 1920x1440 and never upscaled). RESO's one `MediaURL` is `uriLarge`.
SOURCE_SIZES = ("uriLarge", "uri2048", "uri1600", "uri1280", "uri1024", "uri800", "uri640", "uri300", "uriThumb")
PHOTO_COLLECTIONS = (PHOTOS, EXPIRED_PHOTOS)
RETRY_FIRST = timedelta(minutes=5)
RETRY_MOST = timedelta(hours=24)
PHOTO_FIELDS = {"_id": 1, "listingKey": 1, "modificationTimestamp": 1, "expiresAt": 1, "media": 1} | {
    size: 1 for size in SOURCE_SIZES
}


def source_url(photo: dict[str, Any]) -> str | None:
    return next((photo[size] for size in SOURCE_SIZES if isinstance(photo.get(size), str)), None)


def photo_version(url: str, modified: Any) -> str:
    """What makes a photo "the same": its source URL and modification time."""
    stamp = modified.isoformat() if isinstance(modified, datetime) else str(modified)
    return hashlib.blake2b(f"{url}|{stamp}".encode(), digest_size=8).hexdigest()


def retry_delay(attempts: int) -> timedelta:
    """5 minutes, then x4 per attempt, at most a day."""
    return min(RETRY_MOST, RETRY_FIRST * 4 ** max(0, attempts - 1))


def media_collection(database: Database, feed: FeedKey):
    return database[PHOTO_MEDIA.collection_name(feed)]


def ensure_media_collection(database: Database, feed: FeedKey) -> None:
    """Made by the feed's first media run (not at registration: most of a fleet's cost is
    collections nobody has written yet)."""
    ensure_indexes(media_collection(database, feed), PHOTO_MEDIA.all_indexes())


def mark_gone(database: Database, feed: FeedKey, listing_keys: Iterable[str]) -> int:
    """The media of these listings (deleted at the source, removed by the sweep) are to be
    removed by the next media run; how many photos."""
    collection = media_collection(database, feed)
    return sum(
        collection.update_many({"listingKey": {"$in": chunk}}, {"$set": {"gone": True}}).modified_count
        for chunk in batched(sorted(set(listing_keys)), LOOKUP_CHUNK)
    )


def listings_due(database: Database, feed: FeedKey, now: datetime) -> set[str]:
    """Listings a run must look at whatever changed: retries and pending photos whose time
    has come, media marked gone, and expired listings' media whose `expiresAt` passed."""
    collection = media_collection(database, feed)
    queries = ({"nextAttemptAt": {"$lte": now}}, {"gone": True}, {"expiresAt": {"$lte": now}})
    return {doc["listingKey"] for query in queries for doc in collection.find(query, {"_id": 0, "listingKey": 1})}


def next_due(database: Database, feed: FeedKey) -> datetime | None:
    """When this feed's next retry or pending photo is due (None: nothing waits)."""
    doc = media_collection(database, feed).find_one(
        {"nextAttemptAt": {"$ne": None}}, {"_id": 0, "nextAttemptAt": 1}, sort=[("nextAttemptAt", 1)]
    )
    return _aware(doc["nextAttemptAt"]) if doc else None


@dataclass
class MediaReport:
    """What one feed's media run did."""

    listings_looked_at: int = 0
    photos_seen: int = 0
    downloaded: int = 0
    stored: int = 0
    failed: Counter = field(default_factory=Counter)
    pending: int = 0
    stamped: int = 0
    objects_deleted: int = 0
    bytes_stored: int = 0

    def as_metadata(self) -> dict[str, Any]:
        return {
            "listings_looked_at": self.listings_looked_at,
            "photos_seen": self.photos_seen,
            "downloaded": self.downloaded,
            "stored": self.stored,
            "failed": sum(self.failed.values()),
            "failed_by_reason": dict(sorted(self.failed.items())),
            "left_pending": self.pending,
            "photo_documents_updated": self.stamped,
            "objects_deleted": self.objects_deleted,
            "bytes_stored": self.bytes_stored,
        }


@dataclass(frozen=True)
class _Work:
    photo_id: str
    listing_key: str
    url: str
    version: str
    attempts: int


class MediaSync:
    """One feed's media run: `run(changed_listing_keys)`."""

    def __init__(
        self,
        database: Database,
        feed: FeedKey,
        storage: MediaStorage,
        downloader: PhotoDownloader,
        now: datetime,
        *,
        budget: int,
        workers: int = 8,
        max_attempts: int = 6,
        limits: Limits = Limits(),
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.database, self.feed, self.storage, self.downloader = database, feed, storage, downloader
        self.now, self.budget, self.workers, self.max_attempts, self.limits = now, budget, workers, max_attempts, limits
        self.log = log or (lambda message: None)
        self.state = media_collection(database, feed)
        self.report = MediaReport()
        # Downloads wait on the network, renders on a core: `workers` photos are fetched at once,
        # but only one per core is decoded at once (a decoded 2048x1536 photo and its copies
        # weigh ~30 MB: eight at once on two cores cost 400 MiB and no speed).
        self._rendering = threading.BoundedSemaphore(max(1, min(workers, os.cpu_count() or 1)))

    def run(self, changed: Iterable[str]) -> MediaReport:
        ensure_media_collection(self.database, self.feed)
        keys = sorted(set(changed) | listings_due(self.database, self.feed, self.now))
        self.report.listings_looked_at = len(keys)
        for chunk in batched(keys, LOOKUP_CHUNK * 5):
            self._listings(chunk)
        return self.report

    def _listings(self, keys: list[str]) -> None:
        photos: dict[str, tuple[str, dict[str, Any]]] = {}  # photo id -> (collection name, document)
        for spec in PHOTO_COLLECTIONS:
            name = spec.collection_name(self.feed)
            for chunk in batched(keys, GROUP_IN_CHUNK):  # each key matches its whole photo set
                for doc in self.database[name].find({"listingKey": {"$in": chunk}}, PHOTO_FIELDS):
                    expires = doc.get("expiresAt")
                    if isinstance(expires, datetime) and _aware(expires) <= self.now:
                        continue  # the TTL is about to remove it: its media go with it
                    photos[str(doc["_id"])] = (name, doc)
        states: dict[str, dict[str, Any]] = {}
        for chunk in batched(keys, LOOKUP_CHUNK):
            for doc in self.state.find({"listingKey": {"$in": chunk}}):
                states[str(doc["_id"])] = doc
        self.report.photos_seen += len(photos)

        # Media no photo shows any more: of photos gone (replaced, deleted, expired), or of a
        # deleted listing's photos (a listing relisted since gets its media made again).
        superseded = {i: s for i, s in states.items() if i not in photos or s.get("gone")}
        work, stamps = [], []
        for photo_id, (collection, photo) in photos.items():
            url = source_url(photo)
            if url is None:
                continue
            version = photo_version(url, photo.get("modificationTimestamp"))
            state = states.get(photo_id)
            if state is not None and (state.get("version") != version or state.get("gone")):
                superseded[photo_id] = state
                state = None
            if state is None or self._due(state):
                attempts = state.get("attempts", 0) if state is not None and state["status"] == "failed" else 0
                work.append((collection, photo, _Work(photo_id, photo["listingKey"], url, version, attempts)))
            elif _stale_copy(photo.get("media"), state) or _expiry_moved(photo, state):
                stamps.append((collection, photo, state))
        self._remove(list(superseded.values()))
        self._stamp(stamps)
        if work:
            self._process(work)

    def _due(self, state: dict[str, Any]) -> bool:
        if state["status"] == "ok":
            return False
        due_at = state.get("nextAttemptAt")
        return due_at is not None and _aware(due_at) <= self.now

    def _remove(self, states: list[dict[str, Any]]) -> None:
        """Their stored variants deleted, then their state: nothing is left that no photo shows."""
        if not states:
            return
        keys = sorted({variant["key"] for state in states for variant in (state.get("variants") or {}).values()})
        for chunk in batched(keys, 500):
            self.report.objects_deleted += self.storage.delete(chunk)
        self.state.bulk_write([DeleteOne({"_id": state["_id"]}) for state in states], ordered=False)

    def _stamp(self, stamps: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
        """The photo documents' copies written again from the state (after their set was
        replaced, or an expired listing's `expiresAt` moved): no download."""
        self._write_copies(stamps)
        updates = [UpdateOne({"_id": s["_id"]}, {"$set": {"expiresAt": p.get("expiresAt")}}) for _, p, s in stamps]
        if updates:
            self.state.bulk_write(updates, ordered=False)

    def _write_copies(self, items: Iterable[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
        """Each `(photo collection, photo, state)`: the photo document's `media` from its state."""
        by_collection: dict[str, list[UpdateOne]] = {}
        for collection, photo, state in items:
            by_collection.setdefault(collection, []).append(
                UpdateOne({"_id": photo["_id"]}, {"$set": {"media": self._copy(state)}})
            )
        for collection, updates in by_collection.items():
            self.report.stamped += self.database[collection].bulk_write(updates, ordered=False).modified_count

    def _copy(self, state: dict[str, Any]) -> dict[str, Any]:
        """What the photo document shows: each variant's URL and size, or why there is none."""
        if state["status"] == "ok":
            return {
                "status": "ok",
                "version": state["version"],
                "variants": {
                    name: {
                        "url": self.storage.url(variant["key"]),
                        "width": variant["width"],
                        "height": variant["height"],
                        "bytes": variant["bytes"],
                    }
                    for name, variant in state["variants"].items()
                },
            }
        return {
            "status": state["status"],
            "version": state["version"],
            "reason": state.get("reason"),
            "attempts": state.get("attempts", 0),
        }

    def _process(self, work: list[tuple[str, dict[str, Any], _Work]]) -> None:
        """Within the run's budget: download, render and store, many at once (the downloader
        keeps each host's share polite); the rest recorded as pending for the next run."""
        now_work, later = work[: self.budget], work[self.budget :]
        self.budget -= len(now_work)
        states: list[dict[str, Any]] = []
        with ThreadPoolExecutor(self.workers) as pool:
            for (_, photo, _), state in zip(now_work, pool.map(self._one, [w for _, _, w in now_work]), strict=True):
                state["expiresAt"] = photo.get("expiresAt")
                states.append(state)
                self._count(state)
        for _, photo, item in later:
            states.append(self._state(item, "pending", expires=photo.get("expiresAt"), due=self.now, reason=None))
            self.report.pending += 1
        self.state.bulk_write([ReplaceOne({"_id": s["_id"]}, s, upsert=True) for s in states], ordered=False)
        self._write_copies(
            (collection, photo, state) for (collection, photo, _), state in zip(work, states, strict=True)
        )

    def _count(self, state: dict[str, Any]) -> None:
        self.report.downloaded += state.pop("_downloaded", False)
        if state["status"] == "ok":
            self.report.stored += 1
            self.report.bytes_stored += sum({v["key"]: v["bytes"] for v in state["variants"].values()}.values())
        else:
            self.report.failed[state["reason"]] += 1

    def _one(self, item: _Work) -> dict[str, Any]:
        """One photo's new state; never raises for the photo's own faults."""
        download = self.downloader.fetch(item.url)
        if not download.ok:
            return self._failed(item, download.reason or "unreachable")
        try:
            with self._rendering:
                rendered = render_variants(download.content, download.content_type, self.limits)
        except ImageRejected as rejected:
            return self._failed(item, rejected.reason, downloaded=True)
        variants: dict[str, dict[str, Any]] = {}
        try:
            previous = None
            for name, image in rendered.items():
                if previous is not None and (previous["width"], previous["height"]) == (image.width, image.height):
                    variants[name] = previous  # a small photo: the larger variant is this one, stored once
                    continue
                key = media_key(self.feed, item.listing_key, item.photo_id, item.version, name)
                self.storage.put(key, image.data)
                previous = {"key": key, "width": image.width, "height": image.height, "bytes": len(image.data)}
                variants[name] = previous
        except Exception as error:  # noqa: BLE001 - storage trouble is this photo's failure, retried later
            self.log(f"storing photo {item.photo_id} failed: {type(error).__name__}")
            if variants:
                self.storage.delete(sorted({v["key"] for v in variants.values()}))
            return self._failed(item, "storage", downloaded=True)
        return self._state(item, "ok", variants=variants, _downloaded=True)

    def _failed(self, item: _Work, reason: str, downloaded: bool = False) -> dict[str, Any]:
        attempts = item.attempts + 1
        due = self.now + retry_delay(attempts) if attempts < self.max_attempts else None
        return self._state(item, "failed", reason=reason, attempts=attempts, due=due, _downloaded=downloaded)

    def _state(self, item: _Work, status: str, *, expires: Any = None, due: datetime | None = None, **fields: Any):
        return {
            "_id": item.photo_id,
            "listingKey": item.listing_key,
            "version": item.version,
            "sourceUrl": item.url,
            "status": status,
            "attempts": fields.pop("attempts", item.attempts),
            "nextAttemptAt": due,
            "updatedAt": self.now,
            "expiresAt": expires,
            **fields,
        }


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _stale_copy(copy: Any, state: dict[str, Any]) -> bool:
    return (
        not isinstance(copy, dict) or copy.get("version") != state["version"] or copy.get("status") != state["status"]
    )


def _expiry_moved(photo: dict[str, Any], state: dict[str, Any]) -> bool:
    return photo.get("expiresAt") != state.get("expiresAt")


def coverage(database: Database, feed: FeedKey, now: datetime) -> dict[str, Any]:
    """The feed's photos with their variants stored, as a share; failures by reason."""
    photos = sum(
        database[spec.collection_name(feed)].count_documents(
            {"$or": [{"expiresAt": None}, {"expiresAt": {"$gt": now}}]} if spec is EXPIRED_PHOTOS else {}
        )
        for spec in PHOTO_COLLECTIONS
    )
    state = media_collection(database, feed)
    by_status = Counter()
    reasons = Counter()
    for row in state.aggregate(
        [{"$match": {"gone": {"$ne": True}}}, {"$group": {"_id": {"s": "$status", "r": "$reason"}, "n": {"$sum": 1}}}]
    ):
        by_status[row["_id"]["s"]] += row["n"]
        if row["_id"]["s"] == "failed":
            reasons[row["_id"].get("r") or "unknown"] += row["n"]
    return {
        "photos": photos,
        "with_variants": by_status["ok"],
        "failing": by_status["failed"],
        "waiting": by_status["pending"],
        "failed_by_reason": dict(sorted(reasons.items())),
        "coverage": round(by_status["ok"] / photos, 4) if photos else 1.0,
    }
