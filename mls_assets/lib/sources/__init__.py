"""Listings sources: where a feed's records come from (Spark's replication API, a RESO Web
API), behind one interface (`base.ListingsProvider`).

Each source is one folder here: its client, its records, its filter dialect (over the
shared tree of `filters.py`), a `provider.py` with `open_provider`, and in its `__init__` a
`SOURCE` spec (what its `mls_id` means, its default request limits, the environment
variable of its default base URL, where the bundled simulator speaks its dialect). Adding a
source is a new folder and its line in `PROVIDERS` below (plus a dialect module in
`mls_assets/simulator/` to test it against). A source's client is imported only when a
feed of it is pulled, so reading configs never loads one.
"""

from __future__ import annotations

from mls_assets.lib.sources import reso, spark
from mls_assets.lib.sources.spec import ProviderSpec

PROVIDERS: dict[str, ProviderSpec] = {source.name: source for source in (spark.SOURCE, reso.SOURCE)}


def provider_spec(name: str) -> ProviderSpec:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ValueError(f"unknown provider {name!r}: one of {', '.join(PROVIDERS)}") from None


__all__ = ["PROVIDERS", "ProviderSpec", "provider_spec"]
