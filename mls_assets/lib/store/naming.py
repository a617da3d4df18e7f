"""Collection names derived from feeds: `{tenant}_{mls}_{name}` (seed 002).

Tenant and MLS ids become part of collection names, so they are validated first: a
malformed id must never reach MongoDB as a name (or address another tenant's data).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
FEED_SEPARATOR = "."


class InvalidIdentifier(ValueError):
    """A tenant or MLS id that cannot be used in a collection name."""


def validate_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value) or len(value) > 40:
        raise InvalidIdentifier(
            f"invalid {what} id {value!r}: use lowercase letters, digits and '_', "
            "starting with a letter (at most 40 characters)"
        )
    return value


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
        tenant, sep, mls = key.partition(FEED_SEPARATOR)
        if not sep:
            raise InvalidIdentifier(f"feed key {key!r} is not of the form 'tenant.mls'")
        return cls(tenant, mls)

    def __str__(self) -> str:
        return f"{self.tenant}{FEED_SEPARATOR}{self.mls}"

    def collection(self, name: str) -> str:
        return f"{self.tenant}_{self.mls}_{name}"


def render_collection(template: str, dimensions: Mapping[str, str]) -> str:
    """Fill a template such as `{tenant}_{mls}_listings` from partition dimensions.

    A `feed` dimension supplies `{tenant}`, `{mls}` and `{feed}`; other dimensions are
    available under their own names.
    """
    values = dict(dimensions)
    if "feed" in dimensions:
        feed = FeedKey.parse(dimensions["feed"])
        values.update(tenant=feed.tenant, mls=feed.mls)
    try:
        name = template.format(**values)
    except KeyError as missing:
        raise ValueError(
            f"collection template {template!r} needs {missing}, but the partition only has "
            f"{sorted(values)}"
        ) from None
    if not re.fullmatch(r"[A-Za-z0-9_.]+", name):
        raise InvalidIdentifier(f"collection name {name!r} is not allowed")
    return name
