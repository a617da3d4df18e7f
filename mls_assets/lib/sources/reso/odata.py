"""OData `$filter`, the RESO Web API's filter language, as a dialect of the shared filter
tree.

    >>> render(all_of(eq("OriginatingSystemName", "actris"), gt("ModificationTimestamp", when)))
    "OriginatingSystemName eq 'actris' and ModificationTimestamp gt 2026-11-01T00:00:00.000Z"

Strings are single-quoted with a quote doubled (`'O''Neil'`), datetimes are bare ISO 8601
with milliseconds and `Z`, booleans `true`/`false`; operators eq ne gt ge lt le, and or
not, parentheses. OData has no `Bt`: it is rendered as `ge` and `le`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from mls_assets.lib.sources.filters import Dialect, Filter, FilterSyntaxError


class ODataSyntaxError(FilterSyntaxError):
    """A `$filter` that does not parse (the simulator answers 400)."""


def format_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        value = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"cannot use a {type(value).__name__} in an OData filter")


ODATA = Dialect(
    name="OData",
    format_value=format_value,
    and_="and",
    or_="or",
    not_="not",
    null="null",
    operators=(("eq", "Eq"), ("ne", "Ne"), ("gt", "Gt"), ("ge", "Ge"), ("lt", "Lt"), ("le", "Le")),
    string=r"'(?:[^']|'')*'",
    quote_escape=r"'(')",
    syntax_error=ODataSyntaxError,
)


def render(node: Filter) -> str:
    """The tree as OData `$filter` text."""
    return ODATA.render(node)


def parse(text: str) -> Filter:
    """Parse OData `$filter` text; raises ODataSyntaxError with the reason."""
    return ODATA.parse(text)
