"""Downloading photos politely: bounded concurrency per host, retries with backoff that honour
`Retry-After`, a byte limit enforced while reading, and the feed's token sent only where the
feed says its media need it.

Every photo ends as a `Download`: `ok` with its bytes, or `failed` with a reason a later run
can act on (`missing`, `unauthorized`, `rate_limited`, `server_error`, `timeout`,
`unreachable`, `too_large`, `bad_url`, `refused_host`). One photo's failure never stops the
others.

Where a photo URL may point is checked before any request (a hostile record must not make us
fetch from inside our network): in local mode only loopback (the bundled simulator); otherwise
any host name, but no IP address that is not a public one and no `localhost`.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from mls_assets.lib.endpoint_policy import is_loopback_host
from mls_assets.lib.local_mode import is_local_mode
from mls_assets.lib.media.images import Limits
from mls_assets.lib.sources.http import USER_AGENT, retry_after
from mls_assets.lib.sources.rate import RateBudget

RETRYABLE = {408, 425, 429, 500, 502, 503, 504}


def host_allowed(host: str, local: bool) -> bool:
    """May a photo be fetched from `host`? (No name is resolved: the check needs no network.)"""
    if is_loopback_host(host):
        return local
    if local:
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_global
    except ValueError:
        return True  # a host name


def batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


@dataclass(frozen=True)
class Download:
    url: str
    ok: bool
    content: bytes = b""
    content_type: str | None = None
    reason: str | None = None  # why it failed
    attempts: int = 0


class PhotoDownloader:
    """Thread-safe; one per run and feed. `token_hosts`: the hosts that may receive the feed's
    token (some RESO media hosts answer only to it); anywhere else a 401 is a failure.
    `local`: only loopback hosts are fetched from (default: in local mode). `budget`: the
    token's request budget (`rate.budget_for`), which every request carrying the token spends,
    bytes included, as the feed's listing pulls do."""

    def __init__(
        self,
        *,
        token: str | None = None,
        token_hosts: Iterable[str] = (),
        local: bool | None = None,
        budget: RateBudget | None = None,
        per_host: int = 4,
        timeout_s: float = 20.0,
        attempts: int = 4,
        floor_s: float = 0.5,
        cap_s: float = 30.0,
        limits: Limits = Limits(),
        sleep: Callable[[float], None] = time.sleep,
        http: httpx.Client | None = None,
    ) -> None:
        self._token = SecretStr(token) if token else None
        self._token_hosts = {host.lower() for host in token_hosts}
        self._local = is_local_mode() if local is None else local
        self._budget = budget
        self._per_host = per_host
        self._attempts = attempts
        self._floor, self._cap = floor_s, cap_s
        self._limits = limits
        self._sleep = sleep
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=timeout_s, headers={"User-Agent": USER_AGENT}, follow_redirects=True)
        self._hosts: dict[str, threading.Semaphore] = {}
        self._lock = threading.Lock()
        self.requests = 0
        self.waited_s = 0.0

    def __repr__(self) -> str:
        return f"PhotoDownloader(per_host={self._per_host}, token={'**********' if self._token else None})"

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> PhotoDownloader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _slot(self, host: str) -> threading.Semaphore:
        with self._lock:
            return self._hosts.setdefault(host, threading.Semaphore(self._per_host))

    def fetch(self, url: str) -> Download:
        """One photo's bytes, or why not."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("https", "http") or not host:
            return Download(url, False, reason="bad_url")
        if not host_allowed(host, self._local):
            return Download(url, False, reason="refused_host")
        with_token = False
        reason = "unreachable"
        for attempt in range(1, self._attempts + 1):
            wait = min(self._cap, self._floor * 2 ** (attempt - 1))
            with self._slot(host):
                outcome = self._get(url, with_token)
            if isinstance(outcome, Download):
                return Download(url, outcome.ok, outcome.content, outcome.content_type, outcome.reason, attempt)
            status, hinted = outcome
            if status in (401, 403) and self._token and host in self._token_hosts and not with_token:
                with_token = True  # this host's media answer only to the feed's token
                continue
            if status in (401, 403):
                return Download(url, False, reason="unauthorized", attempts=attempt)
            if status in (404, 410):
                return Download(url, False, reason="missing", attempts=attempt)
            reason = {429: "rate_limited", 0: "unreachable", -1: "timeout"}.get(status, "server_error")
            if status not in RETRYABLE and status > 0:
                return Download(url, False, reason=f"http_{status}", attempts=attempt)
            if attempt < self._attempts:
                delay = min(self._cap, hinted) if hinted is not None else wait
                with self._lock:
                    self.waited_s += delay
                self._sleep(delay)
        return Download(url, False, reason=reason, attempts=self._attempts)

    def _get(self, url: str, with_token: bool) -> Download | tuple[int, float | None]:
        """A finished download, or (status, Retry-After) to decide on: 0 for a connection
        failure, -1 for a timeout."""
        headers = {"Accept": "image/*"}
        if with_token and self._token:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
            if self._budget is not None:
                self._budget.acquire()
        with self._lock:
            self.requests += 1
        try:
            with self._http.stream("GET", url, headers=headers) as response:
                if response.status_code != 200:
                    return response.status_code, retry_after(response.headers.get("Retry-After"))
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > self._limits.max_bytes:
                    return Download(url, False, reason="too_large")
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self._limits.max_bytes:
                        return Download(url, False, reason="too_large")
                    chunks.append(chunk)
                if with_token and self._budget is not None:
                    self._budget.spend_bytes(size)
                return Download(url, True, b"".join(chunks), response.headers.get("Content-Type"))
        except httpx.TimeoutException:
            return -1, None
        except httpx.TransportError:
            return 0, None

    def fetch_all(self, urls: Iterable[str], workers: int = 16) -> Iterator[Download]:
        """Each URL's download, in order; at most `per_host` at once on one host, and at most
        `4 x workers` photos' bytes held at once (a feed's thousands are not all in memory)."""
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for batch in batched(urls, 4 * workers):
                yield from pool.map(self.fetch, batch)
