"""Progress of a long pull, for the run log: minutes of paging and retries are never silent."""

from __future__ import annotations

import time
from collections.abc import Callable

from mls_assets.lib.settings import SETTINGS

PROGRESS_PAGES = SETTINGS.progress_pages
PROGRESS_SECONDS = SETTINGS.progress_seconds


class PullProgress:
    """One line every `every_pages` pages, or sooner once `every_seconds` passed since the
    last: listings so far, pages, rate, and the retries waited out. Each retry the client
    waits for gets its own line as it starts waiting."""

    def __init__(
        self,
        log: Callable[[str], None],
        label: str,
        every_pages: int = PROGRESS_PAGES,
        every_seconds: float = PROGRESS_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log, self.label = log, label
        self._every_pages, self._every_seconds, self._clock = max(1, every_pages), every_seconds, clock
        self._started = self._last = clock()
        self._last_pages = 0
        self.retries, self.waited_s = 0, 0.0
        self.lines = 0

    def retrying(self, message: str, wait_s: float) -> None:
        self.retries += 1
        self.waited_s += wait_s
        self._emit(f"{self.label}: waiting {wait_s:.1f}s before retry {self.retries}: {message}")

    def page(self, pages: int, listings: int) -> None:
        now = self._clock()
        if pages - self._last_pages < self._every_pages and now - self._last < self._every_seconds:
            return
        self._last, self._last_pages = now, pages
        elapsed = max(now - self._started, 1e-9)
        waited = f", {self.retries} retries ({self.waited_s:.0f}s waited)" if self.retries else ""
        self._emit(
            f"{self.label}: {listings} listings in {pages} pages so far, {listings / elapsed:.0f} listings/s{waited}"
        )

    def _emit(self, line: str) -> None:
        self.lines += 1
        self._log(line)
