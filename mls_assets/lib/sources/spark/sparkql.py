"""SparkQL, Spark's filter language, as a dialect of the shared filter tree.

    >>> render(all_of(eq("MlsId", "2020"), one_of("PropertyType", ["A", "B"])))
    "MlsId Eq '2020' And (PropertyType Eq 'A' Or PropertyType Eq 'B')"

Values: quoted strings (a quote escaped with a backslash: `'O\\'Neil'`), numbers, booleans,
dates `YYYY-MM-DD`, datetimes `YYYY-MM-DDTHH:MM:SSZ`. Operators: Eq Ne Gt Ge Lt Le Bt, And
Or Not, parentheses. The parser is what the simulator reads a `_filter` with.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from mls_assets.lib.sources.filters import Dialect, Filter, FilterSyntaxError


class SparkQLSyntaxError(FilterSyntaxError):
    """A `_filter` that does not parse (Spark answers code 1040)."""


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise TypeError(f"cannot use a {type(value).__name__} in a SparkQL filter")


SPARKQL = Dialect(name="SparkQL", format_value=format_value, syntax_error=SparkQLSyntaxError)


def render(node: Filter) -> str:
    """The tree as SparkQL `_filter` text."""
    return SPARKQL.render(node)


def parse(text: str) -> Filter:
    """Parse a SparkQL filter; raises SparkQLSyntaxError with the reason."""
    return SPARKQL.parse(text)
