"""The simulator's HTTP server: one market, served in each API dialect (`spark.py`: Spark's
`GET /v1/listings`; `reso.py`: a RESO Web API at `GET /reso/odata/Property`).

The dialects share the clock, the tokens and the faults. Admin endpoints under `/_admin/`
move the clock, change listings now, inject faults and manage tokens; the same controls are
methods when the server runs in-process (tests). A new dialect is a module with the
attributes of `SparkDialect` and its entry in `DIALECTS`.
"""

from __future__ import annotations

import gzip
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from mls_assets.lib.local_source import LOCAL_SOURCE_TOKEN
from mls_assets.simulator import media
from mls_assets.simulator.faults import FaultPlan
from mls_assets.simulator.filtering import SourceError
from mls_assets.simulator.market import ListingState, Market, render_hostile_values
from mls_assets.simulator.reso import ResoDialect
from mls_assets.simulator.spark import SparkDialect

DEMO_TOKEN = LOCAL_SOURCE_TOKEN
DIALECTS = (SparkDialect, ResoDialect)


class _QuietHTTPServer(ThreadingHTTPServer):
    """A client that hangs up mid-answer (a timeout, by design in the fault tests) is not
    an error of the simulator: no traceback for it."""

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class SimulatorServer:
    """The simulator, runnable in a background thread (`start()`/`stop()`) or forever."""

    def __init__(
        self,
        market: Market,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: tuple[str, ...] = (DEMO_TOKEN,),
        faults: FaultPlan | None = None,
        media_host: media.MediaHost | None = None,
    ) -> None:
        """`media_host`: serve the photos' bytes too (`media.py`), the market's photo URLs
        pointing here; without it they point at a host that does not exist."""
        self.market = market
        self.media = media_host
        self.faults = faults or FaultPlan()
        self.tokens = set(tokens)
        self.expired_tokens: set[str] = set()
        self.requests = 0
        self.gzipped = 0  # answers sent gzip-compressed (RESO)
        self._lock = threading.RLock()
        self.dialects = [dialect() for dialect in DIALECTS]  # per server: a test may wrap one's answer
        self._query_cache: dict[tuple[Any, ...], list[ListingState]] = {}
        self._stopping = threading.Event()
        self._httpd = _QuietHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None
        if media_host is not None:
            market.media_base = self.root_url + media.PREFIX

    @property
    def url(self) -> str:
        """Spark's base URL (`{url}/listings`)."""
        return self.root_url + SparkDialect.prefix

    @property
    def reso_url(self) -> str:
        """The RESO Web API root (`{reso_url}/Property`)."""
        return self.root_url + ResoDialect.prefix

    def start(self) -> SimulatorServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="spark-simulator", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- controls (also reachable over HTTP under /_admin/) -------------------------------

    def set_clock(self, when: datetime) -> None:
        with self._lock:
            self.market.set_clock(when)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            return self.market.advance(delta)

    def change(self, key: str, status: str | None = None, price: int | None = None, delete: bool = False) -> datetime:
        with self._lock:
            return self.market.change(key, status=status, price=price, delete=delete)

    def inject(self, *kinds: str) -> None:
        """The next requests get these faults, in order."""
        self.faults.enqueue(*kinds)

    def set_faults(self, plan: FaultPlan) -> None:
        with self._lock:
            self.faults = plan

    def add_token(self, token: str) -> None:
        with self._lock:
            self.tokens.add(token)
            self.expired_tokens.discard(token)

    def expire_token(self, token: str) -> None:
        with self._lock:
            self.expired_tokens.add(token)

    # -- what the dialects share ----------------------------------------------------------

    @property
    def root_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def cached_query(
        self,
        key: tuple[str, str],
        states: Callable[[], list[ListingState]],
        find: Callable[[list[ListingState]], list[ListingState]],
    ) -> list[ListingState]:
        """`find(states())` at the market's current clock, kept while the clock stands (a
        client pages through one answer many times)."""
        with self._lock:
            cache_key = (*key, self.market.now)
            found = self._query_cache.get(cache_key)
            if found is None:
                if len(self._query_cache) > 64:
                    self._query_cache.clear()
                found = self._query_cache[cache_key] = find(states())
            return found


