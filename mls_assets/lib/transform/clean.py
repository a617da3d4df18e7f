"""Drop what carries no information: None, masked values, empty lists and objects."""

from __future__ import annotations

from typing import Any

MASKED = "********"
_SCALARS = (int, float, bool)


def clean(record: Any) -> Any:
    """Recursively remove `None`, `"********"`, `[]`, `{}` and what becomes empty after that.

    Written with type dispatch rather than recursion on every leaf: it runs on every field
    of every listing and photo.
    """
    if type(record) is dict:
        return _clean_dict(record)
    if type(record) is list:
        return _clean_list(record)
    return None if record is None or record == MASKED else record


def _clean_dict(source: dict) -> dict:
    cleaned = {}
    for key, value in source.items():
        kind = type(value)
        if kind is str:
            if value != MASKED:
                cleaned[key] = value
        elif kind in _SCALARS:
            cleaned[key] = value
        elif value is None:
            continue
        elif kind is dict:
            nested = _clean_dict(value)
            if nested:
                cleaned[key] = nested
        elif kind is list:
            items = _clean_list(value)
            if items:
                cleaned[key] = items
        else:
            cleaned[key] = value
    return cleaned


def _clean_list(source: list) -> list:
    cleaned = []
    for value in source:
        kind = type(value)
        if kind is str:
            if value != MASKED:
                cleaned.append(value)
        elif kind is dict:
            nested = _clean_dict(value)
            if nested:
                cleaned.append(nested)
        elif kind is list:
            items = _clean_list(value)
            if items:
                cleaned.append(items)
        elif value is not None:
            cleaned.append(value)
    return cleaned
