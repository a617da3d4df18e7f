"""What every listings API client shares: one token, its request budget, retries with
backoff (`Retry-After` wins), one refresh of an expired token, and transport failures
sorted into the sources' error classes. A provider's client adds its paging and its
answer format (`decode`)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from pydantic import SecretStr
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from mls_assets.lib.sources.errors import (
    SourceConfigurationError,
    SourceError,
    SourceRetryable,
    SourceTokenExpired,
    SourceUnavailable,
)
from mls_assets.lib.sources.rate import RateBudget

log = logging.getLogger("mls_assets.source")
USER_AGENT = "mls_assets/0.1"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter and a floor; `Retry-After` wins when sent (even 0)."""

    attempts: int = 8
    floor: float = 0.5
    cap: float = 60.0
    jitter: float = 1.0


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    waited_s: float = 0.0
    refreshes: int = 0
    bytes_received: int = 0
    errors_by_kind: dict[str, int] | None = None

    def count_error(self, error: BaseException) -> None:
        kind = getattr(error, "code", None) or getattr(error, "status", None) or type(error).__name__
        self.errors_by_kind = self.errors_by_kind or {}
        self.errors_by_kind[str(kind)] = self.errors_by_kind.get(str(kind), 0) + 1


class ApiClient:
    """A client for one access token; thread-safe for concurrent requests. Subclasses name
    their source, their error classes and how an answer is read (`decode`)."""

    source = "listings API"
    retryable_error: type[SourceError] = SourceRetryable
    unavailable_error: type[SourceError] = SourceUnavailable
    token_expired_error: type[SourceError] = SourceTokenExpired
    configuration_error: type[SourceError] = SourceConfigurationError

    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        budget: RateBudget | None = None,
        refresh_token: Callable[[], str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        http: httpx.Client | None = None,
        refused_is_fatal: bool = False,
        refused_hint: str = "is the server up and the feed's base_url right?",
    ) -> None:
        """`refused_is_fatal`: a refused connection means the server is gone (a server on
        loopback in local mode), not a transient failure; `refused_hint` says what to check."""
        if not access_token:
            raise self.configuration_error(f"no {self.source} access token configured for this feed")
        self.base_url = base_url.rstrip("/")
        self._token = SecretStr(access_token)
        # names the token in leases and logs without revealing it
        self.fingerprint = hashlib.sha256(access_token.encode()).hexdigest()[:16]
        self._refresh = refresh_token
        self._retry = retry or RetryPolicy()
        self._budget = budget
        self._sleep = sleep
        self._refused_is_fatal = refused_is_fatal
        self._refused_hint = refused_hint
        # A shared client (the change probe's, one per host) is not this client's to close; the
        # headers go with each request, so that clients of several sources can share it.
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=timeout)
        self._headers = {"Accept": "application/json", **(headers or {})}
        self.stats = ClientStats()
        self.on_retry: Callable[[str, float], None] | None = None  # (what failed, seconds to wait), e.g. a run log
        policy = self._retry
        self._backoff = wait_exponential_jitter(multiplier=policy.floor, max=policy.cap, jitter=policy.jitter)
        self._retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, SourceRetryable)),
            wait=self._wait,
            stop=stop_after_attempt(policy.attempts),
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r}, token=**********)"

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request --------------------------------------------------------------------

    def decode(self, response: httpx.Response) -> Any:
        """The answer's payload, or the error class that says what to do about it."""
        raise NotImplementedError

    def _send(self, url: str, params: dict[str, str] | None) -> Any:
        if self._budget is not None:
            self.stats.waited_s += self._budget.acquire()
        self.stats.requests += 1
        headers = {**self._headers, "Authorization": f"Bearer {self._token.get_secret_value()}"}
        try:
            response = self._http.get(url, params=params, headers=headers)
        except httpx.TimeoutException as error:
            raise self.retryable_error(f"{self.source} timed out ({type(error).__name__})") from None
        except httpx.ConnectError as error:
            if self._refused_is_fatal:
                raise self.unavailable_error(
                    f"nothing answers at {self.base_url} ({error}): {self._refused_hint}"
                ) from None
            raise self.retryable_error(f"{self.source} connection failed (ConnectError: {error})") from None
        except httpx.TransportError as error:
            raise self.retryable_error(f"{self.source} connection failed ({type(error).__name__}: {error})") from None
        self.stats.bytes_received += len(response.content)
        if self._budget is not None:
            self._budget.spend_bytes(len(response.content))
        return self.decode(response)

    def _wait(self, state: Any) -> float:
        error = state.outcome.exception()
        if isinstance(error, SourceError) and error.retry_after is not None:
            return error.retry_after
        return self._backoff(state)

    def _before_sleep(self, state: Any) -> None:
        error = state.outcome.exception()
        self.stats.retries += 1
        self.stats.count_error(error)
        wait = state.next_action.sleep if state.next_action else 0
        self.stats.waited_s += wait
        log.warning(
            "%s request retry %d/%d in %.2fs: %s",
            self.source,
            state.attempt_number,
            self._retry.attempts - 1,
            wait,
            error,
        )
        if self.on_retry is not None:
            self.on_retry(f"attempt {state.attempt_number}/{self._retry.attempts - 1}: {error}", wait)

    def request(self, url: str, params: dict[str, str] | None = None) -> Any:
        """One answer, retried as the policy says; an expired token is refreshed once."""
        retrying = self._retrying
        try:
            return retrying(self._send, url, params)
        except SourceTokenExpired as error:
            if self._refresh is None:
                raise self.token_expired_error(
                    f"{self.source} access token expired ({error}) and this feed has no way to refresh it: update "
                    "the token in the feed's environment variable",
                    code=error.code,
                    status=error.status,
                ) from None
            log.info("%s access token expired: refreshing once", self.source)
            try:
                self._token = SecretStr(self._refresh())
            except SourceTokenExpired as failure:  # no fresher token: say so in this source's terms
                raise self.token_expired_error(str(failure), status=failure.status, code=error.code) from None
            self.stats.refreshes += 1
            return retrying(self._send, url, params)


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


def retry_after(header: str | None) -> float | None:
    if header is None:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        return None
