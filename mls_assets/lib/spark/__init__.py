"""The Spark API replication endpoint: client, SparkQL filters, and a bundled simulator."""
