"""mls_assets: MLS listings from the Spark and RESO Web APIs replicated into MongoDB, as Dagster assets."""
