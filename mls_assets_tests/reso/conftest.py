"""The RESO client tests share the Spark client tests' market and simulator (one server
speaks both dialects)."""

import pytest

from mls_assets.lib.sources.reso.client import ResoClient
from mls_assets.simulator import DEMO_TOKEN
from mls_assets_tests.support.sources import FAST_RETRY, market, simulator, sleeps  # noqa: F401


@pytest.fixture
def client(simulator, sleeps):  # noqa: F811  (the fixtures imported above)
    with ResoClient(simulator.reso_url, DEMO_TOKEN, retry=FAST_RETRY, sleep=sleeps.append, timeout=5) as reso:
        yield reso
