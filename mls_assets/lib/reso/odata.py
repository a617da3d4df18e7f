"""OData `$filter` text for the filter tree the pipeline builds (the SparkQL builder's tree),
and its parser (used by the simulator).

    >>> render(all_of(eq("OriginatingSystemName", "actris"), gt("ModificationTimestamp", when)))
    "OriginatingSystemName eq 'actris' and ModificationTimestamp gt 2026-11-01T00:00:00.000Z"

Strings are single-quoted with a quote doubled (`'O''Neil'`), datetimes are bare ISO 8601
with milliseconds and `Z`, booleans `true`/`false`; operators eq ne gt ge lt le, and or
not, parentheses. OData has no `Bt`: it is rendered as `ge` and `le`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from mls_assets.lib.spark.sparkql import (  # noqa: F401  (the builder, re-exported for callers)
    And,
    Comparison,
    Dialect,
    Filter,
    Not,
    Or,
    Parser,
    SparkQLSyntaxError,
    all_of,
    any_of,
    eq,
    ge,
    gt,
    le,
    lt,
    ne,
    one_of,
)

ODATA = Dialect(
    and_="and",
    or_="or",
    not_="not",
    null="null",
    operators=(("eq", "Eq"), ("ne", "Ne"), ("gt", "Gt"), ("ge", "Ge"), ("lt", "Lt"), ("le", "Le")),
    string=r"'(?:[^']|'')*'",
    quote_escape=r"'(')",
)


class ODataSyntaxError(SparkQLSyntaxError):
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


def render(node: Filter) -> str:
    """The tree as OData `$filter` text."""
    if isinstance(node, Comparison):
        if node.op == "Bt":
            low, high = node.value
            return f"{node.field} ge {format_value(low)} and {node.field} le {format_value(high)}"
        return f"{node.field} {node.op.lower()} {format_value(node.value)}"
    if isinstance(node, Not):
        return f"not ({render(node.part)})"
    if isinstance(node, And | Or):
        looser = Or if isinstance(node, And) else And
        keyword = " and " if isinstance(node, And) else " or "
        return keyword.join(f"({render(p)})" if isinstance(p, looser) else render(p) for p in node.parts)
    raise TypeError(f"not a filter: {node!r}")


def parse(text: str) -> Filter:
    """Parse OData `$filter` text; raises ODataSyntaxError with the reason."""
    if not text or not text.strip():
        raise ODataSyntaxError("empty filter")
    try:
        return Parser(text, ODATA).parse()
    except ODataSyntaxError:
        raise
    except SparkQLSyntaxError as error:
        raise ODataSyntaxError(str(error)) from None
