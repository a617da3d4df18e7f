"""One Spark listing record -> one flat camelCase document (+ its photos, kept aside).

Rules: StandardFields to camelCase; boolean
dictionaries to `"Pool, Spa"`; schema-numeric strings to numbers; dates and timestamps to
UTC datetimes; slugs, primary photo, land lease details, GeoJSON `location`; the feed's
identity; the status class and, for expired listings, the lead fields.

A value that makes the listing unusable raises `FieldError` (the caller turns it into a
reject); an optional value that cannot be read is dropped and noted in `dataWarnings`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from mls_assets.lib.transform import derive
from mls_assets.lib.transform.fields import (
    INTEGER_FIELDS,
    NUMERIC_FIELDS,
    REQUIRED_FIELDS,
    TEMPORAL_FIELDS,
)
from mls_assets.lib.transform.naming import camel_case
from mls_assets.lib.transform.photos import extract_photos
from mls_assets.lib.transform.screen import is_safe_field_name, is_valid_text, standard_fields
from mls_assets.lib.transform.screen import listing_key as record_key
from mls_assets.lib.transform.status import StatusClass, expired_fields, status_class
from mls_assets.lib.transform.values import FieldError, parse_datetime, parse_number

if TYPE_CHECKING:
    from mls_assets.lib.tenants import FeedConfig

MAX_STRING_LENGTH = 64_000
MAX_NESTING = 16
SKIPPED_FIELDS = {"Photos"}


def _identifier(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise FieldError(name, "missing" if value is None else f"expected text, got {value!r:.60}")
    if not is_valid_text(value):
        raise FieldError(name, "not valid Unicode text")
    if len(value) > 200:
        raise FieldError(name, "longer than 200 characters")
    return value.strip()


def flatten(record: dict[str, Any], feed: FeedConfig, now: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The flat listing document and its photo documents. Input should be `clean()`ed."""
    fields = standard_fields(record)
    for name in REQUIRED_FIELDS:
        if name not in fields and not (name == "ListingKey" and "Id" in record):
            raise FieldError(name, "missing")
    listing_key = record_key(record)
    listing_id = _identifier(fields, "ListingId")
    status = fields["StandardStatus"]
    klass = status_class(status)
    if klass is None:
        raise FieldError("StandardStatus", f"unknown status {status!r:.60}")

    doc: dict[str, Any] = {}
    warnings: list[str] = []
    for name, value in fields.items():
        if name in SKIPPED_FIELDS:
            continue
        if not is_safe_field_name(name):
            warnings.append(f"field name {name!r:.40} is not storable")
            continue
        target = camel_case(name)
        if target in doc:
            warnings.append(f"{name}: duplicate of field {target}")
            continue
        converted = _convert(name, value, warnings, depth=0)
        if converted is not None:
            doc[target] = converted

    doc["listingKey"], doc["listingId"], doc["standardStatus"] = listing_key, listing_id, status.strip()
    doc["statusClass"] = klass.value
    doc["tenantId"], doc["mlsProvider"] = feed.tenant_id, feed.mls
    mls_id = doc.get("mlsId")
    doc["mlsId"] = mls_id if isinstance(mls_id, str) and mls_id else feed.mls_id
    doc["lastSyncedAt"] = now

    location = derive.geo_point(doc.get("latitude"), doc.get("longitude"))
    if location:
        doc["location"] = location
    doc["slugAddress"] = derive.slug_address(doc.get("unparsedAddress"))
    if doc["slugAddress"] is None:
        del doc["slugAddress"]
    doc["slug"] = derive.listing_slug(doc.get("slugAddress"), listing_id, listing_key)
    doc.update(derive.land_details(fields, now))

    photo_stamp = doc.get("photosChangeTimestamp") or doc["modificationTimestamp"]
    photos, photo_warnings = extract_photos(fields.get("Photos"), listing_key, listing_id, photo_stamp)
    warnings.extend(photo_warnings)
    doc["photoCount"] = len(photos)
    primary = derive.primary_photo_url(photos)
    if primary:
        doc["primaryPhotoUrl"] = primary

    if klass is StatusClass.EXPIRED:
        doc.update(expired_fields(doc))
    if warnings:
        doc["dataWarnings"] = warnings[:20]
    return doc, photos


def _convert(name: str, value: Any, warnings: list[str], depth: int) -> Any:
    """A StandardFields value made storable; schema types apply at the top level only
    (nested expansions such as rooms or units are kept as sent)."""
    kind = type(value)
    if depth == 0 and name in NUMERIC_FIELDS:
        return parse_number(name, value, integer=name in INTEGER_FIELDS)
    if depth == 0 and name in TEMPORAL_FIELDS:
        try:
            return parse_datetime(name, value)
        except FieldError as error:
            if name in REQUIRED_FIELDS:
                raise
            warnings.append(str(error))
            return None
    if kind is bool or kind is float or (kind is int and -(2**63) < value < 2**63):
        return value
    if kind is str:
        if len(value) > MAX_STRING_LENGTH:
            warnings.append(f"{name}: text of {len(value)} characters dropped")
            return None
        if not value.isascii() and not is_valid_text(value):
            warnings.append(f"{name}: invalid characters replaced")
            return value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, dict):
        if value and all(isinstance(v, bool) for v in value.values()):
            chosen = ", ".join(str(k) for k, v in value.items() if v)
            return chosen or None  # `{"Pool": true, "Spa": true}` -> "Pool, Spa"
        if depth >= MAX_NESTING:
            warnings.append(f"{name}: nested too deep, dropped")
            return None
        nested = {}
        for key, item in value.items():
            if not is_safe_field_name(key):
                warnings.append(f"{name}: field name {key!r:.40} is not storable")
                continue
            converted = _convert(key, item, warnings, depth + 1)
            if converted is not None:
                nested[camel_case(key)] = converted
        return nested or None
    if isinstance(value, list):
        if depth >= MAX_NESTING:
            warnings.append(f"{name}: nested too deep, dropped")
            return None
        items = [_convert(name + "[]", item, warnings, depth + 1) for item in value]
        items = [item for item in items if item is not None]
        return items or None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63 - 1:
        warnings.append(f"{name}: integer too large for storage, dropped")
        return None
    return value
