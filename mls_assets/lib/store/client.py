"""Pooled MongoDB clients, one per process and URI.

`MongoClient` is thread-safe and keeps its own connection pool, so a process should hold
one per server. Clients are not fork-safe, hence the cache is keyed by process id too.
"""

from __future__ import annotations

import os
import threading

from pymongo import MongoClient
from pymongo.database import Database

from mls_assets.lib.store import embedded

DEFAULT_DATABASE = "mls"

_clients: dict[tuple[int, str], MongoClient] = {}
_lock = threading.Lock()


def resolve_uri(uri: str | None = None) -> str:
    """The given URI, else `MONGODB_URI`, else the embedded server (started if needed)."""
    uri = uri or os.environ.get("MONGODB_URI")
    if uri:
        return uri
    return embedded.ensure_running().url


def get_client(uri: str | None = None) -> MongoClient:
    resolved = resolve_uri(uri)
    key = (os.getpid(), resolved)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = MongoClient(resolved, tz_aware=True, serverSelectionTimeoutMS=20_000)
            _clients[key] = client
        return client


def get_database(uri: str | None = None, name: str | None = None) -> Database:
    name = name or os.environ.get("MONGODB_DATABASE") or DEFAULT_DATABASE
    return get_client(uri)[name]


def redact_uri(uri: str) -> str:
    """The URI with any password replaced, safe for logs and metadata."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
