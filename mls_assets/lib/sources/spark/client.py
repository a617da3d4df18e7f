"""Spark replication API client: `_skiptoken` paging, retries, one rate budget per token.

    client = SparkClient(base_url, token)
    for page in client.pages(filter_, limit=1000, expand=["Photos"]):
        store(page.results)
        checkpoint(page.next_token)   # resume later with start_token=...

Paging: the first request sends `_skiptoken=` (empty), then the returned
`D.SkipToken`; it ends on empty `Results` or when the token stops changing. A full page
whose token did not advance is a stuck server, not the end: it is retried, never taken
as the end of the data (that would silently drop the rest of the feed).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from mls_assets.lib.sources.filters import Filter
from mls_assets.lib.sources.http import USER_AGENT, ApiClient, RetryPolicy, parse_json, retry_after
from mls_assets.lib.sources.spark.errors import (
    SparkApiError,
    SparkConfigurationError,
    SparkPagingError,
    SparkProtocolError,
    SparkRetryableError,
    SparkTokenExpired,
    SparkUnavailable,
    classify,
)
from mls_assets.lib.sources.spark.sparkql import render
from mls_assets.lib.transform.screen import key_or_none

__all__ = ["MAX_LIMIT", "Page", "RetryPolicy", "SparkClient", "parse_json"]

log = logging.getLogger("mls_assets.spark")
MAX_LIMIT = 1000


def filter_text(filter: str | Filter | None) -> str:
    """A `_filter` as sent: SparkQL text as given, a filter tree rendered in SparkQL."""
    if filter is None:
        return ""
    return filter if isinstance(filter, str) else render(filter)


@dataclass(frozen=True)
class Page:
    results: list[dict[str, Any]]
    request_token: str
    next_token: str
    number: int


class SparkClient(ApiClient):
    """A Spark replication client for one access token; thread-safe for concurrent requests."""

    source = "Spark API"
    retryable_error = SparkRetryableError
    unavailable_error = SparkUnavailable
    token_expired_error = SparkTokenExpired
    configuration_error = SparkConfigurationError

    def __init__(self, base_url: str, access_token: str, *, user_agent: str = USER_AGENT, **options: Any) -> None:
        super().__init__(base_url, access_token, headers={"X-SparkApi-User-Agent": user_agent}, **options)

    def decode(self, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        wait = retry_after(response.headers.get("Retry-After"))
        body = parse_json(response.content)
        envelope = body.get("D") if isinstance(body, dict) else None
        if not isinstance(envelope, dict):
            if status == 200 or status >= 500 or status == 429:
                raise SparkRetryableError(
                    f"Spark API sent an unreadable body (HTTP {status}, {len(response.content)} bytes)",
                    status=status,
                    retry_after=wait,
                )
            raise SparkConfigurationError(f"Spark API error (HTTP {status}) without a D envelope", status=status)
        if status == 200 and envelope.get("Success") is True:
            return envelope
        code = envelope.get("Code")
        raise classify(
            status, code if isinstance(code, int) else None, str(envelope.get("Message") or "no message")[:300], wait
        )

    def _request(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return self.request(f"{self.base_url}/{path}", params)

    # -- listings -----------------------------------------------------------------------

    def pages(
        self,
        filter: str | Filter | None = None,
        *,
        limit: int = MAX_LIMIT,
        select: Sequence[str] | None = None,
        expand: Sequence[str] | None = None,
        start_token: str = "",
    ) -> Iterator[Page]:
        """Every page of the listings matching `filter`, lazily, from `start_token` on."""
        if not 1 <= limit <= MAX_LIMIT:
            raise SparkConfigurationError(f"_limit must be between 1 and {MAX_LIMIT}, not {limit}")
        base: dict[str, str] = {"_limit": str(limit)}
        if text := filter_text(filter):
            base["_filter"] = text
        if select:
            base["_select"] = ",".join(select)
        if expand:
            base["_expand"] = ",".join(expand)
        token, previous_keys, number, stuck = start_token, set(), 0, 0
        while True:
            envelope = self._request("listings", {**base, "_skiptoken": token})
            results = envelope.get("Results")
            next_token = envelope.get("SkipToken")
            where = f"page {number + 1} (after skiptoken {token!r:.60})"
            if results is not None and not isinstance(results, list):
                raise SparkProtocolError(f"{where}: D.Results is {type(results).__name__}, expected a list")
            if next_token is not None and not isinstance(next_token, str):
                raise SparkProtocolError(f"{where}: D.SkipToken is {type(next_token).__name__}, expected text")
            if not results:
                return
            if next_token is None or next_token == token:
                fresh = [r for r in results if key_or_none(r) is None or key_or_none(r) not in previous_keys]
                if not fresh:
                    return  # the last page, repeated: done
                if len(results) >= limit:
                    stuck += 1
                    if stuck >= self._retry.attempts:
                        raise SparkPagingError(
                            f"the skiptoken stopped advancing at {token!r} while full pages kept "
                            f"coming ({stuck} tries); refusing to stop early and drop listings"
                        )
                    log.warning("Spark skiptoken did not advance after a full page: asking again")
                    continue
                number += 1
                yield Page(fresh, token, token, number)
                return
            stuck = 0
            number += 1
            yield Page(results, token, next_token, number)
            previous_keys = {key for key in map(key_or_none, results) if key is not None}
            token = next_token

    def listings(self, filter: str | Filter | None = None, **options: Any) -> Iterator[dict[str, Any]]:
        for page in self.pages(filter, **options):
            yield from page.results

    def count(self, filter: str | Filter | None = None) -> int:
        """`D.Pagination.TotalRows` for the filter (`_pagination=count`)."""
        params = {"_limit": "1", "_pagination": "count"}
        if text := filter_text(filter):
            params["_filter"] = text
        envelope = self._request("listings", params)
        try:
            return int(envelope["Pagination"]["TotalRows"])
        except (KeyError, TypeError, ValueError):
            raise SparkApiError("Spark API answered a count request without Pagination.TotalRows") from None
