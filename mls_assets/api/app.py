"""The expired-leads API: a tenant's leads, one lead with its photos, the CRM's writes to a
lead, and a CSV export. Every route is scoped by the tenant its API key belongs to: a key of
tenant A is answered 404 on every path of tenant B (what exists elsewhere is not revealed);
no key, a malformed, unknown or revoked one is answered 401.

The handlers are plain `def`s: pymongo blocks, so FastAPI runs them in its thread pool.
"""

import csv
import io
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import Field
from pymongo.database import Database
from starlette.concurrency import run_in_threadpool

from mls_assets.api.guards import BodyGuard
from mls_assets.api.schemas import LeadList, LeadWithPhotos, PatchedLead, problems
from mls_assets.lib.leads import query, updates
from mls_assets.lib.leads.keys import ApiKey, ensure_key_indexes, remembered_key, tenant_of
from mls_assets.lib.leads.query import CSV_COLUMNS, BadCursor, LeadFilter
from mls_assets.lib.store.indexes import ensure_indexes
from mls_assets.lib.tenants import CONFIGS_COLLECTION

PREFIX = "/v1/tenants/{tenant}/expired-listings"


class LeadPage(LeadFilter):
    """A page of leads: the filter, the page size and the cursor of the previous page."""

    limit: int = Field(default=50, ge=1, le=query.MAX_PAGE)
    cursor: str | None = None
    count: bool = Field(default=False, description="also count every match (`total`): it reads them all")


class CsvResponse(StreamingResponse):
    media_type = "text/csv"


IF_MATCH = "the ETag of the lead as last read, or `*` for whatever version is current (required: 428 without)"


def _json(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json", headers=headers)


# A cell a spreadsheet would evaluate (OWASP's CSV injection rule): shown as text instead.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool | int | float):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


async def _validation_error(request: Request, error: RequestValidationError) -> Response:
    """422 naming each field and what is wrong, never echoing the input (a 10 MiB field came
    back as a 10 MiB answer, and a NaN in it made the answer itself fail with a 500)."""
    detail = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))[:300], "type": e.get("type")}
        for e in error.errors()[:20]
    ]
    return _json({"detail": detail}, status_code=422)


def _opened(state: Any) -> Database:
    """The app's database, opened (and its key and config indexes made) on first use."""
    with state.opening:
        if state.database is None:
            database = state.database_factory()
            ensure_key_indexes(database)
            ensure_indexes(database[CONFIGS_COLLECTION], [{"keys": [["tenantId", 1]]}])
            state.database = database
    return state.database


async def _database(request: Request) -> Database:
    """The app's database. Async: once open it is an attribute, not worth a hop to the thread
    pool (each hop is ~0.3 ms of a ~8 ms request); the first request opens it there."""
    state = request.app.state
    return state.database if state.database is not None else await run_in_threadpool(_opened, state)


BEARER = HTTPBearer(auto_error=False, description="an API key: `mls-assets api-keys create TENANT --name NAME`")


