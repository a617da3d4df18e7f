"""A token's budget keeps every limit a source sets: requests per window, and bytes per hour."""

import pytest

from mls_assets.lib.sources.rate import RateBudget, budget_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_the_tightest_of_several_limits_decides_the_wait():
    clock = FakeClock()
    # MLS Grid-like, scaled down: 2 per second and 5 per minute
    budget = RateBudget(2, 1.0, clock=lambda: clock.now, sleep=clock.sleep, also=[(5, 60.0)])
    waits = [budget.acquire() for _ in range(6)]
    assert waits[:2] == [0.0, 0.0]  # the burst of the per-second limit
    assert waits[2:4] == [pytest.approx(0.5)] * 2  # then 2 per second
    assert waits[4] == pytest.approx(0.5)  # the 5th still fits the minute
    assert waits[5] == pytest.approx(12 - 1.5, abs=0.01)  # the 6th waits for the per-minute limit


def test_bytes_beyond_the_hourly_limit_hold_the_next_request():
    clock = FakeClock()
    budget = RateBudget(100, 1.0, clock=lambda: clock.now, sleep=clock.sleep, bytes_per_hour=1000)
    assert budget.acquire() == 0.0
    budget.spend_bytes(1500)  # the answer was larger than the hour allows
    assert budget.acquire() == pytest.approx(1800.0)  # 500 bytes in debt at 1000 bytes per 3600 s
    assert budget.acquire() == 0.0


def test_a_token_keeps_one_budget_until_its_limits_change():
    first = budget_for("token-limits", 2, 1.0, also=[(7200, 3600.0)], bytes_per_hour=4e9)
    assert budget_for("token-limits", 2, 1.0, also=[(7200, 3600.0)], bytes_per_hour=4e9) is first
    assert budget_for("token-limits", 2, 1.0) is not first
