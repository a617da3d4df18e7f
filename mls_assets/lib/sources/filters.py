"""The filter tree every source's query language is built from, and the parser its
dialects share.

    >>> all_of(eq("MlsId", "2020"), one_of("PropertyType", ["A", "B"]))
    And(parts=(Comparison(field='MlsId', op='Eq', value='2020'), Or(...)))

A pull builds one tree (`sources.base.scope_filter` and the source's own terms); each
source renders it in its language (`spark/sparkql.py`, `reso/odata.py`) with a `Dialect`,
and the simulator parses that text back into the tree with the same dialect. Values:
strings, numbers, booleans, dates, datetimes, None. Operators: Eq Ne Gt Ge Lt Le Bt (between
two values), And Or Not.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

COMPARISONS = ("Eq", "Ne", "Gt", "Ge", "Lt", "Le", "Bt")


class FilterSyntaxError(ValueError):
    """A filter that does not parse (each dialect has its subclass)."""


@dataclass(frozen=True)
class Dialect:
    """How a query language spells the tree: keywords, operators, quoted strings, values."""

    name: str
    format_value: Callable[[Any], str]  # a value as a literal of the language
    and_: str = "And"
    or_: str = "Or"
    not_: str = "Not"
    operators: tuple[tuple[str, str], ...] = tuple((op, op) for op in COMPARISONS)  # (spelled, tree op)
    null: str = "NULL"
    string: str = r"'(?:[^'\\]|\\.)*'"  # a quoted string literal
    quote_escape: str = r"\\(.)"  # an escaped character inside one (group 1 is the character)
    syntax_error: type[FilterSyntaxError] = FilterSyntaxError

    @functools.cached_property
    def token(self) -> re.Pattern[str]:
        return re.compile(_TOKEN.pattern.replace("STRING", self.string), re.VERBOSE)

    @functools.cached_property
    def spelled(self) -> dict[str, str]:
        return {op: spelled for spelled, op in self.operators}

    def render(self, node: Filter) -> str:
        """The tree as this language's filter text (`Bt` as two comparisons where the
        language has no between)."""
        if isinstance(node, Comparison):
            if node.op == "Bt":
                low, high = node.value
                if "Bt" in self.spelled:
                    return f"{node.field} {self.spelled['Bt']} {self.format_value(low)},{self.format_value(high)}"
                return (
                    f"{node.field} {self.spelled['Ge']} {self.format_value(low)} {self.and_} "
                    f"{node.field} {self.spelled['Le']} {self.format_value(high)}"
                )
            return f"{node.field} {self.spelled[node.op]} {self.format_value(node.value)}"
        if isinstance(node, Not):
            return f"{self.not_} ({self.render(node.part)})"
        if isinstance(node, And | Or):
            looser = Or if isinstance(node, And) else And
            keyword = f" {self.and_} " if isinstance(node, And) else f" {self.or_} "
            return keyword.join(f"({self.render(p)})" if isinstance(p, looser) else self.render(p) for p in node.parts)
        raise TypeError(f"not a filter: {node!r}")

    def parse(self, text: str) -> Filter:
        """The tree of a filter text; `syntax_error` with the reason when it does not parse."""
        if not text or not text.strip():
            raise self.syntax_error("empty filter")
        return Parser(text, self).parse()


# -- the tree --------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    def __and__(self, other: Filter) -> Filter:
        return And((self, other))

    def __or__(self, other: Filter) -> Filter:
        return Or((self, other))

    def __invert__(self) -> Filter:
        return Not(self)

    def fields(self) -> set[str]:
        raise NotImplementedError


@dataclass(frozen=True)
class Comparison(Filter):
    field: str
    op: str
    value: Any  # for Bt: a (low, high) tuple

    def fields(self) -> set[str]:
        return {self.field}


@dataclass(frozen=True)
class _Junction(Filter):
    """Parts joined by one keyword."""

    parts: tuple[Filter, ...]

    def fields(self) -> set[str]:
        return set().union(*(p.fields() for p in self.parts))


@dataclass(frozen=True)
class And(_Junction):
    pass


@dataclass(frozen=True)
class Or(_Junction):
    pass


@dataclass(frozen=True)
class Not(Filter):
    part: Filter

    def fields(self) -> set[str]:
        return self.part.fields()


# -- the builder -----------------------------------------------------------------------

_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")


def _comparison(field: str, op: str, value: Any) -> Comparison:
    if not _FIELD.fullmatch(field):
        raise ValueError(f"not a filter field name: {field!r}")
    return Comparison(field, op, value)


def eq(field: str, value: Any) -> Comparison:
    return _comparison(field, "Eq", value)


def ne(field: str, value: Any) -> Comparison:
    return _comparison(field, "Ne", value)


def gt(field: str, value: Any) -> Comparison:
    return _comparison(field, "Gt", value)


def ge(field: str, value: Any) -> Comparison:
    return _comparison(field, "Ge", value)


def lt(field: str, value: Any) -> Comparison:
    return _comparison(field, "Lt", value)


def le(field: str, value: Any) -> Comparison:
    return _comparison(field, "Le", value)


def bt(field: str, low: Any, high: Any) -> Comparison:
    return _comparison(field, "Bt", (low, high))


def all_of(*parts: Filter | None) -> Filter:
    kept = tuple(p for p in parts if p is not None)
    return kept[0] if len(kept) == 1 else And(kept)


def any_of(*parts: Filter | None) -> Filter:
    kept = tuple(p for p in parts if p is not None)
    return kept[0] if len(kept) == 1 else Or(kept)


def one_of(field: str, values: Iterable[Any]) -> Filter:
    """`field Eq a Or field Eq b ...` (some languages take lists, but this is portable)."""
    return any_of(*(eq(field, v) for v in values))


# -- the parser ------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<lparen>\()|(?P<rparen>\))|(?P<comma>,)
    | (?P<string>STRING)
    | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?)
    | (?P<date>\d{4}-\d{2}-\d{2})
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<word>[A-Za-z][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)


def _tokens(text: str, dialect: Dialect) -> list[tuple[str, Any]]:
    position, tokens = 0, []
    text = text.rstrip()
    while position < len(text):
        match = dialect.token.match(text, position)
        if not match or match.end() == position:
            raise dialect.syntax_error(f"unexpected input at character {position}: {text[position : position + 20]!r}")
        kind = match.lastgroup
        raw = match.group(kind)
        if kind == "string":
            value: Any = re.sub(dialect.quote_escape, r"\1", raw[1:-1])
        elif kind == "datetime":
            try:
                value = datetime.fromisoformat(raw)
            except ValueError:
                raise dialect.syntax_error(f"invalid datetime {raw!r}") from None
            value = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
        elif kind == "date":
            try:
                value = date.fromisoformat(raw)
            except ValueError:
                raise dialect.syntax_error(f"invalid date {raw!r}") from None
        elif kind == "number":
            value = float(raw) if "." in raw else int(raw)
        else:
            value = raw
        tokens.append((kind, value))
        position = match.end()
    return tokens


class Parser:
    def __init__(self, text: str, dialect: Dialect) -> None:
        self.dialect = dialect
        self.operators = dict(dialect.operators)
        self.tokens = _tokens(text, dialect)
        self.index = 0

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, Any]:
        token = self.peek()
        if token is None:
            raise self.dialect.syntax_error("unexpected end of filter")
        self.index += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token and token[0] == "word" and token[1] == word:
            self.index += 1
            return True
        return False

    def parse(self) -> Filter:
        tree = self.disjunction()
        if self.peek() is not None:
            raise self.dialect.syntax_error(f"unexpected {self.peek()[1]!r}")
        return tree

    def disjunction(self) -> Filter:
        parts = [self.conjunction()]
        while self.keyword(self.dialect.or_):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def conjunction(self) -> Filter:
        parts = [self.unary()]
        while self.keyword(self.dialect.and_):
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self) -> Filter:
        if self.keyword(self.dialect.not_):
            return Not(self.unary())
        token = self.peek()
        if token and token[0] == "lparen":
            self.take()
            inner = self.disjunction()
            if self.take()[0] != "rparen":
                raise self.dialect.syntax_error("missing ')'")
            return inner
        return self.comparison()

    def comparison(self) -> Filter:
        kind, field = self.take()
        if kind != "word" or field in (self.dialect.and_, self.dialect.or_, self.dialect.not_):
            raise self.dialect.syntax_error(f"expected a field name, got {field!r}")
        kind, spelled = self.take()
        op = self.operators.get(spelled) if kind == "word" else None
        if op is None:
            raise self.dialect.syntax_error(
                f"expected one of {', '.join(self.operators)} after {field}, got {spelled!r}"
            )
        low = self.value()
        if op == "Bt":
            if self.take()[0] != "comma":
                raise self.dialect.syntax_error("Bt needs two values: low,high")
            return Comparison(field, op, (low, self.value()))
        return Comparison(field, op, low)

    def value(self) -> Any:
        kind, value = self.take()
        if kind in ("string", "datetime", "date", "number"):
            return value
        if kind == "word" and value in ("true", "false"):
            return value == "true"
        if kind == "word" and value == self.dialect.null:
            return None
        raise self.dialect.syntax_error(f"expected a value, got {value!r}")
