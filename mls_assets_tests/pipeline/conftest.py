"""The chain tests' fixtures (defined in `support/chain.py`, shared with other folders)."""

from mls_assets_tests.support.chain import market, pipeline, simulator, tenants_file  # noqa: F401
