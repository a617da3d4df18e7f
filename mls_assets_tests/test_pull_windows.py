"""What a run's days of one feed pull (pure rules), and the pull's progress lines."""

from datetime import UTC, date, datetime, timedelta

from mls_assets.lib.replication.progress import PullProgress
from mls_assets.lib.replication.window import contiguous, window_for_days

NOW = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)
TODAY = NOW.date()
CURSOR = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
day = lambda n: TODAY - timedelta(days=n)  # noqa: E731


def test_past_days_are_one_whole_window_and_today_alone_starts_at_the_cursor():
    past = window_for_days([day(3), day(2), day(1)], NOW, CURSOR)
    assert (past.start, past.end, past.incremental) == (
        datetime(2026, 11, 23, tzinfo=UTC),
        datetime(2026, 11, 26, tzinfo=UTC),
        False,
    )
    today = window_for_days([TODAY], NOW, CURSOR)
    assert (today.start, today.end, today.incremental, today.after_cursor) == (CURSOR, None, True, True)


def test_a_range_reaching_today_runs_to_now_from_its_first_day_and_advances_the_cursor():
    window = window_for_days([day(2), day(1), TODAY], NOW, CURSOR)
    assert (window.start, window.end, window.incremental, window.after_cursor) == (
        datetime(2026, 11, 24, tzinfo=UTC),
        None,
        True,
        False,
    )


def test_a_first_pull_takes_the_whole_history_and_the_first_day_holds_what_is_older():
    assert window_for_days([day(5), TODAY], NOW, None).start is None  # no cursor yet: everything
    first = window_for_days([date(2025, 1, 1), date(2025, 1, 2)], NOW, CURSOR, first_day=date(2025, 1, 1))
    assert (first.start, first.end) == (None, datetime(2025, 1, 3, tzinfo=UTC))


def test_future_days_pull_nothing_and_keys_pull_only_those_listings():
    assert window_for_days([TODAY + timedelta(days=1)], NOW, CURSOR).empty
    assert window_for_days([day(1)], NOW, CURSOR, only_keys=("K1",)).only_keys == ("K1",)


def test_days_split_into_stretches():
    assert contiguous([day(1), day(5), day(2), day(4)]) == [[day(5), day(4)], [day(2), day(1)]]


def test_progress_says_how_far_every_few_pages_and_every_retry():
    lines, clock = [], iter([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    progress = PullProgress(lines.append, "gps 2026-11-26", every_pages=2, every_seconds=1e9, clock=lambda: next(clock))
    for pages in range(5):
        progress.page(pages, pages * 100)
    progress.retrying("429 rate limited", 2.5)
    assert lines[:2] == [
        "gps 2026-11-26: 200 listings in 2 pages so far, 67 listings/s",
        "gps 2026-11-26: 400 listings in 4 pages so far, 80 listings/s",
    ]
    assert lines[2] == "gps 2026-11-26: waiting 2.5s before retry 1: 429 rate limited"
