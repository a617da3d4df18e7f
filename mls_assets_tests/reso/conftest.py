from datetime import UTC, datetime

import pytest

from mls_assets.lib.providers.http import RetryPolicy
from mls_assets.lib.reso.client import ResoClient
from mls_assets.lib.spark.simulator import DEMO_TOKEN, Market, SimulatorServer

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
    with ResoClient(simulator.reso_url, DEMO_TOKEN, retry=FAST_RETRY, sleep=sleeps.append, timeout=5) as reso:
        yield reso
