"""The source registry: every source's default base URL is found the same way, by its name."""

import pytest

from mls_assets.defs.resources import SourceResource
from mls_assets.lib.sources import PROVIDERS
from mls_assets.lib.sources.errors import SourceConfigurationError
from mls_assets.lib.tenants import FeedConfig

MLS_IDS = {"spark": "20190211172710340762000000", "reso": "actris"}


@pytest.fixture
def production(monkeypatch):
    monkeypatch.setenv("MLS_LOCAL_MODE", "0")
    for spec in PROVIDERS.values():
        monkeypatch.delenv(spec.base_url_env, raising=False)
    return monkeypatch


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_a_sources_default_url_is_the_resources_then_its_variable(production, name):
    spec = PROVIDERS[name]
    feed = FeedConfig(tenant_id="t", mls="m", provider=name, mls_id=MLS_IDS[name])
    with pytest.raises(SourceConfigurationError, match=spec.base_url_env):
        SourceResource().base_url_for(feed)
    production.setenv(spec.base_url_env, spec.example_url)
    assert SourceResource().base_url_for(feed) == (spec.example_url, False)
    configured = "https://replication.sparkapi.com/v2" if name == "spark" else "https://api.mlsgrid.com/v3"
    assert SourceResource(base_urls={name: configured}).base_url_for(feed) == (configured, False)


def test_every_source_registers_a_dialect_of_the_simulator():
    from mls_assets.simulator import Market
    from mls_assets.simulator.server import SimulatorServer

    with SimulatorServer(Market(listings=5)) as simulator:
        prefixes = {dialect.prefix for dialect in simulator.dialects}
    assert {spec.simulator_path for spec in PROVIDERS.values()} <= prefixes
