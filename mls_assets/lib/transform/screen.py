"""The one gate every source record passes before anything stores or reads it.

Every path that meets a record (the pull, the deletion sweep, the CRM re-scrape by key, the
transforms) asks this module for its key and its verdict, so one record is treated the
same way everywhere:

- `listing_key(record)`: `StandardFields.ListingKey`, else the result's `Id` (Spark repeats
  the key there), as text; anything else is a `FieldError`.
- `screen(record, now)`: the record cleaned (no `None`, masked `"********"`, empty lists or
  objects) and made storable alike on the embedded server and on MongoDB (field names that
  start with `$`, contain `.` or NUL, or are not valid Unicode are dropped and listed in
  `dropped_fields`), or a `FieldError` naming the field and the reason when the record is
  not usable: not an object, nested deeper than `MAX_DEPTH`, a number that is NaN or
  infinite, text that is not valid UTF-8, no usable key, a `ModificationTimestamp` that is
  not a date or lies outside the plausible window (`EARLIEST` .. tomorrow).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mls_assets.lib.transform.values import FieldError, parse_datetime

MASKED = "********"
MAX_DEPTH = 32
MAX_KEY_LENGTH = 200
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
LATEST_AHEAD = timedelta(days=1)


def is_valid_text(text: str) -> bool:
    """False for lone surrogates: JSON escapes such as "\\ud800", or bytes that were not UTF-8."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


_safe_names: dict[str, bool] = {}


def is_safe_field_name(name: Any) -> bool:
    """A field name every MongoDB server stores and updates alike."""
    known = _safe_names.get(name) if type(name) is str else None
    if known is not None:
        return known
    verdict = (
        isinstance(name, str)
        and bool(name)
        and not name.startswith("$")
        and "." not in name
        and "\x00" not in name
        and is_valid_text(name)
    )
    if type(name) is str and len(_safe_names) < 10_000:
        _safe_names[name] = verdict
    return verdict


def standard_fields(record: Any) -> dict[str, Any]:
    """The StandardFields of a Spark result (or the record itself when already flat)."""
    if not isinstance(record, dict):
        raise FieldError("record", f"expected an object, got {type(record).__name__}")
    fields = record.get("StandardFields", record)
    if not isinstance(fields, dict):
        raise FieldError("StandardFields", f"expected an object, got {type(fields).__name__}")
    return fields


def listing_key(record: Any) -> str:
    """The record's key: `StandardFields.ListingKey`, else its `Id`; a `FieldError` if
    neither is usable text (an object, a list, empty, too long, not valid Unicode)."""
    fields = standard_fields(record)
    value = fields.get("ListingKey")
    if value is None:
        value = record.get("Id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise FieldError("ListingKey", "missing" if value is None else f"expected text, got {type(value).__name__}")
    if not value.strip():
        raise FieldError("ListingKey", "empty")
    if not is_valid_text(value):
        raise FieldError("ListingKey", "not valid Unicode text")
    if len(value) > MAX_KEY_LENGTH:
        raise FieldError("ListingKey", f"longer than {MAX_KEY_LENGTH} characters")
    return value.strip()


def key_or_none(record: Any) -> str | None:
    """The key if it can be read, for labelling rejects and de-duplicating pages."""
    try:
        return listing_key(record)
    except FieldError:
        return None


@dataclass
class Screened:
    """A record that passed: its key, version and status, and the storable record."""

    key: str
    modified: datetime
    status: Any
    record: dict[str, Any]
    dropped_fields: list[str] = field(default_factory=list)


def screen(record: Any, now: datetime) -> Screened:
    """The record cleaned and storable, or a `FieldError` saying why it is quarantined."""
    if not isinstance(record, dict):
        raise FieldError("record", f"expected an object, got {type(record).__name__}")
    key = listing_key(record)  # before cleaning: a masked or odd key must not fall back to the Id
    dropped: list[str] = []
    cleaned = _clean_dict(record, 1, "", dropped)
    fields = standard_fields(cleaned)
    modified = plausible_modification(fields.get("ModificationTimestamp"), now)
    return Screened(key, modified, fields.get("StandardStatus"), cleaned, dropped)


def clean(record: Any) -> Any:
    """The cleaning rule alone: `None`, `"********"`, `[]`, `{}` (and what becomes empty after
    that) and unsafe field names removed, recursively."""
    if type(record) is dict:
        return _clean_dict(record, 1, "", [])
    return _clean_value(record, 0, "", [])


def plausible_modification(value: Any, now: datetime) -> datetime:
    if value is None:
        raise FieldError("ModificationTimestamp", "missing")
    modified = parse_datetime("ModificationTimestamp", value)
    latest = now + LATEST_AHEAD
    if not EARLIEST <= modified <= latest:
        raise FieldError(
            "ModificationTimestamp",
            f"implausible date {modified.isoformat()} (accepted "
            f"{EARLIEST.date().isoformat()} .. {latest.date().isoformat()})",
        )
    return modified


def _where(path: str, name: Any) -> str:
    return f"{path}.{name}" if path else str(name)


def _top(path: str) -> str:
    """The top-level field of a nested path (`Rooms.Nested[]...` -> `Rooms`)."""
    return path.split(".", 1)[0].split("[", 1)[0]


def _shown(name: Any) -> str:
    text = repr(name)
    return text if len(text) <= 40 else text[:37] + "..."


def _clean_value(value: Any, depth: int, path: str, dropped: list[str]) -> Any:
    """The value cleaned, or None to drop it; raises for what cannot be stored at all."""
    kind = type(value)
    if kind is str:
        if value == MASKED:
            return None
        if not value.isascii() and not is_valid_text(value):
            raise FieldError(path, "text that is not valid UTF-8")
        return value
    if kind is bool:
        return value
    if kind is int:
        if not -(2**63) <= value < 2**63:
            raise FieldError(path, "an integer too large to store")
        return value
    if kind is float:
        if not math.isfinite(value):
            raise FieldError(path, f"not a finite number ({value})")
        return value
    if value is None:
        return None
    if kind is dict:
        if depth >= MAX_DEPTH:
            raise FieldError(_top(path), f"nested deeper than {MAX_DEPTH} levels")
        return _clean_dict(value, depth + 1, path, dropped) or None
    if kind is list:
        if depth >= MAX_DEPTH:
            raise FieldError(_top(path), f"nested deeper than {MAX_DEPTH} levels")
        inner, items = f"{path}[]", []  # a record's lists are its photos: a loop, not a generator per list
        for item in value:
            cleaned = _clean_value(item, depth + 1, inner, dropped)
            if cleaned is not None:
                items.append(cleaned)
        return items or None
    return value


def _clean_dict(source: dict, depth: int, path: str, dropped: list[str]) -> dict:
    cleaned = {}
    for name, value in source.items():
        if not is_safe_field_name(name):
            if len(dropped) < 20:
                dropped.append(_where(path, _shown(name)))
            continue
        kind = type(value)
        if kind is str and value.isascii():  # the common case, first
            if value != MASKED:
                cleaned[name] = value
            continue
        inner = "" if depth == 1 and name == "StandardFields" else _where(path, name)  # name fields as Spark does
        result = _clean_value(value, depth, inner, dropped)
        if result is not None:
            cleaned[name] = result
    return cleaned
