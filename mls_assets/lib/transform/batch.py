"""Streaming batch transform: raw records in, flattened documents, photos and rejects out.

One bad record never stops a batch: whatever goes wrong with a record becomes
a reject `{listingKey?, reason, field, raw}` that the pipeline stores for a data
engineer to look at.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from mls_assets.lib.transform.flatten import flatten
from mls_assets.lib.transform.hashing import source_content_hash
from mls_assets.lib.transform.schemas import FlatListing, Photo
from mls_assets.lib.transform.screen import key_or_none, screen
from mls_assets.lib.transform.values import FieldError

if TYPE_CHECKING:
    from mls_assets.lib.tenants import FeedConfig

MAX_RAW_CHARS = 20_000
_LISTING_FIELDS = tuple(FlatListing.model_fields)
_PHOTOS = TypeAdapter(list[Photo])


@dataclass
class TransformResult:
    """The outcome for one raw record: a listing with its photos, or a reject."""

    listing: dict[str, Any] | None = None
    photos: list[dict[str, Any]] = field(default_factory=list)
    reject: dict[str, Any] | None = None


def make_reject(record: Any, reason: str, field_name: str | None, now: datetime) -> dict:
    return {
        "listingKey": key_or_none(record),
        "reason": reason,
        "field": field_name,
        "raw": _raw_text(record),
        "rejectedAt": now,
    }


def _raw_text(record: Any) -> str:
    """The record as JSON text, cut to a readable size (a reject must always be storable)."""
    try:
        text = json.dumps(record, default=str, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as error:
        text = f"<unserialisable record: {error}>"
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
    return text if len(text) <= MAX_RAW_CHARS else text[:MAX_RAW_CHARS] + "...(truncated)"


def transform_record(record: Any, feed: FeedConfig, now: datetime, *, screened: bool = False) -> TransformResult:
    """screen -> flatten -> contentHash -> validate, never raising. `screened=True` skips the
    screen for records that passed it already (those stored by raw_listings)."""
    try:
        cleaned_record = record if screened else screen(record, now).record
        listing, photos = flatten(cleaned_record, feed, now)
        listing["contentHash"] = source_content_hash(cleaned_record)
        FlatListing.model_validate({k: listing[k] for k in _LISTING_FIELDS if k in listing})
        if photos:
            _PHOTOS.validate_python(photos)  # other fields are ignored, not copied out first
        return TransformResult(listing=listing, photos=photos)
    except FieldError as error:
        return TransformResult(reject=make_reject(record, error.reason, error.field, now))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return TransformResult(reject=make_reject(record, first["msg"], where, now))
    except RecursionError:
        return TransformResult(reject=make_reject(record, "nested too deep", None, now))
    except Exception as error:  # a bug, not bad data: still never lose the record
        reason = f"internal error: {type(error).__name__}: {error}"
        return TransformResult(reject=make_reject(record, reason, None, now))


def transform_records(records: Iterable[Any], feed: FeedConfig, now: datetime) -> Iterator[TransformResult]:
    """Transform a stream of raw records lazily, one result per record."""
    for record in records:
        yield transform_record(record, feed, now)
