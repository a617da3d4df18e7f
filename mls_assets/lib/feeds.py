"""A feed: one tenant's access to one MLS (the identity the transforms stamp on documents)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from mls_assets.lib.store.naming import FeedKey


@dataclass(frozen=True)
class FeedIdentity:
    """Who a listing document belongs to: tenant, MLS short id and the Spark MLS ID."""

    tenant: str
    mls: str
    mls_id: str

    @property
    def key(self) -> FeedKey:
        return FeedKey(self.tenant, self.mls)

    def collection(self, name: str) -> str:
        return self.key.collection(name)


def slot_of(feed: str, slots: int) -> int:
    """A feed's slot of `slots` (its turn in a rotation, its minute of a night): stable across
    processes and restarts (not `hash()`)."""
    return int.from_bytes(hashlib.blake2b(feed.encode(), digest_size=8).digest(), "big") % slots
