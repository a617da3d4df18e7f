"""What the operator commands do to the feed configs in MongoDB (`agent_mls_configs`):
onboard a tenant's feed with its token stored encrypted, change a feed's settings, remove
it, rotate the token key. Every change is validated as a `FeedConfig` first; a feed added
here is `managedBy: command` and a tenants-file sync leaves it alone. Nothing here returns
or prints a token: `shown()` says only whether one is stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from pymongo.database import Database

from mls_assets.lib import credentials
from mls_assets.lib.catalogue import EVERY_FEED_COLLECTION, TENANT_COLLECTIONS, ensure_feed_collections
from mls_assets.lib.store.naming import FeedKey, tenant_collection, validate_id
from mls_assets.lib.tenants import CONFIGS_COLLECTION, FeedConfig, config_document, describe_error, from_document


class AdminError(ValueError):
    """A change that cannot be made, said in one line."""


def _tenant_doc(database: Database, tenant: str) -> dict[str, Any] | None:
    return database[CONFIGS_COLLECTION].find_one({"tenantId": validate_id(tenant, "tenant")})


def entry(database: Database, key: FeedKey) -> dict[str, Any]:
    doc = _tenant_doc(database, key.tenant)
    for config in (doc or {}).get("mlsConfigs") or []:
        if isinstance(config, dict) and config.get("provider") == key.mls:
            return config
    raise AdminError(f"feed {key} is not configured")


def feed(database: Database, key: FeedKey) -> FeedConfig:
    try:
        return from_document(key.tenant, entry(database, key))
    except ValidationError as error:
        raise AdminError(f"feed {key} has an invalid stored config: {describe_error(error)}") from None


def _validated(values: dict[str, Any]) -> FeedConfig:
    try:
        return FeedConfig.model_validate(values)
    except ValidationError as error:
        raise AdminError(describe_error(error)) from None


def add_feed(database: Database, config: FeedConfig, token: str | None = None) -> FeedConfig:
    """Onboard one feed of a tenant (the tenant is created if new); `token` is stored
    encrypted, or the feed reads its `token_env`."""
    key = config.key
    try:
        entry(database, key)
    except AdminError:
        pass
    else:
        raise AdminError(f"feed {key} already exists: change it with the `feeds set-*` commands")
    values = {**config.model_dump(), "managed_by": "command"}
    if token is not None:
        values["token_ciphertext"] = _encrypted(token)
    added = _validated(values)
    now = datetime.now(UTC)
    database[CONFIGS_COLLECTION].update_one(
        {"tenantId": key.tenant},
        {
            "$push": {"mlsConfigs": config_document(added)},
            "$set": {"updatedAt": now},
            "$setOnInsert": {"createdAt": now, "configProblems": []},
        },
        upsert=True,
    )
    ensure_feed_collections(database, key)
    return added


def _encrypted(token: str) -> str:
    try:
        return credentials.encrypt_token(token)
    except credentials.TokenKeyError as error:
        raise AdminError(f"the token was not stored: {error}") from None
    except ValueError as error:
        raise AdminError(str(error)) from None


def update_feed(database: Database, key: FeedKey, token: str | None = None, **changes: Any) -> FeedConfig:
    """Change a feed's settings (validated as a whole); `token` replaces its stored token."""
    current = feed(database, key)
    values = {**current.model_dump(), "token_ciphertext": current.token_ciphertext, **changes}
    if token is not None:
        values["token_ciphertext"] = _encrypted(token)
    updated = _validated(values)
    document = {**entry(database, key), **config_document(updated)}
    result = database[CONFIGS_COLLECTION].update_one(
        {"tenantId": key.tenant, "mlsConfigs.provider": key.mls},
        {"$set": {"mlsConfigs.$": document, "updatedAt": datetime.now(UTC)}},
    )
    if result.matched_count != 1:
        raise AdminError(f"feed {key} changed while it was being updated: try again")
    return updated


