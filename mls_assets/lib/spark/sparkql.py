"""SparkQL filters: a small builder for the subset the pipeline uses, and its parser.

    >>> str(eq("MlsId", "2020") & (eq("PropertyType", "A") | eq("PropertyType", "B")))
    "MlsId Eq '2020' And (PropertyType Eq 'A' Or PropertyType Eq 'B')"

Values: quoted strings, numbers, booleans, dates `YYYY-MM-DD`, datetimes
`YYYY-MM-DDTHH:MM:SSZ`. Operators: Eq Ne Gt Ge Lt Le Bt, And Or Not, parentheses.
The parser (used by the simulator) turns a filter back into a tree. The tree is also what
OData filters are built from (`lib/reso/odata.py` renders and parses it in that dialect).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

COMPARISONS = ("Eq", "Ne", "Gt", "Ge", "Lt", "Le", "Bt")


class SparkQLSyntaxError(ValueError):
    """A filter that does not parse."""


@dataclass(frozen=True)
class Dialect:
    """How a filter language spells the tree: its keywords, operators and quoted strings."""

    and_: str = "And"
    or_: str = "Or"
    not_: str = "Not"
    operators: tuple[tuple[str, str], ...] = tuple((op, op) for op in COMPARISONS)  # (spelled, tree op)
    null: str = "NULL"
    string: str = r"'(?:[^'\\]|\\.)*'"  # SparkQL escapes with a backslash: 'O\'Neil'
    quote_escape: str = r"\\(.)"

    @functools.cached_property
    def token(self) -> re.Pattern[str]:
        return re.compile(_TOKEN.pattern.replace("STRING", self.string), re.VERBOSE)


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

    def __str__(self) -> str:
        if self.op == "Bt":
            low, high = self.value
            return f"{self.field} Bt {format_value(low)},{format_value(high)}"
        return f"{self.field} {self.op} {format_value(self.value)}"

    def fields(self) -> set[str]:
        return {self.field}


@dataclass(frozen=True)
class _Junction(Filter):
    """Parts joined by one keyword; a part that binds looser is parenthesised."""

    parts: tuple[Filter, ...]
    keyword = ""

    def __str__(self) -> str:
        looser = Or if isinstance(self, And) else And
        return f" {self.keyword} ".join(f"({p})" if isinstance(p, looser) else str(p) for p in self.parts)

    def fields(self) -> set[str]:
        return set().union(*(p.fields() for p in self.parts))


@dataclass(frozen=True)
class And(_Junction):
    keyword = "And"


@dataclass(frozen=True)
class Or(_Junction):
    keyword = "Or"


@dataclass(frozen=True)
class Not(Filter):
    part: Filter

    def __str__(self) -> str:
        return f"Not ({self.part})"

    def fields(self) -> set[str]:
        return self.part.fields()


# -- the builder -----------------------------------------------------------------------

_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")


def _comparison(field: str, op: str, value: Any) -> Comparison:
    if not _FIELD.fullmatch(field):
        raise ValueError(f"not a SparkQL field name: {field!r}")
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
    """`field Eq 'a' Or field Eq 'b' ...` (SparkQL's Eq also takes lists, but this is portable)."""
    return any_of(*(eq(field, v) for v in values))


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


SPARKQL = Dialect()


def _tokens(text: str, dialect: Dialect) -> list[tuple[str, Any]]:
    position, tokens = 0, []
    text = text.rstrip()
    while position < len(text):
        match = dialect.token.match(text, position)
        if not match or match.end() == position:
            raise SparkQLSyntaxError(f"unexpected input at character {position}: {text[position : position + 20]!r}")
        kind = match.lastgroup
        raw = match.group(kind)
        if kind == "string":
            value: Any = re.sub(dialect.quote_escape, r"\1", raw[1:-1])
        elif kind == "datetime":
            try:
                value = datetime.fromisoformat(raw)
            except ValueError:
                raise SparkQLSyntaxError(f"invalid datetime {raw!r}") from None
            value = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
        elif kind == "date":
            try:
                value = date.fromisoformat(raw)
            except ValueError:
                raise SparkQLSyntaxError(f"invalid date {raw!r}") from None
        elif kind == "number":
            value = float(raw) if "." in raw else int(raw)
        else:
            value = raw
        tokens.append((kind, value))
        position = match.end()
    return tokens


class Parser:
    def __init__(self, text: str, dialect: Dialect = SPARKQL) -> None:
        self.dialect = dialect
        self.operators = dict(dialect.operators)
        self.tokens = _tokens(text, dialect)
        self.index = 0

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, Any]:
        token = self.peek()
        if token is None:
            raise SparkQLSyntaxError("unexpected end of filter")
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
            raise SparkQLSyntaxError(f"unexpected {self.peek()[1]!r}")
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
                raise SparkQLSyntaxError("missing ')'")
            return inner
        return self.comparison()

    def comparison(self) -> Filter:
        kind, field = self.take()
        if kind != "word" or field in (self.dialect.and_, self.dialect.or_, self.dialect.not_):
            raise SparkQLSyntaxError(f"expected a field name, got {field!r}")
        kind, spelled = self.take()
        op = self.operators.get(spelled) if kind == "word" else None
        if op is None:
            raise SparkQLSyntaxError(f"expected one of {', '.join(self.operators)} after {field}, got {spelled!r}")
        low = self.value()
        if op == "Bt":
            if self.take()[0] != "comma":
                raise SparkQLSyntaxError("Bt needs two values: low,high")
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
        raise SparkQLSyntaxError(f"expected a value, got {value!r}")


def parse(text: str) -> Filter:
    """Parse a SparkQL filter; raises SparkQLSyntaxError with the reason."""
    if not text or not text.strip():
        raise SparkQLSyntaxError("empty filter")
    return Parser(text).parse()
