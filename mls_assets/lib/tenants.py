"""Feed configs: which tenant replicates which MLS, from where, how often.

Declared in `data/tenants.yaml` (or `MLS_TENANTS_FILE`), validated here, and kept in the
`agent_mls_configs` collection (seed 002 shape) so that the running platform reads the
current configs from MongoDB. Tokens are referenced by the name of the environment
variable that holds them; the token itself is never stored, logged or put in metadata.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pymongo.database import Database

from mls_assets.lib.feeds import FeedIdentity
from mls_assets.lib.paths import project_root
from mls_assets.lib.store.naming import FeedKey, validate_id

CONFIGS_COLLECTION = "agent_mls_configs"
Cron = Annotated[str, Field(pattern=r"^\S+( \S+){4}$")]


class RateLimit(BaseModel):
    requests: int = Field(default=1500, ge=1)
    per_seconds: float = Field(default=300.0, gt=0)


class FeedConfig(BaseModel):
    """One tenant's access to one MLS."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    mls: str
    mls_id: str = Field(pattern=r"^\d{26}$")
    region: str | None = None
    base_url: str | None = None
    token_env: str = Field(default="SPARK_ACCESS_TOKEN", pattern=r"^[A-Z_][A-Z0-9_]*$")
    property_types: tuple[str, ...] = ("A", "B", "C")
    enabled: bool = True
    sync_schedule: Cron = "0 2 * * *"
    max_listings: int | None = None
    rate_limit: RateLimit = RateLimit()

    @field_validator("tenant_id")
    @classmethod
    def _tenant(cls, value: str) -> str:
        return validate_id(value, "tenant")

    @field_validator("mls")
    @classmethod
    def _mls(cls, value: str) -> str:
        return validate_id(value, "MLS")

    @property
    def key(self) -> FeedKey:
        return FeedKey(self.tenant_id, self.mls)

    @property
    def identity(self) -> FeedIdentity:
        return FeedIdentity(self.tenant_id, self.mls, self.mls_id)

    def collection(self, name: str) -> str:
        return self.key.collection(name)


class TenantEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant_id: str
    name: str | None = None
    feeds: list[dict[str, Any]]  # FeedConfig fields but tenant_id, validated as FeedConfig


class TenantsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenants: list[TenantEntry]


def tenants_file_path() -> Path:
    return Path(os.environ.get("MLS_TENANTS_FILE") or project_root() / "data" / "tenants.yaml")


def load_feeds(path: Path | None = None) -> list[FeedConfig]:
    """Every feed of the tenants file, validated (ids, MLS ids, crons); duplicates refused."""
    path = path or tenants_file_path()
    try:
        document = yaml.safe_load(path.read_text()) or {"tenants": []}
    except FileNotFoundError:
        raise ValueError(f"tenants file not found: {path} (set MLS_TENANTS_FILE)") from None
    parsed = TenantsFile.model_validate(document)
    feeds = [
        FeedConfig(tenant_id=tenant.tenant_id, **entry)
        for tenant in parsed.tenants
        for entry in tenant.feeds
    ]
    keys = [str(f.key) for f in feeds]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"feeds declared twice in {path}: {', '.join(duplicates)}")
    return feeds


def _config_document(feed: FeedConfig) -> dict[str, Any]:
    """The seed-002 `mlsConfigs` entry of a feed (no secrets: only the token's variable)."""
    return {
        "provider": feed.mls,
        "mlsId": feed.mls_id,
        "region": feed.region,
        "baseUrl": feed.base_url,
        "tokenEnv": feed.token_env,
        "propertyTypes": list(feed.property_types),
        "active": feed.enabled,
        "syncEnabled": feed.enabled,
        "syncSchedule": feed.sync_schedule,
        "collectionName": feed.collection("listings"),
        "maxListings": feed.max_listings,
        "rateLimit": feed.rate_limit.model_dump(),
    }


def sync_configs(database: Database, feeds: list[FeedConfig]) -> None:
    """Write the feeds into `agent_mls_configs`, one document per tenant (seed 002 shape).

    Sync statistics stored on a config (`lastSyncedAt`, `currentListings`) are kept.
    """
    now = datetime.now(UTC)
    collection = database[CONFIGS_COLLECTION]
    by_tenant: dict[str, list[FeedConfig]] = {}
    for feed in feeds:
        by_tenant.setdefault(feed.tenant_id, []).append(feed)
    for tenant, tenant_feeds in by_tenant.items():
        existing = collection.find_one({"tenantId": tenant}) or {}
        stats = {c["provider"]: c for c in existing.get("mlsConfigs", [])}
        configs = []
        for feed in tenant_feeds:
            config = _config_document(feed)
            previous = stats.get(feed.mls, {})
            for kept in ("lastSyncedAt", "currentListings"):
                if kept in previous:
                    config[kept] = previous[kept]
            configs.append(config)
        collection.update_one(
            {"tenantId": tenant},
            {"$set": {"mlsConfigs": configs, "updatedAt": now}, "$setOnInsert": {"createdAt": now}},
            upsert=True,
        )


def read_configs(database: Database) -> list[FeedConfig]:
    """The feeds as configured in MongoDB now."""
    feeds = []
    for tenant in database[CONFIGS_COLLECTION].find({}, {"_id": 0}):
        for config in tenant.get("mlsConfigs", []):
            feeds.append(
                FeedConfig(
                    tenant_id=tenant["tenantId"], mls=config["provider"], mls_id=config["mlsId"],
                    region=config.get("region"), base_url=config.get("baseUrl"),
                    token_env=config.get("tokenEnv", "SPARK_ACCESS_TOKEN"),
                    property_types=tuple(config.get("propertyTypes") or ("A", "B", "C")),
                    enabled=bool(config.get("syncEnabled", config.get("active", True))),
                    sync_schedule=config.get("syncSchedule", "0 2 * * *"),
                    max_listings=config.get("maxListings"),
                    rate_limit=RateLimit(**(config.get("rateLimit") or {})),
                )  # fmt: skip
            )
    return feeds


def feed_config(database: Database, key: str) -> FeedConfig:
    """The current config of feed `tenant.mls`: from MongoDB, loading the tenants file
    into it first if the feed is not there yet."""
    for attempt in range(2):
        for feed in read_configs(database):
            if str(feed.key) == key:
                return feed
        if attempt == 0:
            sync_configs(database, load_feeds())
    raise ValueError(f"feed {key!r} is not configured in {CONFIGS_COLLECTION} or {tenants_file_path()}")
