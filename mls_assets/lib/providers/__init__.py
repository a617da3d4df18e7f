"""Listings providers: where a feed's records come from (Spark's replication API, a RESO
Web API), behind one interface (`base.ListingsProvider`).

A provider is one module under this package plus its entry in `PROVIDERS` below: what its
`mls_id` means, its default request limits, the environment variable of its default base
URL and where the bundled simulator speaks its dialect. The module is imported only when a
feed of that provider is pulled, so reading configs never loads a client.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    module: str  # defines `open_provider(feed, base_url, token, **client_options)`
    mls_id_pattern: str  # what identifies the MLS at this source
    mls_id_meaning: str
    base_url_env: str  # the deployment's default base URL for feeds without their own
    simulator_path: str  # where the bundled simulator serves this dialect
    example_url: str  # named when a feed has no base URL
    rate_limit: dict[str, Any] = field(default_factory=dict)  # defaults of `RateLimit` for its feeds
    property_types: tuple[str, ...] = ()  # a feed's default scope (none: every type)

    def open(self, feed: Any, base_url: str, token: str, **client_options: Any) -> Any:
        return importlib.import_module(self.module).open_provider(feed, base_url, token, **client_options)


PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec(
            name="spark",
            module="mls_assets.lib.providers.spark",
            mls_id_pattern=r"^\d{26}$",
            mls_id_meaning="Spark's 26-digit MlsId",
            base_url_env="SPARK_API_BASE_URL",
            simulator_path="/v1",
            example_url="https://replication.sparkapi.com/v1",
            rate_limit={"requests": 1500, "per_seconds": 300.0},
            property_types=("A", "B", "C"),
        ),
        ProviderSpec(
            name="reso",
            module="mls_assets.lib.providers.reso",
            mls_id_pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
            mls_id_meaning="the OriginatingSystemName (e.g. 'actris')",
            base_url_env="RESO_API_BASE_URL",
            simulator_path="/reso/odata",
            example_url="https://api.mlsgrid.com/v2",
            # MLS Grid: 2 requests/s, 7,200/hour, 40,000/day, 4 GB/hour
            rate_limit={
                "requests": 2,
                "per_seconds": 1.0,
                "per_hour": 7200,
                "per_day": 40000,
                "gigabytes_per_hour": 4.0,
            },
        ),
    )
}


def provider_spec(name: str) -> ProviderSpec:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ValueError(f"unknown provider {name!r}: one of {', '.join(PROVIDERS)}") from None
