"""A feed: one tenant's access to one MLS (the identity the transforms stamp on documents)."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
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


def shared_runs(order: Sequence[str], due: Collection[str], most: int) -> list[list[str]]:
    """The `due` feeds as runs of consecutive feeds of `order` (the feeds partition's order:
    Dagster runs a range of it, never an arbitrary set), at most `most` feeds each. Feeds of
    one source are registered next to each other (`FeedConfig.source`), so the feeds a change or a
    cron makes due together share runs: one run per source and `most` feeds, not one per feed."""
    runs: list[list[str]] = []
    current: list[str] = []
    for feed in order:
        if feed in due and len(current) < most:
            current.append(feed)
            continue
        if current:
            runs.append(current)
        current = [feed] if feed in due else []
    if current:
        runs.append(current)
    return runs
