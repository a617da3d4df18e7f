"""Where re-hosted photos are stored and what URL a website shows them at.

Local by default (a folder of this checkout, `.state/media/`, shown as `file://` URLs unless
`MLS_MEDIA_PUBLIC_URL` names a server for it); S3-compatible storage when `MLS_MEDIA_BUCKET`
is set (`MLS_MEDIA_PREFIX`, `MLS_MEDIA_REGION`, `MLS_MEDIA_ENDPOINT` for another S3 API;
credentials from the usual `AWS_*` variables or the instance's role, read by obstore and
never passed through this code, logged or stored). A plain-HTTP endpoint is accepted only on
loopback (a local S3 API in tests).

Keys are stable and safe whatever the MLS's ids look like: each id becomes a readable slug
plus a short hash of the id itself, so `../x` or a 300-character key cannot escape the prefix
or collide with another.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import obstore
from obstore.store import LocalStore, S3Store

from mls_assets.lib.endpoint_policy import is_loopback_url
from mls_assets.lib.paths import state_dir
from mls_assets.lib.settings import SETTINGS, Settings
from mls_assets.lib.store.naming import FeedKey

CONTENT_TYPE = "image/webp"


class MediaStorageError(ValueError):
    """A media storage setting that cannot be used."""


def safe_segment(value: str) -> str:
    """`value` as one path segment: at most 40 readable characters, then 10 of its SHA-256."""
    readable = re.sub(r"[^A-Za-z0-9_-]+", "_", value).strip("_")[:40] or "x"
    return f"{readable}-{hashlib.sha256(value.encode()).hexdigest()[:10]}"


def media_key(feed: FeedKey, listing_key: str, photo_id: str, version: str, variant: str) -> str:
    """`tenant/mls/<listing>/<photo>-<version>/<variant>.webp`: a new version of a photo is a
    new key (a CDN never serves the old bytes), and one listing's media share a prefix."""
    return "/".join(
        (
            safe_segment(feed.tenant),
            safe_segment(feed.mls),
            safe_segment(listing_key),
            f"{safe_segment(photo_id)}-{safe_segment(version)}",
            f"{variant}.webp",
        )
    )


def feed_prefix(feed: FeedKey) -> str:
    """Every stored variant of a feed's photos is under this prefix."""
    return "/".join((safe_segment(feed.tenant), safe_segment(feed.mls))) + "/"


def listing_prefix(feed: FeedKey, listing_key: str) -> str:
    """Every stored variant of a listing's photos is under this prefix."""
    return "/".join((safe_segment(feed.tenant), safe_segment(feed.mls), safe_segment(listing_key))) + "/"


@dataclass(frozen=True)
class MediaStorage:
    """An object store and the public base URL its keys are served under."""

    store: Any  # an obstore store
    public_base_url: str
    where: str  # what an operator is told (bucket and prefix, or folder): no credentials
    typed: bool = True  # the store keeps a Content-Type (object stores do; a folder does not)

    def put(self, key: str, data: bytes) -> None:
        attributes = {"Content-Type": CONTENT_TYPE} if self.typed else None
        obstore.put(self.store, key, data, attributes=attributes)

    def get(self, key: str) -> bytes:
        return bytes(obstore.get(self.store, key).bytes())

    def exists(self, key: str) -> bool:
        try:
            obstore.head(self.store, key)
        except FileNotFoundError:
            return False
        return True

    def keys(self, prefix: str) -> list[str]:
        return [meta["path"] for batch in obstore.list(self.store, prefix=prefix) for meta in batch]

    def delete(self, keys: list[str]) -> int:
        """Delete `keys` (already gone counts as deleted); how many were asked."""
        if keys:
            obstore.delete(self.store, keys)
        return len(keys)

    def url(self, key: str) -> str:
        return f"{self.public_base_url.rstrip('/')}/{key}"


def storage_from_settings(settings: Settings = SETTINGS) -> MediaStorage:
    """The media storage the settings name (a local folder unless `MLS_MEDIA_BUCKET` is set)."""
    if not settings.media_bucket:
        folder = Path(settings.media_dir) if settings.media_dir else state_dir() / "media"
        folder.mkdir(parents=True, exist_ok=True)
        base = settings.media_public_url or folder.resolve().as_uri()
        return MediaStorage(LocalStore(prefix=folder, mkdir=True), base, f"folder {folder}", typed=False)
    config: dict[str, Any] = {}
    options: dict[str, Any] = {}
    if settings.media_region:
        config["region"] = settings.media_region
    if settings.media_endpoint:
        endpoint = settings.media_endpoint
        scheme = urlsplit(endpoint).scheme
        if scheme not in ("https", "http") or (scheme == "http" and not is_loopback_url(endpoint)):
            raise MediaStorageError("MLS_MEDIA_ENDPOINT must be https (plain http only on loopback)")
        config["endpoint"] = endpoint
        options["allow_http"] = scheme == "http"
    prefix = settings.media_prefix.strip("/") or None
    store = S3Store(settings.media_bucket, prefix=prefix, config=config, client_options=options)
    base = settings.media_public_url or _s3_url(settings.media_bucket, settings.media_region, prefix)
    return MediaStorage(store, base, f"bucket {settings.media_bucket}" + (f", prefix {prefix}" if prefix else ""))


def _s3_url(bucket: str, region: str | None, prefix: str | None) -> str:
    host = f"{bucket}.s3.{region}.amazonaws.com" if region else f"{bucket}.s3.amazonaws.com"
    return f"https://{host}" + (f"/{prefix}" if prefix else "")
