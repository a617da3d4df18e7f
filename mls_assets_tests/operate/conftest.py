"""The operator commands run against the real servers and the chain's own fixtures."""

from mls_assets_tests.support.chain import market, pipeline, simulator, tenants_file  # noqa: F401
