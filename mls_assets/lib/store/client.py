"""Pooled MongoDB clients, one per process and URI, and what to say when the server is gone.

`MongoClient` is thread-safe and keeps its own connection pool, so a process should hold
one per server. Clients are not fork-safe, hence the cache is keyed by process id too.
Only commands (`mls-assets db start`, `make run`, `make dev`) start the embedded server: a
run that finds it stopped fails with a message saying so instead of starting a new one.
"""

from __future__ import annotations

import os
import re
import threading

from pymongo import MongoClient
from pymongo.database import Database

from mls_assets.lib.settings import SETTINGS
from mls_assets.lib.store import embedded

DEFAULT_DATABASE = "mls"
TIMEOUT_MS = SETTINGS.mongo_timeout_ms

_clients: dict[tuple[int, str, int], MongoClient] = {}
_lock = threading.Lock()


class DatabaseUnavailable(RuntimeError):
    """MongoDB cannot be reached; the message names the server and what to do."""


def resolve_uri(uri: str | None = None, start: bool = False) -> str:
    """The given URI, else `MONGODB_URI`, else the embedded server of this checkout (started
    only when `start`; else it must be running)."""
    uri = uri or os.environ.get("MONGODB_URI")
    if uri:
        return uri
    if start:
        return embedded.ensure_running().url
    if embedded.status() is None:
        raise DatabaseUnavailable(
            f"the embedded MongoDB of this checkout is not running ({embedded.service().url}): start it with "
            "`mls-assets db start` (make run and make dev do), or set MONGODB_URI"
        )
    return embedded.service().url


def get_client(uri: str | None = None, start: bool = False, timeout_ms: int = TIMEOUT_MS) -> MongoClient:
    resolved = resolve_uri(uri, start)
    key = (os.getpid(), resolved, timeout_ms)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = MongoClient(
                resolved, tz_aware=True, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=min(timeout_ms, 10_000)
            )
            _clients[key] = client
        return client


def get_database(uri: str | None = None, name: str | None = None, start: bool = False) -> Database:
    name = name or os.environ.get("MONGODB_DATABASE") or DEFAULT_DATABASE
    return get_client(uri, start)[name]


def server_of(uri: str) -> str:
    """The hosts of a connection string, without credentials or options (no DNS lookup)."""
    rest = uri.split("://", 1)[-1]
    hosts = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    return hosts or "the configured server"


_ADDRESS = re.compile(r"^\[?([\w.\-:]+?)\]?:(\d+):")


def unavailable_message(error: Exception, uri: str | None = None) -> str:
    """One line for a lost database: which server, what happened, what to do."""
    detail = re.split(r" \(configured timeouts|, Timeout:", " ".join(str(error).split()))[0]
    configured = uri or os.environ.get("MONGODB_URI")
    embedded_server = server_of(embedded.service().url)
    named = _ADDRESS.match(detail)
    if named:
        where = f"{named.group(1)}:{named.group(2)}"
    else:
        where = server_of(configured) if configured else embedded_server
    if where == embedded_server and not configured:
        remedy = "the embedded server stopped: start it with `mls-assets db start` (make run and make dev do)"
    else:
        remedy = "check that the server of MONGODB_URI is running and reachable"
    if configured and configured in detail:  # never echo credentials a driver message might carry
        detail = detail.replace(configured, server_of(configured))
    return f"MongoDB at {where} is unreachable ({type(error).__name__}: {detail[:160]}): {remedy}"
