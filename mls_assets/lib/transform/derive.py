"""Fields derived from a listing: slugs, primary photo, land lease details, GeoJSON."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from slugify import slugify

from mls_assets.lib.transform.values import FieldError, parse_datetime, parse_number

MAX_SLUG_LENGTH = 120


def slug_address(address: str | None) -> str | None:
    """URL-safe form of the address: `73-450 Country Club Dr` -> `73-450-country-club-dr`."""
    if not address or not isinstance(address, str):
        return None
    return slugify(address, max_length=MAX_SLUG_LENGTH, word_boundary=True) or None


def listing_slug(address_slug: str | None, listing_id: str, listing_key: str) -> str:
    """Stable and unique within a feed: the address slug plus the listing's own id, so two
    listings at one address (a relisting, a unit) never collide."""
    suffix = slugify(str(listing_id or listing_key), max_length=40) or slugify(listing_key)
    return f"{address_slug}-{suffix}" if address_slug else suffix


def primary_photo_url(photos: list[dict[str, Any]]) -> str | None:
    """The primary photo's best display size, else the first photo's."""
    if not photos:
        return None
    chosen = next((p for p in photos if p.get("primary")), photos[0])
    for size in ("uri1024", "uri800", "uri640", "uriLarge", "uri1280", "uri300", "uriThumb"):
        if chosen.get(size):
            return chosen[size]
    return None


def geo_point(latitude: Any, longitude: Any) -> dict | None:
    """GeoJSON Point `[lng, lat]`, only for finite, in-range, non-null-island coordinates."""
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (latitude, longitude)):
        return None
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        return None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    if latitude == 0 and longitude == 0:
        return None
    return {"type": "Point", "coordinates": [float(longitude), float(latitude)]}


_LEASE_MONTHLY = {"month", "monthly", "mo", "per month"}
_LEASE_YEARLY = {"year", "yearly", "annual", "annually", "yr", "per year"}


def land_details(fields: dict[str, Any], now: datetime) -> dict[str, Any]:
    """`landType` Fee|Lease and, for leased land, amount, period, expiration, years left.

    Leased land shows up as `LandLeaseYN`, a lease amount, or `Lease` in the land/ownership
    type, depending on the MLS.
    """
    land_type_text = " ".join(str(fields.get(name, "")) for name in ("LandType", "LandTenure", "OwnershipType")).lower()
    amount = fields.get("LandLeaseAmount")
    leased = (
        fields.get("LandLeaseYN") is True
        or str(fields.get("LandLeaseYN", "")).lower() in {"true", "yes", "y"}
        or "lease" in land_type_text
        or (amount is not None and amount != 0)
    )
    if not leased:
        return {"landType": "Fee"}
    details: dict[str, Any] = {"landType": "Lease"}
    if amount is not None:
        details["landLeaseAmount"] = parse_number("LandLeaseAmount", amount, integer=False)
    frequency = str(fields.get("LandLeaseAmountFrequency", "")).strip().lower()
    if frequency in _LEASE_MONTHLY:
        details["landLeasePer"] = "Month"
    elif frequency in _LEASE_YEARLY:
        details["landLeasePer"] = "Year"
    expiration = fields.get("LandLeaseExpirationDate")
    if expiration is not None:
        try:
            expires = parse_datetime("LandLeaseExpirationDate", expiration)
        except FieldError:
            expires = None
        if expires is not None:
            details["landLeaseExpirationDate"] = expires
            remaining = (expires - now).days / 365.25
            details["landLeaseYearsRemaining"] = max(0.0, round(remaining, 1))
    return details
