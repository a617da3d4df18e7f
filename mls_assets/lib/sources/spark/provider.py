"""Spark's replication API as a provider: SparkQL filters, `_skiptoken` paging, photos
expanded. Its records are already in the raw shape; Spark announces no deletions (the
sweep finds them)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from mls_assets.lib.replication.window import EVERYTHING, PullWindow
from mls_assets.lib.sources import filters
from mls_assets.lib.sources.base import ListingsProvider, SourcePage, scope_filter
from mls_assets.lib.sources.spark.client import SparkClient
from mls_assets.lib.tenants import FeedConfig


def listings_filter(feed: FeedConfig, window: PullWindow, statuses: Sequence[str] = ()) -> filters.Filter:
    """`MlsId Eq '...' And (PropertyType Eq 'A' Or ...) And ModificationTimestamp ...`."""
    return filters.all_of(filters.eq("MlsId", feed.mls_id), *scope_filter(feed, window, statuses))


class SparkProvider(ListingsProvider):
    name = "spark"
    client: SparkClient

    def pages(self, window: PullWindow, page_size: int) -> Iterator[SourcePage]:
        for page in self.client.pages(listings_filter(self.feed, window), limit=page_size, expand=["Photos"]):
            yield SourcePage(page.results, page.number)

    def keys(self) -> Iterator[Any]:
        return self.client.listings(listings_filter(self.feed, EVERYTHING), limit=1000, select=["ListingKey"])

    def count(self, window: PullWindow, statuses: Sequence[str] = ()) -> int:
        return self.client.count(listings_filter(self.feed, window, statuses))


def open_provider(feed: FeedConfig, base_url: str, token: str, **client_options: Any) -> SparkProvider:
    return SparkProvider(feed, SparkClient(base_url, token, **client_options))
