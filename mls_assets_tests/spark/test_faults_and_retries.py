"""Every fault class is survived (no record lost or repeated) or fails clearly."""

import logging

import pytest

from mls_assets.lib.sources.rate import RateBudget, budget_for
from mls_assets.lib.sources.spark.client import RetryPolicy, SparkClient
from mls_assets.lib.sources.spark.errors import (
    SparkConfigurationError,
    SparkRetryableError,
    SparkTokenExpired,
)
from mls_assets.simulator import DEMO_TOKEN
from mls_assets.simulator.faults import FaultPlan
from mls_assets_tests.support.sources import FAST_RETRY


def all_keys(client, limit=40):
    return [r["Id"] for r in client.listings(limit=limit)]


@pytest.mark.parametrize("fault", ["429", "503", "500", "success_false", "truncated", "reset"])
def test_transient_faults_are_retried_without_loss_or_repeats(client, simulator, market, fault):
    want = [s.timeline.key for s in market.states()]
    simulator.inject(fault, fault)  # the first two requests fail
    keys = all_keys(client)
    assert keys == want
    assert client.stats.retries == 2
    assert simulator.faults.injected[fault] >= 2


def test_retry_after_is_honoured_including_zero(simulator, sleeps):
    simulator.set_faults(FaultPlan(retry_after="7"))
    simulator.inject("429", "503")
    client = SparkClient(simulator.url, DEMO_TOKEN, retry=FAST_RETRY, sleep=sleeps.append)
    next(client.pages(limit=5))
    assert sleeps == [7.0, 7.0]
    simulator.set_faults(FaultPlan(retry_after="0"))
    simulator.inject("429")
    sleeps.clear()
    next(client.pages(limit=5))
    assert sleeps == [0.0]


def test_backoff_grows_exponentially_from_a_floor_with_jitter(simulator, sleeps):
    policy = RetryPolicy(attempts=5, floor=0.5, cap=3.0, jitter=0.25)
    simulator.inject("500", "500", "500", "500")
    client = SparkClient(simulator.url, DEMO_TOKEN, retry=policy, sleep=sleeps.append)
    next(client.pages(limit=5))
    assert len(sleeps) == 4
    for attempt, wait in enumerate(sleeps):
        base = min(3.0, 0.5 * 2**attempt)
        assert base <= wait <= min(3.0, base + 0.25) + 1e-9
    assert sleeps[0] >= 0.5  # never hammer the server: there is a floor


def test_a_delay_beyond_the_client_timeout_is_retried(simulator, market, sleeps):
    simulator.set_faults(FaultPlan(delay_seconds=2.0))
    simulator.inject("delay")
    client = SparkClient(simulator.url, DEMO_TOKEN, retry=FAST_RETRY, sleep=sleeps.append, timeout=0.3)
    assert all_keys(client, limit=200) == [s.timeline.key for s in market.states()]
    assert client.stats.retries == 1 and "SparkRetryableError" in client.stats.errors_by_kind


def test_retries_give_up_after_the_policy_with_the_cause(simulator, sleeps):
    simulator.inject(*["503"] * 10)
    client = SparkClient(simulator.url, DEMO_TOKEN, retry=RetryPolicy(attempts=3, floor=0.01), sleep=sleeps.append)
    with pytest.raises(SparkRetryableError, match=r"HTTP 503, code 1550\): Over rate limit"):
        next(client.pages(limit=5))
    assert client.stats.requests == 3


def test_expired_token_is_refreshed_once_when_the_feed_can(simulator, market, sleeps):
    simulator.add_token("fresh-token")
    simulator.add_token("old-token")
    refreshed = []

    def refresh():
        refreshed.append(True)
        return "fresh-token"

    client = SparkClient(simulator.url, "old-token", retry=FAST_RETRY, sleep=sleeps.append, refresh_token=refresh)
    pages = client.pages(limit=50)
    keys = [r["Id"] for r in next(pages).results]
    simulator.inject("expire_token")  # the token expires mid-run
    keys += [r["Id"] for page in pages for r in page.results]
    assert keys == [s.timeline.key for s in market.states()]
    assert refreshed == [True] and client.stats.refreshes == 1


