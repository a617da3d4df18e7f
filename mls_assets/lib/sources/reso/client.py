"""RESO Web API client (OData, MLS Grid v2 replication dialect): `@odata.nextLink` paging,
gzip answers, retries and one request budget per token (shared with `ApiClient`).

    client = ResoClient("https://api.mlsgrid.com/v2", token)
    for page in client.pages("Property", filter_, top=1000, expand=["Media"]):
        store(page.results)

Paging: the first request carries `$filter`, `$top`, `$expand`, `$select`; each answer's
records are in `value`, and `@odata.nextLink` (a full URL) is the next request, until it is
absent. A next link that was already requested is an error, never a loop; one that leads
to another host is never followed (the token would go there); `value` that is not a list
is a protocol defect naming the page.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from mls_assets.lib.sources.errors import (
    SourceConfigurationError,
    SourceError,
    SourcePagingError,
    SourceProtocolError,
    SourceRetryable,
    SourceTokenExpired,
    SourceUnavailable,
)
from mls_assets.lib.sources.filters import Filter
from mls_assets.lib.sources.http import ApiClient, parse_json, retry_after
from mls_assets.lib.sources.reso import odata

MAX_TOP = 5000
MAX_TOP_EXPANDED = 1000  # with $expand (MLS Grid)
MAX_EMPTY_PAGES = 3  # empty pages in a row that still send a next link


class ResoApiError(SourceError):
    """An error answer from a RESO Web API (or no usable answer at all)."""


class ResoRetryableError(ResoApiError, SourceRetryable):
    """429 (over a limit), 5xx, timeouts, resets, a truncated body."""


class ResoTokenExpired(ResoApiError, SourceTokenExpired):
    """401: the bearer token expired or was revoked."""


class ResoConfigurationError(ResoApiError, SourceConfigurationError):
    """400 (a filter or parameter the server refuses), 403 (not licensed for this
    resource), 404 (wrong base URL or resource)."""


class ResoPagingError(ResoApiError, SourcePagingError):
    """A next link that was already requested, or empty pages that keep sending one."""


class ResoProtocolError(ResoApiError, SourceProtocolError):
    """An answer that is not OData's shape, or a next link to another host."""


class ResoUnavailable(ResoApiError, SourceUnavailable):
    """The local simulator stopped answering."""


def classify(status: int, code: str | None, message: str, wait: float | None) -> ResoApiError:
    """The exception for an OData error answer (HTTP status + `error.code` + `error.message`)."""
    described = f"RESO API error (HTTP {status}{f', {code}' if code else ''}): {message}"
    if status == 429 or status >= 500:
        return ResoRetryableError(described, status=status, code=code, retry_after=wait)
    if status == 401:
        return ResoTokenExpired(described, status=status, code=code)
    if status == 403:
        return ResoConfigurationError(
            f"{described}. The token is not licensed for this resource or MLS", status=status, code=code
        )
    if status == 404:
        return ResoConfigurationError(
            f"{described}. Check the feed's base_url (e.g. https://api.mlsgrid.com/v2)", status=status, code=code
        )
    if status == 400:
        return ResoConfigurationError(f"{described}. Check the feed's filter and parameters", status=status, code=code)
    return ResoConfigurationError(described, status=status, code=code)


@dataclass(frozen=True)
class ResoPage:
    results: list[Any]
    url: str
    number: int


class ResoClient(ApiClient):
    """A RESO Web API client for one bearer token; thread-safe for concurrent requests."""

    source = "RESO API"
    retryable_error = ResoRetryableError
    unavailable_error = ResoUnavailable
    token_expired_error = ResoTokenExpired
    configuration_error = ResoConfigurationError

    def decode(self, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        wait = retry_after(response.headers.get("Retry-After"))
        body = parse_json(response.content)
        if status == 200:
            if not isinstance(body, dict):
                raise ResoRetryableError(
                    f"RESO API sent an unreadable body (HTTP 200, {len(response.content)} bytes)", status=status
                )
            return body
        error = body.get("error") if isinstance(body, dict) else None
        code = message = None
        if isinstance(error, dict):
            code = str(error.get("code"))[:60] if error.get("code") is not None else None
            message = str(error.get("message") or "")[:300] or None
        raise classify(status, code, message or f"{len(response.content)} bytes without an OData error", wait)

    def pages(
        self,
        resource: str,
        filter: Filter | None = None,
        *,
        top: int = MAX_TOP_EXPANDED,
        select: Sequence[str] | None = None,
        expand: Sequence[str] | None = None,
        orderby: str | None = None,
    ) -> Iterator[ResoPage]:
        """Every page of `resource` records matching `filter`, lazily, following next links."""
        limit = MAX_TOP_EXPANDED if expand else MAX_TOP
        if not 1 <= top <= limit:
            raise ResoConfigurationError(
                f"$top must be between 1 and {limit}{' with $expand' if expand else ''}, not {top}"
            )
        params: dict[str, str] | None = {"$top": str(top)}
        if filter is not None:
            params["$filter"] = odata.render(filter)
        if select:
            params["$select"] = ",".join(select)
        if expand:
            params["$expand"] = ",".join(expand)
        if orderby:
            params["$orderby"] = orderby
        url = f"{self.base_url}/{resource}"
        origin = httpx.URL(self.base_url)
        requested: set[tuple] = set()
        number = empty = 0
        while True:
            asked = httpx.URL(url, params=params)
            requested.add(_identity(asked))
            body = self.request(url, params)
            number += 1
            records, next_link = body.get("value"), body.get("@odata.nextLink")
            where = f"page {number} of {resource}"
            if not isinstance(records, list):
                raise ResoProtocolError(f"{where}: 'value' is {type(records).__name__}, expected a list")
            if next_link is not None and not isinstance(next_link, str):
                raise ResoProtocolError(f"{where}: '@odata.nextLink' is {type(next_link).__name__}, expected a URL")
            if records:
                empty = 0
                yield ResoPage(records, str(asked), number)
            if next_link is None:
                return
            following = asked.join(next_link)  # a relative link is the server's own
            if (following.scheme, following.host, following.port) != (origin.scheme, origin.host, origin.port):
                raise ResoProtocolError(
                    f"{where}: the next link leads to another host ({following.host!r}); "
                    "it is not followed (the token would go there)"
                )
            if _identity(following) in requested:
                raise ResoPagingError(
                    f"{where}: the server sent a next link that was already requested "
                    f"({_shown(next_link)}); refusing to page in a loop"
                )
            if not records:
                empty += 1
                if empty >= MAX_EMPTY_PAGES:
                    raise ResoPagingError(f"{where}: {empty} empty pages in a row that still send a next link")
            url, params = str(following), None

    def count(self, resource: str, filter: Filter | None = None) -> int:
        """`@odata.count` for the filter (`$count=true`, one record)."""
        params = {"$top": "1", "$count": "true", "$select": "ListingKey"}
        if filter is not None:
            params["$filter"] = odata.render(filter)
        body = self.request(f"{self.base_url}/{resource}", params)
        value = body.get("@odata.count")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ResoProtocolError("RESO API answered a $count request without @odata.count")
        return value


def _identity(url: httpx.URL) -> tuple:
    """What a request asks for, however its query is spelled (order, percent-encoding)."""
    return (url.scheme, url.host, url.port, url.path, tuple(sorted(url.params.multi_items())))


def _shown(url: str) -> str:
    return url if len(url) <= 120 else url[:117] + "..."
