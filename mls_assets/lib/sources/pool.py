"""One pooled HTTP client per host, shared by the many feeds a caller asks at once (the
change probe): connections are reused instead of one client, one connection and, on a real
API, one TLS handshake per feed and request."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import httpx


class ClientPool:
    def __init__(self, timeout_s: float, connections: int) -> None:
        self._timeout_s, self._connections = timeout_s, connections
        self._clients: dict[tuple[str, str], httpx.Client] = {}
        self._lock = threading.Lock()

    def for_url(self, url: str) -> httpx.Client:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                limits = httpx.Limits(max_connections=self._connections, max_keepalive_connections=self._connections)
                client = self._clients[key] = httpx.Client(timeout=self._timeout_s, limits=limits)
            return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
