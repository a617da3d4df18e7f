"""The simulator's HTTP server: Spark's `GET /v1/listings` replication endpoint, and the
same market as a RESO Web API in MLS Grid's dialect at `GET /reso/odata/Property`.

Spark: bearer auth (401 + code 1020), `_limit` (max 1000), `_skiptoken` paging over
ListingKey order, `_filter` (the SparkQL subset; bad syntax or unknown fields -> 1040),
`_select`, `_expand=Photos`, `_pagination=count`, and the `D` envelope.
RESO: bearer auth (401), `$filter` (the OData subset; bad -> 400), `$top` (max 5000, 1000
with `$expand=Media`), `$select`, `$count=true`, `@odata.nextLink` paging over ListingKey
order, deleted listings as `MlgCanView: false`, gzip when asked, OData error bodies.
Both share the clock, the tokens and the faults. Admin endpoints under `/_admin/` move the
clock, change listings now, inject faults and manage tokens; the same controls are methods
when the server runs in-process (tests).
"""

from __future__ import annotations

import gzip
import sys
import threading
from bisect import bisect_right
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

from mls_assets.lib.reso import odata
from mls_assets.lib.spark import sparkql
from mls_assets.lib.spark.simulator.faults import FaultPlan
from mls_assets.lib.spark.simulator.market import (
    FILTER_FIELDS,
    RESO_PROPERTY_TYPES,
    ListingState,
    Market,
    render_hostile_values,
    reso_system_name,
)

DEMO_TOKEN = "sim-demo-token"
MAX_LIMIT = 1000
DEFAULT_LIMIT = 10
_DATETIME_FIELDS = {"ModificationTimestamp", "StatusChangeTimestamp", "PhotosChangeTimestamp"}
_DATE_FIELDS = {"ListDate", "OnMarketDate", "CloseDate"}
_NUMBER_FIELDS = {"ListPrice", "BedsTotal", "BedroomsTotal"}
_BOOLEAN_FIELDS = {"MlgCanView"}
RESO_PREFIX = "/reso/odata"
RESO_FILTER_FIELDS = (*FILTER_FIELDS, "OriginatingSystemName", "MlgCanView", "BedroomsTotal")
RESO_MAX_TOP, RESO_MAX_TOP_EXPANDED, RESO_DEFAULT_TOP = 5000, 1000, 100


class SparkError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def compile_filter(text: str, dialect: str = "spark") -> Callable[[dict[str, Any]], bool]:
    """A predicate over a listing's index row; SparkError 1040 (RESO: 400) for what the
    source would refuse."""
    parse, known = (odata.parse, RESO_FILTER_FIELDS) if dialect == "reso" else (sparkql.parse, FILTER_FIELDS)
    try:
        tree = parse(text)
    except sparkql.SparkQLSyntaxError as error:
        raise SparkError(400, 1040, f"Invalid filter: {error}") from None
    unknown = tree.fields() - set(known)
    if unknown:
        raise SparkError(400, 1040, f"Invalid filter field(s): {', '.join(sorted(unknown))}")
    return _compile(tree)


def reso_row(state: ListingState) -> dict[str, Any]:
    """The index row as the RESO dialect names and spells it."""
    row = state.index_row
    return {
        **row,
        "PropertyType": RESO_PROPERTY_TYPES.get(row["PropertyType"], row["PropertyType"]),
        "OriginatingSystemName": reso_system_name(row["MlsId"]),
        "MlgCanView": not state.deleted,
        "BedroomsTotal": row["BedsTotal"],
    }


def _coerce(field: str, value: Any) -> Any:
    if value is None:
        return None
    if field in _DATETIME_FIELDS:
        if isinstance(value, datetime):
            return value
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif field in _DATE_FIELDS:
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
    elif field in _NUMBER_FIELDS:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    elif field in _BOOLEAN_FIELDS:
        if isinstance(value, bool):
            return value
    elif isinstance(value, str):
        return value
    raise SparkError(400, 1040, f"Invalid value {value!r} for field {field}")