def test_expired_token_without_refresh_fails_clearly(simulator, sleeps):
    simulator.add_token("short-lived")
    simulator.expire_token("short-lived")
    client = SparkClient(simulator.url, "short-lived", retry=FAST_RETRY, sleep=sleeps.append)
    with pytest.raises(SparkTokenExpired, match="no way to refresh"):
        next(client.pages())
    assert client.stats.requests == 1


def test_wrong_host_fails_at_once(client, simulator, sleeps):
    simulator.inject("wrong_host")
    with pytest.raises(SparkConfigurationError, match="code 1021.*wrong host"):
        next(client.pages())
    assert client.stats.requests == 1 and sleeps == []


def test_a_ten_percent_fault_rate_loses_and_repeats_nothing(simulator, market, sleeps):
    simulator.set_faults(
        FaultPlan(rate=0.1, kinds=("429", "503", "500", "success_false", "truncated", "reset"), seed=3)
    )
    client = SparkClient(simulator.url, DEMO_TOKEN, retry=FAST_RETRY, sleep=sleeps.append)
    keys = all_keys(client, limit=10)
    assert keys == [s.timeline.key for s in market.states()]
    assert client.stats.retries == sum(simulator.faults.injected.values()) > 0


def test_the_token_never_reaches_logs_or_errors(simulator, caplog, sleeps):
    secret = "tok-3f9a1c-secret-value"
    simulator.add_token(secret)
    simulator.inject("429", "500", "truncated", "reset", "expire_token")
    client = SparkClient(simulator.url, secret, retry=FAST_RETRY, sleep=sleeps.append)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(SparkTokenExpired) as failure:
            list(client.listings(limit=100))
    assert client.stats.retries == 4
    assert secret not in caplog.text
    assert secret not in str(failure.value) and secret not in repr(client)
    assert caplog.records, "retries should be logged"


def test_one_rate_budget_per_token_is_shared_by_its_clients():
    now = [0.0]
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        now[0] += seconds

    budget = RateBudget(requests=4, per_seconds=2.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        assert budget.acquire() == 0.0  # the burst
    assert budget.acquire() == pytest.approx(0.5)  # then 2 requests per second
    assert budget.acquire() == pytest.approx(0.5)
    assert waits == [pytest.approx(0.5)] * 2
    assert budget_for("token-a", 10, 1.0) is budget_for("token-a", 10, 1.0)
    assert budget_for("token-a", 10, 1.0) is not budget_for("token-b", 10, 1.0)


def test_clients_of_one_token_draw_from_the_same_budget(simulator):
    simulator.add_token("shared-token")
    hourly = ("shared-token", 5, 3600.0)  # refills too slowly to matter during the test
    first = SparkClient(simulator.url, "shared-token", budget=budget_for(*hourly))
    second = SparkClient(simulator.url, "shared-token", budget=budget_for(*hourly))
    next(first.pages(limit=1))
    next(second.pages(limit=1))
    assert budget_for(*hourly).remaining() == pytest.approx(3, abs=0.01)


def test_a_feed_refreshes_an_expired_token_from_its_rotated_variable(simulator, market, monkeypatch):
    from mls_assets.defs.resources import SourceResource
    from mls_assets.lib.tenants import FeedConfig

    feed = FeedConfig(
        tenant_id="jpsrealtor", mls="gps", mls_id="20190211172710340762000000", token_env="TEST_TOKEN_ROT"
    )
    simulator.add_token("old-token")
    simulator.add_token("rotated-token")
    monkeypatch.setenv("TEST_TOKEN_ROT", "old-token")
    source = SourceResource(base_urls={"spark": simulator.url}, retry_floor_s=0.01)
    client = source.provider_for(feed).client
    simulator.expire_token("old-token")
    with pytest.raises(SparkTokenExpired, match="TEST_TOKEN_ROT holds no newer one"):
        next(client.pages(limit=5))  # not rotated yet: a clear failure, naming the variable

    simulator.add_token("second-token")
    monkeypatch.setenv("TEST_TOKEN_ROT", "second-token")
    client = source.provider_for(feed).client
    pages = client.pages(limit=50)
    first = next(pages)
    simulator.expire_token("second-token")  # expires mid-run ...
    monkeypatch.setenv("TEST_TOKEN_ROT", "rotated-token")  # ... and the operator has rotated it
    keys = [r["Id"] for r in first.results] + [r["Id"] for page in pages for r in page.results]
    assert keys == [s.timeline.key for s in market.states()]
    assert client.stats.refreshes == 1
