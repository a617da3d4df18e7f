"""RESO/Spark field names (PascalCase, with acronyms) to camelCase document fields."""

from __future__ import annotations

import re
from functools import lru_cache

_WORD_BREAK = re.compile(r"[^0-9A-Za-z]+")


@lru_cache(maxsize=4096)
def camel_case(name: str) -> str:
    """`UnparsedAddress` -> `unparsedAddress`, `MLSAreaMajor` -> `mlsAreaMajor`,
    `ListingURL` -> `listingUrl`, `ID` -> `id`, `Uri300` -> `uri300`, `Lot Size` -> `lotSize`.

    A run of capitals is an acronym: at the start it is lowercased whole (but for the
    capital that begins the next word), elsewhere it is written as one word (`Url`)."""
    if not name.isascii():
        return name[:1].lower() + name[1:]  # leave non-ASCII names as they are
    words = [w for w in _WORD_BREAK.split(name) if w]
    if not words:
        return name
    parts: list[str] = []
    for word in words:
        parts.extend(re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+|[A-Z]", word))
    if not parts:
        return name
    head = parts[0].lower()
    tail = [p if p.isdigit() else p[0].upper() + p[1:].lower() for p in parts[1:]]
    return head + "".join(tail)