def _compile(node: sparkql.Filter) -> Callable[[dict[str, Any]], bool]:
    if isinstance(node, sparkql.And):
        parts = [_compile(p) for p in node.parts]
        return lambda row: all(p(row) for p in parts)
    if isinstance(node, sparkql.Or):
        parts = [_compile(p) for p in node.parts]
        return lambda row: any(p(row) for p in parts)
    if isinstance(node, sparkql.Not):
        inner = _compile(node.part)
        return lambda row: not inner(row)
    assert isinstance(node, sparkql.Comparison)
    field, op = node.field, node.op
    if op == "Bt":
        low, high = (_coerce(field, v) for v in node.value)
        return lambda row: row[field] is not None and low <= row[field] <= high
    value = _coerce(field, node.value)
    compare = {
        "Eq": lambda a: a == value,
        "Ne": lambda a: a != value,
        "Gt": lambda a: a is not None and a > value,
        "Ge": lambda a: a is not None and a >= value,
        "Lt": lambda a: a is not None and a < value,
        "Le": lambda a: a is not None and a <= value,
    }[op]
    return lambda row: compare(row[field])


def _page_size(params: dict[str, str], name: str, default: int, most: int, code: int, qualifier: str = "") -> int:
    """A page size parameter (`_limit`, `$top`), refused as the real APIs refuse it."""
    text = params.get(name, str(default))
    try:
        size = int(text)
    except ValueError:
        raise SparkError(400, code, f"{name} must be a number, got {text!r}") from None
    if not 1 <= size <= most:
        raise SparkError(400, code, f"{name} must be between 1 and {most}{qualifier}")
    return size


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
    ) -> None:
        self.market = market
        self.faults = faults or FaultPlan()
        self.tokens = set(tokens)
        self.expired_tokens: set[str] = set()
        self.requests = 0
        self.gzipped = 0  # answers sent gzip-compressed (RESO)
        self._lock = threading.RLock()
        self._query_cache: dict[tuple[str, int], list[ListingState]] = {}
        self._stopping = threading.Event()
        self._httpd = _QuietHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def reso_url(self) -> str:
        """The RESO Web API root (`{reso_url}/Property`)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{RESO_PREFIX}"

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

    # -- the endpoint -------------------------------------------------------------------

    def matching(self, filter_text: str) -> list[ListingState]:
        with self._lock:
            states = self.market.states()
            cache_key = (filter_text, self.market._clock)
            found = self._query_cache.get(cache_key)
            if found is None:
                if len(self._query_cache) > 64:
                    self._query_cache.clear()
                if filter_text:
                    predicate = compile_filter(filter_text)
                    found = [s for s in states if predicate(s.index_row)]
                else:
                    found = states
                self._query_cache[cache_key] = found
            return found

    def matching_reso(self, filter_text: str) -> list[ListingState]:
        with self._lock:
            states = self.market.states_with_deleted()
            cache_key = ("reso", filter_text, self.market._clock)
            found = self._query_cache.get(cache_key)
            if found is None:
                if len(self._query_cache) > 64:
                    self._query_cache.clear()
                predicate = compile_filter(filter_text, "reso") if filter_text else None
                found = [s for s in states if predicate is None or predicate(reso_row(s))]
                self._query_cache[cache_key] = found
            return found

    def reso_property(self, params: dict[str, str], fault: str | None) -> dict[str, Any]:
        """One answer of `GET /reso/odata/Property` (MLS Grid's replication dialect)."""
        expand = [e for e in params.get("$expand", "").split(",") if e]
        if set(expand) - {"Media"}:
            raise SparkError(400, 400, f"$expand supports Media only, not {','.join(expand)}")
        most = RESO_MAX_TOP_EXPANDED if expand else RESO_MAX_TOP
        top = _page_size(params, "$top", RESO_DEFAULT_TOP, most, 400, " with $expand" if expand else "")
        found = self.matching_reso(params.get("$filter", ""))
        token = params.get("$skiptoken", "")
        keys = [s.timeline.key for s in found]
        start = bisect_right(keys, token) if token else 0
        page = found[start : start + top]
        select = [f for f in params.get("$select", "").split(",") if f]
        records = []
        for state in page:
            record = self.market.reso_record(state, expand_media=bool(expand))
            if select and isinstance(record, dict):
                record = {name: record[name] for name in (*select, *expand, "MlgCanView") if name in record}
            records.append(record)
        answer: dict[str, Any] = {"@odata.context": f"{self.reso_url}/$metadata#Property", "value": records}
        if params.get("$count") == "true":
            answer["@odata.count"] = len(found)
        following = {k: v for k, v in params.items() if k not in ("$skiptoken", "$count")}
        if fault == "repeat_token":
            answer["@odata.nextLink"] = f"{self.reso_url}/Property?{urlencode(params)}"  # this very request
        elif start + top < len(found) and fault != "empty_page":
            answer["@odata.nextLink"] = (
                f"{self.reso_url}/Property?{urlencode({**following, '$skiptoken': keys[start + top - 1]})}"
            )
        if fault == "results_object":
            answer["value"] = {"0": records[:1]}
        if fault == "empty_page":
            answer["value"] = []
        return answer

    def listings(self, params: dict[str, str], fault: str | None) -> dict[str, Any]:
        limit = _page_size(params, "_limit", DEFAULT_LIMIT, MAX_LIMIT, 1053)
        found = self.matching(params.get("_filter", ""))
        if params.get("_pagination") == "count":
            pages = -(-len(found) // limit)
            return {
                "Success": True,
                "Results": [],
                "Pagination": {"TotalRows": len(found), "PageSize": limit, "TotalPages": pages, "CurrentPage": 1},
            }
        token = params.get("_skiptoken", "")
        keys = [s.timeline.key for s in found]
        start = bisect_right(keys, token) if token else 0
        page = found[start : start + limit]
        expand_photos = "Photos" in params.get("_expand", "").split(",")
        select = [f for f in params.get("_select", "").split(",") if f]
        results = []
        for state in page:
            record = self.market.record(state, expand_photos)
            if select:
                fields = record["StandardFields"]
                chosen = {name: fields[name] for name in select if name in fields}
                if expand_photos:
                    chosen["Photos"] = fields.get("Photos", [])
                record = {"ResourceUri": record["ResourceUri"], "Id": record["Id"], "StandardFields": chosen}
            results.append(self.market.make_hostile(state, record))
        next_token = page[-1].timeline.key if page else token
        if fault == "repeat_token":
            next_token = token
        if fault == "results_object":
            return {"Success": True, "Results": {"0": results[:1]}, "SkipToken": next_token}
        if fault == "empty_page":
            return {"Success": True, "Results": [], "SkipToken": next_token}
        return {"Success": True, "Results": results, "SkipToken": next_token}


def _handler_for(server: SimulatorServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "SparkSimulator/1.0"

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
            if self.path.startswith(RESO_PREFIX):  # OData's error body
                body = orjson.dumps({"error": {"code": str(status), "message": message}})  # no Spark codes here
            else:
                body = orjson.dumps({"D": {"Success": False, "Code": code, "Message": message}})
            self._send(status, body, headers)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            if parts.path.startswith("/_admin/"):
                return self._admin("GET", parts.path, {})
            reso = parts.path.startswith(RESO_PREFIX + "/")
            if parts.path.rstrip("/") not in ("/v1/listings", f"{RESO_PREFIX}/Property"):
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
                if reso:
                    return self._error(403, 403, "This token is not licensed for this resource")
                return self._error(400, 1021, "Wrong host for this API key: use the replication endpoint")
            token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if fault == "expire_token" and token:
                server.expire_token(token)
            if not token or token not in server.tokens or token in server.expired_tokens:
                return self._error(401, 1020, "Session token has expired" if token else "Access token required")
            if fault == "success_false":
                if reso:  # OData has no Success flag: a transient server error
                    return self._error(503, 503, "Temporary failure, try again")
                return self._error(200, 1024, "Temporary failure, try again")
            try:
                payload = server.reso_property(params, fault) if reso else {"D": server.listings(params, fault)}
            except SparkError as error:
                return self._error(error.status, error.code, error.message)
            body = render_hostile_values(orjson.dumps(payload))
            headers = {}
            if reso and "gzip" in self.headers.get("Accept-Encoding", "") and fault != "truncated":
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
                }
                return self._send(200, orjson.dumps(stats))
            self._error(404, 404, f"No such admin resource: {path}")

    return Handler


def serve(market: Market, host: str, port: int, tokens: tuple[str, ...]) -> None:
    """Run until interrupted (the `mls-assets simulator` command)."""
    server = SimulatorServer(market, host, port, tokens)
    print(
        f"Spark simulator on {server.url} (clock {market.now.isoformat()}, {len(market.states())} listings visible)",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
