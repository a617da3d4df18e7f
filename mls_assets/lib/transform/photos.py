"""Photos kept aside from the listing: one document per photo with every CDN size."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mls_assets.lib.transform.fields import PHOTO_URI_FIELDS
from mls_assets.lib.transform.naming import camel_case
from mls_assets.lib.transform.values import FieldError, parse_datetime

_URI_NAMES = tuple((name, camel_case(name)) for name in PHOTO_URI_FIELDS)


def extract_photos(
    raw_photos: Any, listing_key: str, listing_id: str, fallback_timestamp: datetime
) -> tuple[list[dict[str, Any]], list[str]]:
    """Photo documents in display order, and warnings for photos that could not be used.

    `fallback_timestamp` (the listing's PhotosChangeTimestamp or ModificationTimestamp)
    dates photos that carry no timestamp of their own.
    """
    if raw_photos is None:
        return [], []
    if not isinstance(raw_photos, list):
        return [], [f"Photos: expected a list, got {type(raw_photos).__name__}"]
    photos: list[dict[str, Any]] = []
    warnings: list[str] = []
    for index, raw in enumerate(raw_photos):
        if not isinstance(raw, dict):
            warnings.append(f"Photos[{index}]: expected an object")
            continue
        uris = {}
        for source, target in _URI_NAMES:
            uri = raw.get(source)
            if type(uri) is str and uri.strip():
                uris[target] = uri
        if not uris:
            warnings.append(f"Photos[{index}]: no image URI")
            continue
        photo: dict[str, Any] = {
            "listingKey": listing_key,
            "listingId": listing_id,
            "photoId": str(raw.get("Id") or f"{listing_key}-{index}"),
            "primary": raw.get("Primary") is True,
            "order": index,
            **uris,
        }
        for source, target in (("Caption", "caption"), ("Name", "name")):
            if isinstance(raw.get(source), str):
                photo[target] = raw[source]
        stamp = fallback_timestamp
        if "ModificationTimestamp" in raw:
            try:
                stamp = parse_datetime("ModificationTimestamp", raw["ModificationTimestamp"])
            except FieldError:
                warnings.append(f"Photos[{index}]: unreadable ModificationTimestamp")
        photo["modificationTimestamp"] = stamp
        photos.append(photo)
    if photos and not any(p["primary"] for p in photos):
        photos[0]["primary"] = True  # Spark marks one; when none is, the first is shown
    return photos, warnings
