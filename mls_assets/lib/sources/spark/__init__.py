"""Spark's replication API: the client (`client.py`), its errors, SparkQL (`sparkql.py`)
and the provider the assets pull through (`provider.py`, imported only when a feed of
this source is pulled)."""

from mls_assets.lib.sources.spec import ProviderSpec

SOURCE = ProviderSpec(
    name="spark",
    module="mls_assets.lib.sources.spark.provider",
    mls_id_pattern=r"^\d{26}$",
    mls_id_meaning="Spark's 26-digit MlsId",
    base_url_env="SPARK_API_BASE_URL",
    simulator_path="/v1",
    example_url="https://replication.sparkapi.com/v1",
    rate_limit={"requests": 1500, "per_seconds": 300.0},
    property_types=("A", "B", "C"),
)
