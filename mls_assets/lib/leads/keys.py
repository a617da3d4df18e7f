"""Per-tenant API keys: `mls_<keyId>_<secret>`, stored only as a hash of the secret.

The secret is 32 random bytes, so a single SHA-256 is as strong as a slow password hash
here (there is nothing to brute-force), and a request costs one indexed lookup by `keyId`
and a constant-time comparison. A key is shown once, when it is created.

A key found valid is remembered for `KEYS_KEPT_SECONDS` (a second) under the SHA-256 of the
whole token, never the token itself: the lookup is a quarter of a one-lead request. So a
revoked key stops working within a second in every API process (at once in the process that
revoked it); a refused token is never remembered, so a new key works at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cachetools import TTLCache
from pymongo.database import Database

from mls_assets.lib.store.indexes import ensure_indexes
from mls_assets.lib.store.naming import validate_id

KEYS_COLLECTION = "api_keys"
KEY_PATTERN = re.compile(r"^mls_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
KEYS_KEPT_SECONDS = 1.0
_verified: TTLCache = TTLCache(maxsize=4096, ttl=KEYS_KEPT_SECONDS)
_verified_lock = threading.Lock()


class UnknownKey(LookupError):
    """No key with that id (or it belongs to another tenant)."""


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    tenant: str
    name: str
    created_at: datetime
    revoked_at: datetime | None = None

    def shown(self) -> dict[str, Any]:
        return {
            "keyId": self.key_id,
            "tenant": self.tenant,
            "name": self.name,
            "createdAt": self.created_at.isoformat(),
            "revokedAt": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def ensure_key_indexes(database: Database) -> None:
    ensure_indexes(database[KEYS_COLLECTION], [{"keys": [["keyId", 1]], "unique": True}, {"keys": [["tenant", 1]]}])


def create_key(database: Database, tenant: str, name: str) -> tuple[str, ApiKey]:
    """A new key for `tenant`: the token (shown once, never stored) and its record."""
    validate_id(tenant, "tenant")
    ensure_key_indexes(database)
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    record = ApiKey(key_id, tenant, name, datetime.now(UTC))
    database[KEYS_COLLECTION].insert_one(
        {
            "keyId": key_id,
            "tenant": tenant,
            "name": name,
            "hash": _digest(secret),
            "createdAt": record.created_at,
            "revokedAt": None,
        }
    )
    return f"mls_{key_id}_{secret}", record


def _record(doc: dict[str, Any]) -> ApiKey:
    return ApiKey(doc["keyId"], doc["tenant"], doc.get("name", ""), doc["createdAt"], doc.get("revokedAt"))


def revoke_key(database: Database, key_id: str, tenant: str | None = None) -> ApiKey:
    """Revoke a key (for good: a revoked key is never valid again)."""
    query: dict[str, Any] = {"keyId": key_id} | ({"tenant": tenant} if tenant else {})
    database[KEYS_COLLECTION].update_one({**query, "revokedAt": None}, {"$set": {"revokedAt": datetime.now(UTC)}})
    with _verified_lock:  # this process forgets it now; the others within KEYS_KEPT_SECONDS
        _verified.clear()
    found = database[KEYS_COLLECTION].find_one(query)
    if found is None:
        raise UnknownKey(f"no API key {key_id!r}" + (f" for tenant {tenant!r}" if tenant else ""))
    return _record(found)


def list_keys(database: Database, tenant: str | None = None) -> list[ApiKey]:
    query = {"tenant": tenant} if tenant else {}
    return [_record(doc) for doc in database[KEYS_COLLECTION].find(query, {"hash": 0}).sort("createdAt", 1)]


def remembered_key(database: Database, token: str) -> ApiKey | None:
    """The key for `token` if this process verified it in the last `KEYS_KEPT_SECONDS` (no
    round trip); None means "ask `tenant_of`", not "invalid"."""
    with _verified_lock:
        return _verified.get((id(database.client), database.name, _digest(token or "")))


def tenant_of(database: Database, token: str) -> ApiKey | None:
    """The key a bearer token is, if it is well-formed, known, not revoked and its secret
    matches; otherwise None (the caller answers 401 without saying which)."""
    remembered = remembered_key(database, token)
    if remembered is not None:
        return remembered
    match = KEY_PATTERN.fullmatch(token or "")
    if match is None:
        return None
    key_id, secret = match.groups()
    doc = database[KEYS_COLLECTION].find_one({"keyId": key_id})
    if doc is None or doc.get("revokedAt") is not None:
        return None
    if not hmac.compare_digest(doc.get("hash", ""), _digest(secret)):
        return None
    key = _record(doc)
    with _verified_lock:
        _verified[(id(database.client), database.name, _digest(token))] = key
    return key
