"""The leads API tests' fixtures (defined in `support/leads.py`)."""

from mls_assets_tests.support.leads import alpha_key, api, beta_key, leads_db  # noqa: F401
