"""A RESO Web API (MLS Grid v2 dialect) as a provider: OData filters on
`OriginatingSystemName`, `@odata.nextLink` paging, `Media` expanded, `MlgCanView: false`
records as deletions. Records are mapped onto the raw shape by `reso/records.py`.

The first import of a feed (a window with no start) asks only for `MlgCanView eq true`:
there is nothing stored to delete yet. Every later window takes both, so a listing the MLS
removed comes back as a deletion and is removed here too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from mls_assets.lib.replication.window import EVERYTHING, PullWindow
from mls_assets.lib.sources import filters
from mls_assets.lib.sources.base import ListingsProvider, SourcePage, scope_filter
from mls_assets.lib.sources.reso.client import MAX_TOP, ResoClient
from mls_assets.lib.sources.reso.records import is_deletion, to_raw
from mls_assets.lib.tenants import FeedConfig

RESOURCE = "Property"


def listings_filter(feed: FeedConfig, window: PullWindow, statuses: Sequence[str] = ()) -> filters.Filter:
    """`OriginatingSystemName eq '...' and (PropertyType eq ... or ...) and ModificationTimestamp ...`,
    plus `MlgCanView eq true` for a whole-history window."""
    viewable_only = window.start is None and not window.only_keys
    statuses = [*statuses, *(s.replace(" ", "") for s in statuses if " " in s)]  # a server may use enum names
    return filters.all_of(
        filters.eq("OriginatingSystemName", feed.mls_id),
        *scope_filter(feed, window, statuses),
        filters.eq("MlgCanView", True) if viewable_only else None,
    )


class ResoProvider(ListingsProvider):
    name = "reso"
    client: ResoClient

    def pages(self, window: PullWindow, page_size: int) -> Iterator[SourcePage]:
        for page in self.client.pages(RESOURCE, listings_filter(self.feed, window), top=page_size, expand=["Media"]):
            records, deletions = [], []
            for record in page.results:
                (deletions if is_deletion(record) else records).append(to_raw(record))
            yield SourcePage(records, page.number, deletions)

    def keys(self) -> Iterator[Any]:
        for page in self.client.pages(
            RESOURCE, listings_filter(self.feed, EVERYTHING), top=MAX_TOP, select=["ListingKey"]
        ):
            yield from (to_raw(record) for record in page.results)

    def count(self, window: PullWindow, statuses: Sequence[str] = ()) -> int:
        return self.client.count(RESOURCE, listings_filter(self.feed, window, statuses))


def open_provider(feed: FeedConfig, base_url: str, token: str, **client_options: Any) -> ResoProvider:
    return ResoProvider(feed, ResoClient(base_url, token, **client_options))