async def _tenant_key(
    tenant: str,
    database: Annotated[Database, Depends(_database)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None,
) -> ApiKey:
    """The caller's key, if it is valid (else 401) and belongs to the path's tenant (else 404).
    Async: a key verified in the last second is in memory; only a lookup hops to a thread."""
    token = credentials.credentials.strip() if credentials else None
    key = None
    if token:
        key = remembered_key(database, token) or await run_in_threadpool(tenant_of, database, token)
    if key is None:
        raise HTTPException(
            401, "a valid API key is required (Authorization: Bearer <key>)", headers={"WWW-Authenticate": "Bearer"}
        )
    if key.tenant != tenant:
        raise HTTPException(404, "not found")
    return key


Key = Annotated[ApiKey, Depends(_tenant_key)]
Db = Annotated[Database, Depends(_database)]


def create_app(database_factory: Callable[[], Database]) -> FastAPI:
    """The ASGI app on the database `database_factory` returns (called on first use)."""
    # FastAPIOffline: /docs and /redoc load Swagger UI and ReDoc from this package, not a CDN
    # (the docs page works on a machine with no internet, and asks nothing of a third party)
    app = FastAPIOffline(
        title="mls_assets expired leads",
        version="1",
        description="A tenant's expired and cancelled listings as CRM leads. Bearer API keys: "
        "`mls-assets api-keys create TENANT --name NAME`.",
    )
    app.state.database_factory, app.state.database, app.state.opening = database_factory, None, threading.Lock()
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(BodyGuard)

    @app.get("/healthz", include_in_schema=False)
    def healthz(database: Db) -> dict[str, str]:
        database.command("ping")
        return {"status": "ok"}

    @app.get(PREFIX, summary="List leads", responses={200: {"model": LeadList}, **problems(401, 404, 422)})
    def list_leads(key: Key, database: Db, page: Annotated[LeadPage, Query()]) -> Response:
        """The tenant's leads across all its MLSs, newest status change first, one copy per
        ListingKey; pass `next_cursor` back as `cursor`. A page costs about its size; `total`
        (every match) only with `count=true`, which reads them all."""
        where = LeadFilter(**page.model_dump(exclude={"limit", "cursor", "count"}))
        try:
            return _json(query.list_leads(database, key.tenant, where, page.limit, page.cursor, page.count))
        except BadCursor as error:
            raise HTTPException(422, [{"loc": ["query", "cursor"], "msg": str(error), "type": "value_error"}])

    @app.get(
        PREFIX + ".csv",
        summary="Export leads as CSV",
        response_class=CsvResponse,
        responses={
            200: {
                "content": {"text/csv": {"schema": {"type": "string"}}},
                "description": "one header row, then one row per lead",
            },
            **problems(401, 404, 422),
        },
    )
    def export_leads(key: Key, database: Db, where: Annotated[LeadFilter, Query()]) -> CsvResponse:
        """Every matching lead as CSV, streamed (for skip-tracing and dialer tools)."""
        rows = query.iter_leads(database, key.tenant, where)

        def lines() -> Iterator[str]:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(CSV_COLUMNS)
            for n, lead in enumerate(rows, 1):
                writer.writerow([_csv_value(lead.get(name)) for name in CSV_COLUMNS])
                if n % 200 == 0:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
            yield buffer.getvalue()

        return CsvResponse(lines(), headers={"Content-Disposition": f'attachment; filename="{key.tenant}-leads.csv"'})

    @app.get(
        PREFIX + "/{listing_key}",
        summary="One lead with its photos",
        responses={200: {"model": LeadWithPhotos}, **problems(401, 404, 422)},
    )
    def get_lead(key: Key, database: Db, listing_key: str) -> Response:
        """The lead and its photos in order; its `ETag` is what a PATCH names in `If-Match`."""
        lead = query.find_lead(database, key.tenant, listing_key)
        if lead is None:
            raise HTTPException(404, "not found")
        photos = query.lead_photos(database, key.tenant, lead)
        return _json({"listing": lead, "photos": photos}, headers={"ETag": lead["etag"]})

    @app.patch(
        PREFIX + "/{listing_key}",
        summary="Update a lead's CRM fields",
        responses={200: {"model": PatchedLead}, **problems(401, 404, 412, 413, 422, 428)},
    )
    def patch_lead(
        key: Key,
        database: Db,
        listing_key: str,
        patch: updates.LeadPatch,
        if_match: Annotated[str | None, Header(description=IF_MATCH)] = None,
    ) -> Response:
        """Only the lead fields; `If-Match` must carry the ETag last read (412 if the lead
        changed since, with the current ETag), or `*` for whatever version is current (RFC
        9110). Every change is recorded as a lead event."""
        if not patch.changes():
            raise HTTPException(422, [{"loc": ["body"], "msg": "no lead field to change", "type": "value_error"}])
        if if_match is None:
            raise HTTPException(428, "If-Match is required: send the ETag of the lead as you read it")
        any_version = if_match.strip() == "*"
        version = None if any_version else updates.parse_etag(if_match)
        if version is None and not any_version:
            raise HTTPException(412, "If-Match does not name a version of this lead")
        try:
            lead = updates.patch_lead(
                database, key.tenant, listing_key, patch, version, actor=f"{key.name} ({key.key_id})", if_match=if_match
            )
        except updates.LeadGone:
            raise HTTPException(404, "not found")
        except updates.StaleLead as stale:
            raise HTTPException(412, "the lead changed since you read it; read it again", headers={"ETag": str(stale)})
        return _json({"listing": lead}, headers={"ETag": lead["etag"]})

    def openapi() -> dict:
        """The OpenAPI document as FastAPI builds it, with `If-Match` marked required: it is
        (428 without), but is declared optional so that its absence is a 428, not a 422."""
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            for parameter in schema["paths"][PREFIX + "/{listing_key}"]["patch"]["parameters"]:
                if parameter["name"].lower() == "if-match":
                    parameter["required"] = True
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    return app


def default_app() -> FastAPI:
    """The app on the pipeline's MongoDB configuration (`MONGODB_URI`, `MONGODB_DATABASE`)."""
    from mls_assets.lib.store.client import get_database

    return create_app(get_database)
