"""Drop what carries no information: None, masked values, empty lists and objects."""

from __future__ import annotations

from typing import Any

MASKED = "********"
_DROP = object()


def clean(record: Any) -> Any:
    """Recursively remove `None`, `"********"`, `[]`, `{}` and what becomes empty after that."""
    result = _clean(record)
    if result is _DROP:
        return {} if isinstance(record, dict) else None
    return result


def _clean(value: Any) -> Any:
    if value is None or value == MASKED and isinstance(value, str):
        return _DROP
    if isinstance(value, dict):
        cleaned = {}
        for key, item in value.items():
            item = _clean(item)
            if item is not _DROP:
                cleaned[key] = item
        return cleaned if cleaned else _DROP
    if isinstance(value, list):
        cleaned_list = [c for c in (_clean(item) for item in value) if c is not _DROP]
        return cleaned_list if cleaned_list else _DROP
    return value
