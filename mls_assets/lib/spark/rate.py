"""One request budget per access token, shared by every client of that token in a process.

Spark rate-limits per token; several feeds (and threads) may share one. A token bucket per
token keeps them, together, under the configured requests per interval.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable


class RateBudget:
    """Token bucket: at most `requests` per `per_seconds`, bursts up to `requests`."""

    def __init__(
        self,
        requests: int,
        per_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests < 1 or per_seconds <= 0:
            raise ValueError("a rate budget needs requests >= 1 and per_seconds > 0")
        self.requests = requests
        self.per_seconds = per_seconds
        self._rate = requests / per_seconds
        self._clock = clock
        self._sleep = sleep
        self._available = float(requests)
        self._updated = clock()
        self._lock = threading.Lock()
        self.waited = 0.0

    def acquire(self) -> float:
        """Take one request from the budget, waiting if it is spent; returns the wait."""
        with self._lock:
            now = self._clock()
            self._available = min(self.requests, self._available + (now - self._updated) * self._rate)
            self._updated = now
            self._available -= 1
            wait = 0.0 if self._available >= 0 else -self._available / self._rate
            self.waited += wait
        if wait:
            self._sleep(wait)
        return wait


_budgets: dict[str, RateBudget] = {}
_budgets_lock = threading.Lock()


def budget_for(token: str, requests: int, per_seconds: float) -> RateBudget:
    """The process-wide budget of a token (keyed by its hash, never the token itself)."""
    key = hashlib.sha256(token.encode()).hexdigest()
    with _budgets_lock:
        budget = _budgets.get(key)
        if budget is None or (budget.requests, budget.per_seconds) != (requests, per_seconds):
            budget = _budgets[key] = RateBudget(requests, per_seconds)
        return budget
