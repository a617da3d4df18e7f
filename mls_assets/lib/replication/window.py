"""What a run's days of one feed pull from its source: past days whole, today from the feed cursor
(minus an overlap), or exactly some listings.

Contiguous days of one feed are one pull (a range run over a month is one query, not
thirty); each record then counts for the day of its ModificationTimestamp. The feed's first
pull (no cursor yet) takes the whole history whatever days it was asked for, so that a cursor
always means "everything before it was pulled once"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta


@dataclass(frozen=True)
class PullWindow:
    """`ModificationTimestamp` in [start, end); `start=None` reaches back to the oldest
    record, `end=None` up to now; `incremental` marks a window that reaches today (the feed
    cursor advances once its records are stored)."""

    start: datetime | None
    end: datetime | None
    incremental: bool
    empty: bool = False
    only_keys: tuple[str, ...] = ()
    after_cursor: bool = False  # `start` is the cursor minus the overlap: strictly after it

    def describe(self) -> str:
        if self.only_keys:
            return f"{len(self.only_keys)} listings by key"
        if self.empty:
            return "future day: nothing to pull"
        end = self.end.isoformat() if self.end else "now"
        if self.start is None:
            return "full pull (no cursor yet)" if self.end is None else f"everything modified before {end}"
        return f"{self.start.isoformat()} .. {end}"


def window_for_days(
    days: Sequence[date],
    now: datetime,
    since: datetime | None,
    only_keys: tuple[str, ...] = (),
    first_day: date | None = None,
) -> PullWindow:
    """Contiguous `days` of one feed as one pull. Past days are pulled whole; a window that
    reaches today runs to now and advances the cursor; today alone starts at the cursor
    (minus the overlap); no cursor yet and today included: the whole history. `first_day`
    (the partitions' first day) also holds what was modified before it. `only_keys` pulls
    just those listings, whatever their day."""
    if only_keys:
        return PullWindow(None, None, incremental=False, only_keys=only_keys)
    today = now.astimezone(UTC).date()
    wanted = sorted(d for d in days if d <= today)
    if not wanted:
        return PullWindow(None, None, incremental=False, empty=True)
    reaches_today = wanted[-1] == today
    if reaches_today and since is None:
        return PullWindow(None, None, incremental=True)
    if wanted == [today]:
        return PullWindow(since, None, incremental=True, after_cursor=True)
    start = None if wanted[0] == first_day else datetime.combine(wanted[0], time(), UTC)
    end = None if reaches_today else datetime.combine(wanted[-1] + timedelta(days=1), time(), UTC)
    return PullWindow(start, end, incremental=reaches_today)


def contiguous(days: Sequence[date]) -> list[list[date]]:
    """`days` sorted and split where one does not follow the other."""
    runs: list[list[date]] = []
    for day in sorted(set(days)):
        if runs and day - runs[-1][-1] == timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


# Every record in the feed's scope, whatever its date (the sweep's keys, the source's count).
EVERYTHING = PullWindow(None, None, incremental=False)
