"""One request budget per access token, shared by every client of that token in a process.

Sources rate-limit per token; several feeds (and threads) may share one. A budget is one
token bucket per limit the source sets: Spark's 1,500 requests per 5 minutes is one;
MLS Grid's 2 per second, 7,200 per hour and 40,000 per day are three, plus 4 GB per hour
of answers. A request waits until every bucket has room; bytes are counted after each
answer, so the next request waits once an hour's bytes are spent.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence

Window = tuple[float, float]  # (amount, per_seconds)


class _Bucket:
    """`amount` per `per_seconds`, bursts up to `amount`; the caller holds the lock."""

    def __init__(self, amount: float, per_seconds: float, now: float) -> None:
        if amount < 1 or per_seconds <= 0:
            raise ValueError("a rate limit needs an amount >= 1 and per_seconds > 0")
        self.amount, self.per_seconds = amount, per_seconds
        self.rate = amount / per_seconds
        self.available = float(amount)
        self.updated = now

    def take(self, amount: float, now: float) -> float:
        """Take `amount`; the seconds until the bucket is out of debt again."""
        self.available = min(self.amount, self.available + (now - self.updated) * self.rate)
        self.updated = now
        self.available -= amount
        return 0.0 if self.available >= 0 else -self.available / self.rate


class RateBudget:
    """At most `requests` per `per_seconds` (and per each of `also`), and at most
    `bytes_per_hour` of answers."""

    def __init__(
        self,
        requests: int,
        per_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        also: Sequence[Window] = (),
        bytes_per_hour: float | None = None,
    ) -> None:
        self.requests = requests
        self.per_seconds = per_seconds
        self.limits = ((requests, per_seconds), *(tuple(w) for w in also))
        self.bytes_per_hour = bytes_per_hour
        self._clock = clock
        self._sleep = sleep
        now = clock()
        self._buckets = [_Bucket(amount, seconds, now) for amount, seconds in self.limits]
        self._bytes = _Bucket(bytes_per_hour, 3600.0, now) if bytes_per_hour else None
        self._lock = threading.Lock()
        self.waited = 0.0

    def acquire(self) -> float:
        """Take one request from every limit, waiting until all have room; returns the wait."""
        with self._lock:
            now = self._clock()
            wait = max(bucket.take(1, now) for bucket in self._buckets)
            if self._bytes is not None:
                wait = max(wait, self._bytes.take(0, now))
            self.waited += wait
        if wait:
            self._sleep(wait)
        return wait

    def spend_bytes(self, count: int) -> None:
        """Count an answer's size against the hourly byte limit (the next request waits)."""
        if self._bytes is not None:
            with self._lock:
                self._bytes.take(count, self._clock())

    def remaining(self) -> float:
        """Requests left now under the tightest limit."""
        with self._lock:
            now = self._clock()
            return min(min(b.amount, b.available + (now - b.updated) * b.rate) for b in self._buckets)

    @property
    def key(self) -> tuple:
        return (self.limits, self.bytes_per_hour)


_budgets: dict[str, RateBudget] = {}
_budgets_lock = threading.Lock()


def budget_for(
    token: str, requests: int, per_seconds: float, also: Sequence[Window] = (), bytes_per_hour: float | None = None
) -> RateBudget:
    """The process-wide budget of a token (keyed by its hash, never the token itself)."""
    key = hashlib.sha256(token.encode()).hexdigest()
    wanted = (((requests, per_seconds), *(tuple(w) for w in also)), bytes_per_hour)
    with _budgets_lock:
        budget = _budgets.get(key)
        if budget is None or budget.key != wanted:
            budget = _budgets[key] = RateBudget(requests, per_seconds, also=also, bytes_per_hour=bytes_per_hour)
        return budget


def budget_of(token: str, limit) -> RateBudget:
    """The token's process-wide budget under a feed's `RateLimit` (its requests per window,
    its other windows and its bytes an hour): what its listing pulls and its photo downloads
    spend alike."""
    return budget_for(
        token, limit.requests, limit.per_seconds, also=limit.windows(), bytes_per_hour=limit.bytes_per_hour
    )
