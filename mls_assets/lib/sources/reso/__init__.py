"""A RESO Web API in its replication dialect (MLS Grid v2): the client (`client.py`), OData
filters (`odata.py`), the mapping of its records onto the raw shape (`records.py`) and the
provider the assets pull through (`provider.py`, imported only when a feed of this source
is pulled)."""

from mls_assets.lib.sources.spec import ProviderSpec

SOURCE = ProviderSpec(
    name="reso",
    module="mls_assets.lib.sources.reso.provider",
    mls_id_pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
    mls_id_meaning="the OriginatingSystemName (e.g. 'actris')",
    base_url_env="RESO_API_BASE_URL",
    simulator_path="/reso/odata",
    example_url="https://api.mlsgrid.com/v2",
    # MLS Grid: 2 requests/s, 7,200/hour, 40,000/day, 4 GB/hour
    rate_limit={"requests": 2, "per_seconds": 1.0, "per_hour": 7200, "per_day": 40000, "gigabytes_per_hour": 4.0},
)
