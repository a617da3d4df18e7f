"""The source client tests' market, simulator and clients: a fixed market served in-process,
retries that record their waits instead of sleeping."""

from datetime import UTC, datetime

import pytest

from mls_assets.lib.sources.spark.client import RetryPolicy, SparkClient
from mls_assets.simulator import DEMO_TOKEN, Market, SimulatorServer
from mls_assets.simulator.faults import FaultPlan

ANCHOR = datetime(2026, 11, 20, tzinfo=UTC)
FAST_RETRY = RetryPolicy(attempts=6, floor=0.01, cap=0.05, jitter=0.0)


@pytest.fixture(scope="module")
def market():
    return Market(listings=120, seed=11, anchor=ANCHOR)


@pytest.fixture
def simulator(market):
    market.set_clock(ANCHOR)
    with SimulatorServer(market) as server:
        yield server


@pytest.fixture
def sleeps():
    """Waits the client asked for, recorded instead of slept."""
    return []


@pytest.fixture
def client(simulator, sleeps):
    with SparkClient(simulator.url, DEMO_TOKEN, retry=FAST_RETRY, sleep=sleeps.append, timeout=5) as spark:
        yield spark


def no_faults() -> FaultPlan:
    return FaultPlan()
