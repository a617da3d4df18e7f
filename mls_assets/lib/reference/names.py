"""One place name however a source spells it: `"PALM DESERT  COUNTRY CLUB "`,
`"palm desert country club"` and `"Palm Desert Country Club"` are one neighborhood.

`name_key` is the identity (spacing collapsed, case folded); `display_name` picks how to show
it (the most used spelling that is not all upper or lower case, else that spelling in title
case); `slug` is its URL form. A masked or empty value is no name at all."""

from __future__ import annotations

from collections import Counter
from typing import Any

from slugify import slugify

MASKED = "********"


def clean_name(value: Any) -> str | None:
    """The name with its spacing collapsed, or None for what names nothing."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    return text if text and text != MASKED and len(text) <= 200 else None


def name_key(value: Any) -> str | None:
    text = clean_name(value)
    return text.casefold() if text else None


def slug(text: str) -> str:
    return slugify(text, max_length=120, word_boundary=True) or "unnamed"


def display_name(spellings: Counter[str]) -> str:
    """The best way to show a name from how often each spelling was seen."""
    mixed = Counter({s: n for s, n in spellings.items() if s != s.upper() and s != s.lower()})
    if mixed:
        return min(mixed, key=lambda s: (-mixed[s], s))
    most = min(spellings, key=lambda s: (-spellings[s], s))
    return most.title()