def _handler_for(server: SimulatorServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "MLSSimulator/1.0"
        # Headers and body go out in two writes: with Nagle's algorithm the body waits for
        # the client's delayed ACK of the headers (~40 ms on loopback), as a real server's does not.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet; tokens never logged
            pass

        def _send(
            self,
            status: int,
            body: bytes,
            headers: dict[str, str] | None = None,
            content_type: str = "application/json",
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, code: int, message: str, headers: dict[str, str] | None = None) -> None:
            dialect = next((d for d in server.dialects if self.path.startswith(d.prefix)), server.dialects[0])
            self._send(status, dialect.error_body(status, code, message), headers)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            if parts.path.startswith("/_admin/"):
                return self._admin("GET", parts.path, {})
            if server.media is not None and parts.path.startswith(media.PREFIX + "/"):
                token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
                status, body, headers = media.answer(
                    server.media, parts.path[len(media.PREFIX) + 1 :], token in server.tokens, server._stopping
                )
                return self._send(status, body, headers, content_type=headers.pop("Content-Type"))
            dialect = next((d for d in server.dialects if parts.path.rstrip("/") == d.resource), None)
            if dialect is None:
                return self._error(404, 404, f"No such resource: {parts.path}")
            with server._lock:
                server.requests += 1
            fault = server.faults.draw()
            if fault == "reset":
                self.close_connection = True
                self.connection.close()
                return
            if fault == "delay":
                server._stopping.wait(server.faults.delay_seconds)
            if fault in ("429", "503"):
                return self._error(int(fault), 1550, "Over rate limit", {"Retry-After": server.faults.retry_after})
            if fault == "500":
                return self._send(500, b"<html><body>Internal Server Error</body></html>", content_type="text/html")
            if fault == "wrong_host":
                return self._error(*dialect.wrong_host)
            token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if fault == "expire_token" and token:
                server.expire_token(token)
            if not token or token not in server.tokens or token in server.expired_tokens:
                return self._error(401, 1020, "Session token has expired" if token else "Access token required")
            if fault == "success_false":
                return self._error(*dialect.transient_failure)
            try:
                payload = dialect.answer(server, params, fault)
            except SourceError as error:
                return self._error(error.status, error.code, error.message)
            body = render_hostile_values(orjson.dumps(payload))
            headers = {}
            if dialect.gzip and "gzip" in self.headers.get("Accept-Encoding", "") and fault != "truncated":
                body, headers = gzip.compress(body, compresslevel=1), {"Content-Encoding": "gzip"}
                with server._lock:
                    server.gzipped += 1
            if fault == "truncated":
                body = body[: max(1, len(body) // 2)]
            self._send(200, body, headers)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                payload = orjson.loads(self.rfile.read(length) or b"{}")
            except orjson.JSONDecodeError:
                return self._error(400, 1035, "Invalid JSON")
            self._admin("POST", urlsplit(self.path).path, payload)

        def _admin(self, method: str, path: str, payload: dict[str, Any]) -> None:
            if path == "/_admin/clock":
                if method == "POST":
                    if "now" in payload:
                        server.set_clock(datetime.fromisoformat(payload["now"]))
                    if "advance_hours" in payload:
                        server.advance(timedelta(hours=float(payload["advance_hours"])))
                return self._send(200, orjson.dumps({"now": server.market.now.isoformat()}))
            if path == "/_admin/changes" and method == "POST":
                try:
                    at = server.change(
                        str(payload["listingKey"]),
                        status=payload.get("status"),
                        price=int(payload["price"]) if payload.get("price") is not None else None,
                        delete=payload.get("delete") is True,
                    )
                except (KeyError, ValueError) as error:
                    return self._error(400, 400, f"bad change: {error}")
                return self._send(200, orjson.dumps({"modificationTimestamp": at.isoformat()}))
            if path == "/_admin/faults" and method == "POST":
                try:
                    plan = FaultPlan(
                        rate=float(payload.get("rate", 0)),
                        kinds=tuple(payload.get("kinds") or FaultPlan().kinds),
                        retry_after=str(payload.get("retry_after", "0")),
                        delay_seconds=float(payload.get("delay_seconds", 2.0)),
                        seed=int(payload.get("seed", 1)),
                    )
                    server.set_faults(plan)
                    server.inject(*payload.get("queue", []))
                except ValueError as error:
                    return self._error(400, 1053, str(error))
                return self._send(200, orjson.dumps({"ok": True}))
            if path == "/_admin/tokens" and method == "POST":
                for token in payload.get("add", []):
                    server.add_token(token)
                for token in payload.get("expire", []):
                    server.expire_token(token)
                return self._send(200, orjson.dumps({"ok": True}))
            if path == "/_admin/stats":
                stats = {
                    "requests": server.requests,
                    "gzipped": server.gzipped,
                    "faults": server.faults.injected,
                    "now": server.market.now.isoformat(),
                    "listings": len(server.market.states()),
                    **(
                        {"media_served": server.media.served, "media_limited": server.media.limited}
                        if server.media
                        else {}
                    ),
                }
                return self._send(200, orjson.dumps(stats))
            self._error(404, 404, f"No such admin resource: {path}")

    return Handler


def serve(
    market: Market, host: str, port: int, tokens: tuple[str, ...], media_host: media.MediaHost | None = None
) -> None:
    """Run until interrupted (the `mls-assets simulator` command)."""
    server = SimulatorServer(market, host, port, tokens, media_host=media_host)
    print(
        f"MLS simulator on {server.root_url} (Spark at {server.url}, RESO at {server.reso_url}; clock {market.now.isoformat()}, {len(market.states())} listings visible)",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
