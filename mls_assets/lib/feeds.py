"""How the feeds of a fleet share time: a stable slot per feed, and runs over feeds made due
together."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence


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
