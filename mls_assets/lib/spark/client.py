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

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from pydantic import SecretStr
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from mls_assets.lib.spark.errors import (
    SparkApiError,
    SparkConfigurationError,
    SparkPagingError,
    SparkProtocolError,
    SparkRetryableError,
    SparkTokenExpired,
    SparkUnavailable,
    classify,
)
from mls_assets.lib.spark.rate import RateBudget
from mls_assets.lib.transform.screen import key_or_none

log = logging.getLogger("mls_assets.spark")
USER_AGENT = "mls_assets/0.1"
MAX_LIMIT = 1000


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter and a floor; `Retry-After` wins when sent (even 0)."""

    attempts: int = 8
    floor: float = 0.5
    cap: float = 60.0
    jitter: float = 1.0


@dataclass(frozen=True)
class Page:
    results: list[dict[str, Any]]
    request_token: str
    next_token: str
    number: int


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    waited_s: float = 0.0
    refreshes: int = 0
    errors_by_kind: dict[str, int] | None = None

    def count_error(self, error: BaseException) -> None:
        kind = getattr(error, "code", None) or getattr(error, "status", None) or type(error).__name__
        self.errors_by_kind = self.errors_by_kind or {}
        self.errors_by_kind[str(kind)] = self.errors_by_kind.get(str(kind), 0) + 1


class SparkClient:
    """A client for one access token; thread-safe for concurrent requests."""

    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        user_agent: str = USER_AGENT,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        budget: RateBudget | None = None,
        refresh_token: Callable[[], str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        http: httpx.Client | None = None,
        refused_is_fatal: bool = False,
    ) -> None:
        """`refused_is_fatal`: a refused connection means the server is gone (the local
        simulator on loopback), not a transient failure."""
        if not access_token:
            raise SparkConfigurationError("no Spark access token configured for this feed")
        self.base_url = base_url.rstrip("/")
        self._token = SecretStr(access_token)
        # names the token in leases and logs without revealing it
        self.fingerprint = hashlib.sha256(access_token.encode()).hexdigest()[:16]
        self._refresh = refresh_token
        self._retry = retry or RetryPolicy()
        self._budget = budget
        self._sleep = sleep
        self._refused_is_fatal = refused_is_fatal
        self._http = http or httpx.Client(
            timeout=timeout, headers={"X-SparkApi-User-Agent": user_agent, "Accept": "application/json"}
        )
        self.stats = ClientStats()
        self.on_retry: Callable[[str, float], None] | None = None  # (what failed, seconds to wait), e.g. a run log
        policy = self._retry
        self._backoff = wait_exponential_jitter(multiplier=policy.floor, max=policy.cap, jitter=policy.jitter)
        self._retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, SparkRetryableError)),
            wait=self._wait,
            stop=stop_after_attempt(policy.attempts),
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )

    def __repr__(self) -> str:
        return f"SparkClient({self.base_url!r}, token=**********)"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SparkClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request --------------------------------------------------------------------

    def _send(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        if self._budget is not None:
            self.stats.waited_s += self._budget.acquire()
        self.stats.requests += 1
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        try:
            response = self._http.get(f"{self.base_url}/{path}", params=params, headers=headers)
        except httpx.TimeoutException as error:
            raise SparkRetryableError(f"Spark API timed out ({type(error).__name__})") from None
        except httpx.ConnectError as error:
            if self._refused_is_fatal:
                raise SparkUnavailable(f"nothing answers at {self.base_url} ({error}): is the local Spark simulator "
                                       "running? `mls-assets sim start` (make run and make dev start it)") from None
            raise SparkRetryableError(f"Spark API connection failed (ConnectError: {error})") from None
        except httpx.TransportError as error:
            raise SparkRetryableError(f"Spark API connection failed ({type(error).__name__}: {error})") from None
        return self._decode(response)

    @staticmethod
    def _decode(response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        retry_after = _retry_after(response.headers.get("Retry-After"))
        body = parse_json(response.content)
        envelope = body.get("D") if isinstance(body, dict) else None
        if not isinstance(envelope, dict):
            if status == 200 or status >= 500 or status == 429:
                raise SparkRetryableError(
                    f"Spark API sent an unreadable body (HTTP {status}, {len(response.content)} bytes)",
                    status=status, retry_after=retry_after,
                )  # fmt: skip
            raise SparkConfigurationError(f"Spark API error (HTTP {status}) without a D envelope", status=status)
        if status == 200 and envelope.get("Success") is True:
            return envelope
        code = envelope.get("Code")
        raise classify(status, code if isinstance(code, int) else None,
                       str(envelope.get("Message") or "no message")[:300], retry_after)  # fmt: skip

    def _wait(self, state: Any) -> float:
        error = state.outcome.exception()
        if isinstance(error, SparkApiError) and error.retry_after is not None:
            return error.retry_after
        return self._backoff(state)

    def _before_sleep(self, state: Any) -> None:
        error = state.outcome.exception()
        self.stats.retries += 1
        self.stats.count_error(error)
        wait = state.next_action.sleep if state.next_action else 0
        self.stats.waited_s += wait
        log.warning("Spark request retry %d/%d in %.2fs: %s", state.attempt_number,
                    self._retry.attempts - 1, wait, error)  # fmt: skip
        if self.on_retry is not None:
            self.on_retry(f"attempt {state.attempt_number}/{self._retry.attempts - 1}: {error}", wait)

    def _request(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        retrying = self._retrying
        try:
            return retrying(self._send, path, params)
        except SparkTokenExpired:
            if self._refresh is None:
                raise SparkTokenExpired(
                    "Spark access token expired (code 1020) and this feed has no way to refresh "
                    "it: update the token in the feed's environment variable", code=1020, status=401,
                ) from None  # fmt: skip
            log.info("Spark access token expired: refreshing once")
            self._token = SecretStr(self._refresh())
            self.stats.refreshes += 1
            return retrying(self._send, path, params)

    # -- listings -----------------------------------------------------------------------

    def pages(
        self,
        filter: str | Any | None = None,
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
        if filter is not None and str(filter):
            base["_filter"] = str(filter)
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

    def listings(self, filter: str | Any | None = None, **options: Any) -> Iterator[dict[str, Any]]:
        for page in self.pages(filter, **options):
            yield from page.results

    def count(self, filter: str | Any | None = None) -> int:
        """`D.Pagination.TotalRows` for the filter (`_pagination=count`)."""
        params = {"_limit": "1", "_pagination": "count"}
        if filter is not None and str(filter):
            params["_filter"] = str(filter)
        envelope = self._request("listings", params)
        try:
            return int(envelope["Pagination"]["TotalRows"])
        except (KeyError, TypeError, ValueError):
            raise SparkApiError("Spark API answered a count request without Pagination.TotalRows") from None


def parse_json(content: bytes) -> Any:
    """The body as JSON, or None. Strict and fast first; else leniently, so that one bad
    value (NaN, Infinity, a byte that is not UTF-8) costs only its own record, which the
    screen quarantines, and not the whole page. A truncated body stays unreadable."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(content.decode("utf-8", errors="surrogateescape"))
    except (ValueError, RecursionError):
        return None


def _retry_after(header: str | None) -> float | None:
    if header is None:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        return None
