"""The reference data tests run the replication chain first: they share its fixtures."""

from mls_assets_tests.support.chain import market, pipeline, simulator, tenants_file  # noqa: F401
