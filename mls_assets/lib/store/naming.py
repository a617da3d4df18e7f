"""Names derived from tenant and MLS ids: collections, partition keys, cursor and lease ids.

Ids become part of MongoDB collection names, so they are validated first: a malformed id
must never reach MongoDB as a name. And every derived name must map back to exactly one
feed: with plain `{tenant}_{mls}_{name}`, tenant `a_b` with MLS `c` and tenant `a` with MLS
`b_c` would share `a_b_c_listings`. So each id is written with its underscores doubled
(`a_b` -> `a__b`) and joined with single underscores: `a__b_c_listings` and
`a_b__c_listings`. Ids without `_` keep the plain names (`jpsrealtor_gps_listings`).
Ids cannot start or end with `_` or hold `__`, which keeps the encoding reversible
(`parse_collection`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ID_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
MAX_ID_LENGTH = 40
FEED_SEPARATOR = "."
NAME_SEPARATOR = "_"


class InvalidIdentifier(ValueError):
    """A tenant or MLS id that cannot be used in a collection name."""


def validate_id(value: object, what: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH or not ID_PATTERN.fullmatch(value):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise InvalidIdentifier(
            f"invalid {what} id {shown}: use lowercase letters and digits, single '_' between them, "
            f"starting with a letter (at most {MAX_ID_LENGTH} characters)"
        )
    return value


def encode_id(value: str) -> str:
    """An id as it appears inside a collection name: each `_` doubled."""
    return value.replace(NAME_SEPARATOR, NAME_SEPARATOR * 2)


def tenant_collection(tenant: str, name: str) -> str:
    """A tenant's own collection (not per MLS), e.g. `{tenant}_crm_properties`."""
    return f"{encode_id(validate_id(tenant, 'tenant'))}{NAME_SEPARATOR}{name}"


@dataclass(frozen=True)
class FeedKey:
    """One tenant's access to one MLS; its partition key is `tenant.mls`."""

    tenant: str
    mls: str

    def __post_init__(self) -> None:
        validate_id(self.tenant, "tenant")
        validate_id(self.mls, "MLS")

    @classmethod
    def parse(cls, key: str) -> FeedKey:
        tenant, sep, mls = str(key).partition(FEED_SEPARATOR)
        if not sep:
            raise InvalidIdentifier(f"feed key {key!r} is not of the form 'tenant.mls'")
        return cls(tenant, mls)

    def __str__(self) -> str:
        return f"{self.tenant}{FEED_SEPARATOR}{self.mls}"

    def collection(self, name: str) -> str:
        return f"{encode_id(self.tenant)}{NAME_SEPARATOR}{encode_id(self.mls)}{NAME_SEPARATOR}{name}"


def _split_encoded(name: str, parts: int) -> list[str] | None:
    """Undo `encode_id` for the first `parts` ids of a name; the rest is returned last."""
    found: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(name) and len(found) < parts:
        if name.startswith(NAME_SEPARATOR * 2, i):
            current.append(NAME_SEPARATOR)
            i += 2
        elif name[i] == NAME_SEPARATOR:
            found.append("".join(current))
            current = []
            i += 1
        else:
            current.append(name[i])
            i += 1
    if len(found) < parts:
        return None
    return [*found, name[i:]]


def parse_collection(name: str) -> tuple[FeedKey, str] | None:
    """The feed and the per-feed name a feed collection name was built from, or None."""
    split = _split_encoded(name, 2)
    if split is None:
        return None
    tenant, mls, rest = split
    try:
        return FeedKey(tenant, mls), rest
    except InvalidIdentifier:
        return None


def parse_tenant_collection(name: str) -> tuple[str, str] | None:
    """The tenant and the name of a tenant collection name, or None."""
    split = _split_encoded(name, 1)
    if split is None:
        return None
    tenant, rest = split
    try:
        return validate_id(tenant, "tenant"), rest
    except InvalidIdentifier:
        return None


def render_collection(template: str, dimensions: dict[str, str]) -> str:
    """Fill a template such as `{tenant}_{mls}_listings` from partition dimensions.

    A `feed` dimension supplies `{tenant}` and `{mls}` (encoded as in `FeedKey.collection`,
    so `{tenant}_{mls}_x` is exactly the feed's collection `x`) and `{feed}`; other
    dimensions are available under their own names.
    """
    values = dict(dimensions)
    if "feed" in dimensions:
        feed = FeedKey.parse(dimensions["feed"])
        values.update(tenant=encode_id(feed.tenant), mls=encode_id(feed.mls))
    try:
        name = template.format(**values)
    except KeyError as missing:
        raise ValueError(
            f"collection template {template!r} needs {missing}, but the partition only has {sorted(values)}"
        ) from None
    if not re.fullmatch(r"[A-Za-z0-9_.]+", name):
        raise InvalidIdentifier(f"collection name {name!r} is not allowed")
    return name
