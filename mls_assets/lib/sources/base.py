"""The interface every listings provider offers the assets.

    with provider:                      # a `ListingsProvider` for one feed
        for page in provider.pages(window, page_size=1000):
            store(page.records)         # raw shape: {"Id", "StandardFields": {..., "Photos"}}
            remove(page.deletions)      # records the source says are gone (RESO: MlgCanView false)
        provider.keys()                 # every record in scope, key only (the deletion sweep)
        provider.count(window, statuses)

Records leave a provider in one raw shape (Spark's), so the screen, flatten, routing,
photos, history and CRM are shared. Errors are the classes of `sources.errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from mls_assets.lib.replication.window import PullWindow
from mls_assets.lib.sources import filters
from mls_assets.lib.sources.http import ApiClient, ClientStats
from mls_assets.lib.tenants import FeedConfig


def scope_filter(feed: FeedConfig, window: PullWindow, statuses: Sequence[str] = ()) -> list[filters.Filter | None]:
    """The parts of a pull's filter every provider shares (the Data Dictionary names them
    alike): the feed's property types, `statuses`, the window's keys or its
    ModificationTimestamp bounds. A provider adds how it names the MLS, and renders the tree
    in its own language (SparkQL, OData)."""
    parts: list[filters.Filter | None] = [
        filters.one_of("PropertyType", feed.property_types) if feed.property_types else None,
        filters.one_of("StandardStatus", statuses) if statuses else None,
    ]
    if window.only_keys:
        parts.append(filters.one_of("ListingKey", window.only_keys))
    if window.start is not None:
        op = filters.gt if window.after_cursor else filters.ge
        parts.append(op("ModificationTimestamp", window.start))
    if window.end is not None:
        parts.append(filters.lt("ModificationTimestamp", window.end))
    return parts


@dataclass(frozen=True)
class SourcePage:
    records: list[Any]
    number: int
    deletions: list[Any] = field(default_factory=list)


class ListingsProvider:
    """One feed's listings at one source, through one client (one token, one budget)."""

    name = ""

    def __init__(self, feed: FeedConfig, client: ApiClient) -> None:
        self.feed = feed
        self.client = client

    @property
    def fingerprint(self) -> str:
        """Names the token in leases and logs without revealing it."""
        return self.client.fingerprint

    @property
    def stats(self) -> ClientStats:
        return self.client.stats

    def on_retry(self, callback: Callable[[str, float], None] | None) -> None:
        """Call `callback(what failed, seconds to wait)` before each retry (a run's log)."""
        self.client.on_retry = callback

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> ListingsProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pages(self, window: PullWindow, page_size: int) -> Iterator[SourcePage]:
        """The window's records page by page, photos included, in the raw shape."""
        raise NotImplementedError

    def keys(self) -> Iterator[Any]:
        """Every record the source holds in the feed's scope, with (at least) its key."""
        raise NotImplementedError

    def count(self, window: PullWindow, statuses: Sequence[str] = ()) -> int:
        """How many records of the window (with one of `statuses`, if given) the source holds."""
        raise NotImplementedError
