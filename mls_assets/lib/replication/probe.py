"""The change probe's bookkeeping: when each feed may be asked again, and how long to back
off after a failed probe (Retry-After wins; else 1, 2, 4 ... minutes up to 15)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mls_assets.lib.settings import SETTINGS

PROBE_INTERVAL_S = SETTINGS.probe_interval_s
# The probe asks for records modified after the cursor minus this lag: a record that a source
# shows a little after its ModificationTimestamp (replication lag) is still seen; it costs at
# most one extra run after a burst of changes.
PROBE_LAG_S = SETTINGS.probe_lag_s
MAX_BACKOFF_S = 900.0
FIRST_BACKOFF_S = 60.0  # a failing source is asked again after 1, 2, 4 ... minutes, however often the probe ticks


@dataclass
class ProbeState:
    """Per feed: the earliest next probe and the failures in a row."""

    next_at: datetime | None = None
    failures: int = 0

    def due(self, now: datetime) -> bool:
        return self.next_at is None or now >= self.next_at

    def succeeded(self) -> None:
        """Due again at the sensor's next tick (the sensor itself runs every 30 s; a
        deadline here would skip every other tick when ticks drift by a second)."""
        self.failures = 0
        self.next_at = None

    def failed(self, now: datetime, retry_after: float | None, interval_s: float = PROBE_INTERVAL_S) -> float:
        """Back off; the seconds until the next probe."""
        self.failures += 1
        first = max(interval_s, FIRST_BACKOFF_S)
        wait = retry_after if retry_after is not None else min(first * 2 ** (self.failures - 1), MAX_BACKOFF_S)
        wait = max(wait, interval_s)
        self.next_at = now + timedelta(seconds=wait)
        return wait

    def to_json(self) -> dict[str, Any]:
        return {"next": self.next_at.isoformat() if self.next_at else None, "failures": self.failures}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ProbeState:
        data = data or {}
        return cls(datetime.fromisoformat(data["next"]) if data.get("next") else None, int(data.get("failures", 0)))
