"""A feed: one tenant's access to one MLS (the identity the transforms stamp on documents)."""

from __future__ import annotations

from dataclasses import dataclass

from mls_assets.lib.store.naming import FeedKey


@dataclass(frozen=True)
class FeedIdentity:
    """Who a listing document belongs to: tenant, MLS short id and the Spark MLS ID."""

    tenant: str
    mls: str
    mls_id: str

    @property
    def key(self) -> FeedKey:
        return FeedKey(self.tenant, self.mls)

    def collection(self, name: str) -> str:
        return self.key.collection(name)
