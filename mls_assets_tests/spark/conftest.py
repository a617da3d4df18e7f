"""The source client tests' fixtures (defined in `support/sources.py`, shared with `reso/`)."""

from mls_assets_tests.support.sources import client, market, simulator, sleeps  # noqa: F401
