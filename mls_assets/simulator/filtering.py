"""What every dialect of the simulator shares: reading a filter into a predicate over a
listing's index row, page sizes, and the error a source answers with."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any

from mls_assets.lib.sources import filters
from mls_assets.lib.sources.filters import Dialect

_DATETIME_FIELDS = {"ModificationTimestamp", "StatusChangeTimestamp", "PhotosChangeTimestamp"}
_DATE_FIELDS = {"ListDate", "OnMarketDate", "CloseDate"}
_NUMBER_FIELDS = {"ListPrice", "BedsTotal", "BedroomsTotal"}
_BOOLEAN_FIELDS = {"MlgCanView"}

Predicate = Callable[[dict[str, Any]], bool]


class SourceError(Exception):
    """An answer the source refuses a request with: HTTP status, the source's code, message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def compile_filter(text: str, dialect: Dialect, known: Iterable[str], code: int) -> Predicate:
    """A predicate over a listing's index row; SourceError(400, code) for what the source
    would refuse (bad syntax, a field it cannot filter on, a value of the wrong type)."""
    try:
        tree = dialect.parse(text)
    except filters.FilterSyntaxError as error:
        raise SourceError(400, code, f"Invalid filter: {error}") from None
    unknown = tree.fields() - set(known)
    if unknown:
        raise SourceError(400, code, f"Invalid filter field(s): {', '.join(sorted(unknown))}")
    return _compile(tree, code)


def _coerce(field: str, value: Any, code: int) -> Any:
    if value is None:
        return None
    if field in _DATETIME_FIELDS:
        if isinstance(value, datetime):
            return value
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif field in _DATE_FIELDS:
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
    elif field in _NUMBER_FIELDS:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    elif field in _BOOLEAN_FIELDS:
        if isinstance(value, bool):
            return value
    elif isinstance(value, str):
        return value
    raise SourceError(400, code, f"Invalid value {value!r} for field {field}")


def _compile(node: filters.Filter, code: int) -> Predicate:
    if isinstance(node, filters.And):
        parts = [_compile(p, code) for p in node.parts]
        return lambda row: all(p(row) for p in parts)
    if isinstance(node, filters.Or):
        parts = [_compile(p, code) for p in node.parts]
        return lambda row: any(p(row) for p in parts)
    if isinstance(node, filters.Not):
        inner = _compile(node.part, code)
        return lambda row: not inner(row)
    assert isinstance(node, filters.Comparison)
    field, op = node.field, node.op
    if op == "Bt":
        low, high = (_coerce(field, v, code) for v in node.value)
        return lambda row: row[field] is not None and low <= row[field] <= high
    value = _coerce(field, node.value, code)
    compare = {
        "Eq": lambda a: a == value,
        "Ne": lambda a: a != value,
        "Gt": lambda a: a is not None and a > value,
        "Ge": lambda a: a is not None and a >= value,
        "Lt": lambda a: a is not None and a < value,
        "Le": lambda a: a is not None and a <= value,
    }[op]
    return lambda row: compare(row[field])


def page_start(found: list[Any], token: str) -> int:
    """Where the page after the skip token starts in `found` (in ListingKey order): both
    dialects page by the last key of the page before."""
    return bisect_right([state.timeline.key for state in found], token) if token else 0


def page_size(params: dict[str, str], name: str, default: int, most: int, code: int, qualifier: str = "") -> int:
    """A page size parameter (`_limit`, `$top`), refused as the real APIs refuse it."""
    text = params.get(name, str(default))
    try:
        size = int(text)
    except ValueError:
        raise SourceError(400, code, f"{name} must be a number, got {text!r}") from None
    if not 1 <= size <= most:
        raise SourceError(400, code, f"{name} must be between 1 and {most}{qualifier}")
    return size
