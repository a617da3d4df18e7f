"""The automation tests that run the chain share the pipeline tests' fixtures."""

from mls_assets_tests.support.chain import market, pipeline, simulator, tenants_file  # noqa: F401
