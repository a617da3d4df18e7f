"""What the leads API refuses before a request body is read or parsed.

FastAPI reads and parses a body before it resolves the route's dependencies (the API key),
so without this an unauthenticated 200 MiB PATCH was read into memory (1.8 GiB RSS) before
its 401. `BodyGuard` is plain ASGI, in front of everything: a request that would send a body
without a bearer key is answered 401 unread; one whose `Content-Length` is over the limit
413 unread; a chunked one is counted as it arrives and cut off at the limit with a 413.
"""

from __future__ import annotations

from typing import Any

import orjson

from mls_assets.lib.settings import SETTINGS

MAX_BODY_BYTES = SETTINGS.api_max_body_bytes
BODY_METHODS = {b"POST", b"PUT", b"PATCH"}


async def _send_json(send: Any, status: int, detail: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = orjson.dumps({"detail": detail})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyGuard:
    def __init__(self, app: Any, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"].encode() not in BODY_METHODS:
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if not headers.get(b"authorization", b"").lower().startswith(b"bearer "):
            return await _send_json(
                send,
                401,
                "a valid API key is required (Authorization: Bearer <key>)",
                [(b"www-authenticate", b"Bearer")],
            )
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await _send_json(send, 413, f"the request body is limited to {self.max_bytes} bytes")
        received, refused = 0, False

        async def counted_receive() -> dict:
            """The body as it arrives; past the limit, the 413 is answered here and the app
            is told the client left (it stops reading; what it answers is dropped)."""
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    await _send_json(send, 413, f"the request body is limited to {self.max_bytes} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not refused:
                raise
