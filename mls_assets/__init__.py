"""mls_assets: MLS listings from the Spark API replicated into MongoDB, as Dagster assets."""
