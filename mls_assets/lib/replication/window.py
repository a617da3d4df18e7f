"""What one (feed, day) partition pulls from Spark: a past day whole, today from the feed
cursor (minus an overlap), or exactly some listings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from mls_assets.lib.spark import sparkql
from mls_assets.lib.tenants import FeedConfig


@dataclass(frozen=True)
class PullWindow:
    """`ModificationTimestamp` in [start, end); `start=None` is a full pull, `incremental`
    marks today's partition (pulled from the feed cursor, which it then advances)."""

    start: datetime | None
    end: datetime | None
    incremental: bool
    empty: bool = False
    only_keys: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.only_keys:
            return f"{len(self.only_keys)} listings by key"
        if self.empty:
            return "future day: nothing to pull"
        if self.start is None:
            return "full pull (no cursor yet)"
        end = self.end.isoformat() if self.end else "now"
        return f"{self.start.isoformat()} .. {end}"


def window_for(day: date, now: datetime, since: datetime | None, only_keys: tuple[str, ...] = ()) -> PullWindow:
    """A past day is re-pulled whole; today is pulled from the cursor (minus the overlap);
    `only_keys` pulls just those listings, whatever their day."""
    if only_keys:
        return PullWindow(None, None, incremental=False, only_keys=only_keys)
    today = now.astimezone(UTC).date()
    if day > today:
        return PullWindow(None, None, incremental=False, empty=True)
    if day < today:
        start = datetime.combine(day, time(), UTC)
        return PullWindow(start, start + timedelta(days=1), incremental=False)
    return PullWindow(since, None, incremental=True)


def listings_filter(feed: FeedConfig, window: PullWindow) -> sparkql.Filter:
    """`MlsId Eq '...' And (PropertyType Eq 'A' Or ...) And ModificationTimestamp ...`."""
    parts: list[sparkql.Filter | None] = [
        sparkql.eq("MlsId", feed.mls_id),
        sparkql.one_of("PropertyType", feed.property_types) if feed.property_types else None,
    ]
    if window.only_keys:
        parts.append(sparkql.one_of("ListingKey", window.only_keys))
    if window.start is not None:
        op = sparkql.ge if not window.incremental else sparkql.gt
        parts.append(op("ModificationTimestamp", window.start))
    if window.end is not None:
        parts.append(sparkql.lt("ModificationTimestamp", window.end))
    return sparkql.all_of(*parts)