def remove(database: Database, tenant: str, mls: str | None = None, purge: bool = False) -> dict[str, Any]:
    """Remove a tenant's feed (or all of its feeds) from the configs; with `purge`, drop
    their collections too (and the tenant's own once no feed is left). Data is kept
    otherwise, so re-adding the feed finds it again."""
    doc = _tenant_doc(database, tenant)
    if doc is None:
        raise AdminError(f"tenant {tenant} is not configured")
    configs = [c for c in doc.get("mlsConfigs") or [] if isinstance(c, dict)]
    removed = [c.get("provider") for c in configs if mls is None or c.get("provider") == mls]
    if mls is not None and not removed:
        raise AdminError(f"feed {tenant}.{mls} is not configured")
    left = [c for c in configs if c.get("provider") not in removed]
    if left:
        database[CONFIGS_COLLECTION].update_one(
            {"tenantId": tenant}, {"$set": {"mlsConfigs": left, "updatedAt": datetime.now(UTC)}}
        )
    else:
        database[CONFIGS_COLLECTION].delete_one({"tenantId": tenant})
    dropped: list[str] = []
    if purge:
        for provider in removed:
            try:
                key = FeedKey(tenant, provider)
            except ValueError:
                continue
            for spec in EVERY_FEED_COLLECTION:
                dropped.append(spec.collection_name(key))
        if not left:
            dropped += [tenant_collection(tenant, spec.name) for spec in TENANT_COLLECTIONS]
        existing = set(database.list_collection_names())
        dropped = [name for name in dropped if name in existing]
        media_deleted = _purge_media(tenant, removed)
        for name in dropped:
            database.drop_collection(name)
        return {
            "tenant": tenant,
            "removed": [f"{tenant}.{p}" for p in removed],
            "dropped": dropped,
            "mediaObjectsDeleted": media_deleted,
        }
    return {"tenant": tenant, "removed": [f"{tenant}.{p}" for p in removed], "dropped": dropped}


def _purge_media(tenant: str, providers: list[str]) -> int:
    """The re-hosted photos of purged feeds, deleted from the media storage."""
    from mls_assets.lib.media.storage import feed_prefix, storage_from_settings

    storage = storage_from_settings()
    deleted = 0
    for provider in providers:
        try:
            key = FeedKey(tenant, provider)
        except ValueError:
            continue
        deleted += storage.delete(storage.keys(feed_prefix(key)))
    return deleted


def rotate_tokens(database: Database) -> int:
    """Re-encrypt every stored token under the first key of `MLS_TOKEN_KEY`; how many.
    Fails before writing anything if one cannot be decrypted."""
    plan: list[tuple[str, str, str]] = []
    for doc in database[CONFIGS_COLLECTION].find({}, {"tenantId": 1, "mlsConfigs": 1}):
        for config in doc.get("mlsConfigs") or []:
            if isinstance(config, dict) and config.get("tokenCiphertext"):
                try:
                    plan.append((doc["tenantId"], config["provider"], credentials.reencrypt(config["tokenCiphertext"])))
                except credentials.TokenKeyError as error:
                    raise AdminError(
                        f"feed {doc['tenantId']}.{config.get('provider')}: {error}; nothing was re-encrypted"
                    ) from None
    for tenant, mls, ciphertext in plan:
        database[CONFIGS_COLLECTION].update_one(
            {"tenantId": tenant, "mlsConfigs.provider": mls}, {"$set": {"mlsConfigs.$.tokenCiphertext": ciphertext}}
        )
    return len(plan)


def shown(config: dict[str, Any]) -> dict[str, Any]:
    """A config entry as commands show it, in the README's words: `mls` (stored as `provider`,
    the seed's name for the MLS) and `provider` (stored as `apiProvider`: spark or reso); the
    stored token only as "stored"."""
    entry = {"mls": config.get("provider"), "provider": config.get("apiProvider", "spark")}
    entry |= {k: v for k, v in config.items() if k not in {"tokenCiphertext", "provider", "apiProvider"}}
    entry["token"] = "stored (encrypted)" if config.get("tokenCiphertext") else f"from ${config.get('tokenEnv')}"
    return entry


def tenants(database: Database, tenant: str | None = None) -> list[dict[str, Any]]:
    """The tenants and their feeds, as shown (no secrets)."""
    query = {"tenantId": validate_id(tenant, "tenant")} if tenant else {}
    found = []
    for doc in database[CONFIGS_COLLECTION].find(query, {"_id": 0}).sort("tenantId", 1):
        found.append(
            {
                "tenantId": doc.get("tenantId"),
                "configProblems": doc.get("configProblems", []),
                "feeds": [shown(c) for c in doc.get("mlsConfigs") or [] if isinstance(c, dict)],
            }
        )
    return found


def record_current_listings(database: Database, key: FeedKey, count: int) -> None:
    """`currentListings` (what the feed stores now, against its `maxListings`)."""
    database[CONFIGS_COLLECTION].update_one(
        {"tenantId": key.tenant, "mlsConfigs.provider": key.mls},
        {"$set": {"mlsConfigs.$.currentListings": count, "mlsConfigs.$.currentListingsAt": datetime.now(UTC)}},
    )
