"""Faults the simulator injects on demand, to prove the client survives them."""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass, field

FAULT_KINDS = (
    "429",  # HTTP 429, Retry-After, code 1550
    "503",  # HTTP 503, Retry-After, code 1550 (Spark sends over-rate this way too)
    "500",  # HTTP 500 with an HTML body
    "success_false",  # HTTP 200 but D.Success false, code 1024
    "delay",  # answer only after `delay_seconds` (beyond the client's timeout)
    "truncated",  # HTTP 200 with a body cut short (invalid JSON)
    "reset",  # connection closed without an answer
    "expire_token",  # the caller's token expires: 401 code 1020 from now on
    "repeat_token",  # a full page whose SkipToken does not advance
    "wrong_host",  # code 1021: not retryable
    "results_object",  # D.Results is an object, not a list: a protocol defect, not retryable
    "empty_page",  # D.Results is empty mid-feed: the client takes it as the end (a truncated answer)
)
RETRYABLE_FAULTS = ("429", "503", "500", "success_false", "delay", "truncated", "reset")


@dataclass
class FaultPlan:
    """Faults by rate (each listings request draws) and/or a queue (the next requests)."""

    rate: float = 0.0
    kinds: tuple[str, ...] = RETRYABLE_FAULTS
    queue: deque[str] = field(default_factory=deque)
    retry_after: str = "0"
    delay_seconds: float = 2.0
    seed: int = 1
    injected: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        for kind in (*self.kinds, *self.queue):
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")

    def enqueue(self, *kinds: str) -> None:
        unknown = [k for k in kinds if k not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"unknown fault(s) {unknown}; known: {', '.join(FAULT_KINDS)}")
        with self._lock:
            self.queue.extend(kinds)

    def draw(self) -> str | None:
        with self._lock:
            if self.queue:
                kind = self.queue.popleft()
            elif self.rate and self._rng.random() < self.rate:
                kind = self._rng.choice(self.kinds)
            else:
                return None
            self.injected[kind] = self.injected.get(kind, 0) + 1
            return kind
