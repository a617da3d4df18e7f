"""Parsing the value types Spark sends: numeric strings, dates and timestamps."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time
from typing import Any


class FieldError(ValueError):
    """A field whose value cannot be made valid; becomes a reject with this reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def parse_number(field: str, value: Any, integer: bool) -> int | float:
    """`"50000.0"` -> 50000.0, `" -116.3237"` -> -116.3237; NaN/inf and junk raise."""
    if isinstance(value, bool):
        raise FieldError(field, f"expected a number, got a boolean {value!r}")
    if isinstance(value, int):
        number: int | float = value
    elif isinstance(value, float):
        number = value
    elif isinstance(value, str):
        text = value.strip().replace(",", "")
        if not _NUMBER.fullmatch(text):
            raise FieldError(field, f"expected a number, got {_short(value)}")
        number = float(text)
    else:
        raise FieldError(field, f"expected a number, got {type(value).__name__}")
    if isinstance(number, float) and not math.isfinite(number):
        raise FieldError(field, f"expected a finite number, got {number}")
    if integer:
        if isinstance(number, float) and not number.is_integer():
            raise FieldError(field, f"expected a whole number, got {number}")
        number = int(number)
        if abs(number) > 2**63 - 1:
            raise FieldError(field, "number out of range")
    elif abs(number) > 1e18:
        raise FieldError(field, "number out of range")
    return number


def parse_datetime(field: str, value: Any) -> datetime:
    """ISO date or timestamp to a timezone-aware UTC datetime (naive means UTC)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time(), UTC)
    elif isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise FieldError(field, f"not a date or timestamp: {_short(value)}") from None
    else:
        raise FieldError(field, f"expected a date string, got {type(value).__name__}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        raise FieldError(field, f"date out of range: {_short(value)}") from None
    if not 1800 <= parsed.year <= 2200:
        raise FieldError(field, f"date out of range: {parsed.date().isoformat()}")
    # BSON stores milliseconds: truncate now so stored and computed values compare equal.
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"
