"""Spark's replication API over the market: `GET /v1/listings`.

Bearer auth (401 + code 1020), `_limit` (max 1000), `_skiptoken` paging over ListingKey
order, `_filter` (the SparkQL subset; bad syntax or unknown fields -> 1040), `_select`,
`_expand=Photos`, `_pagination=count`, and the `D` envelope.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from mls_assets.lib.sources.spark.sparkql import SPARKQL
from mls_assets.simulator.filtering import compile_filter, page_size, page_start
from mls_assets.simulator.market import FILTER_FIELDS, ListingState

if TYPE_CHECKING:
    from mls_assets.simulator.server import SimulatorServer

PREFIX = "/v1"
MAX_LIMIT = 1000
DEFAULT_LIMIT = 10


class SparkDialect:
    name = "spark"
    prefix = PREFIX
    resource = f"{PREFIX}/listings"
    gzip = False  # Spark answers uncompressed here
    wrong_host = (400, 1021, "Wrong host for this API key: use the replication endpoint")
    transient_failure = (200, 1024, "Temporary failure, try again")  # Success: false in a 200

    def error_body(self, status: int, code: int, message: str) -> bytes:
        return orjson.dumps({"D": {"Success": False, "Code": code, "Message": message}})

    def matching(self, server: SimulatorServer, filter_text: str) -> list[ListingState]:
        def find(states: list[ListingState]) -> list[ListingState]:
            if not filter_text:
                return states
            predicate = compile_filter(filter_text, SPARKQL, FILTER_FIELDS, 1040)
            return [s for s in states if predicate(s.index_row)]

        return server.cached_query(("spark", filter_text), server.market.states, find)

    def answer(self, server: SimulatorServer, params: dict[str, str], fault: str | None) -> dict[str, Any]:
        limit = page_size(params, "_limit", DEFAULT_LIMIT, MAX_LIMIT, 1053)
        found = self.matching(server, params.get("_filter", ""))
        if params.get("_pagination") == "count":
            pages = -(-len(found) // limit)
            return {
                "D": {
                    "Success": True,
                    "Results": [],
                    "Pagination": {"TotalRows": len(found), "PageSize": limit, "TotalPages": pages, "CurrentPage": 1},
                }
            }
        token = params.get("_skiptoken", "")
        start = page_start(found, token)
        page = found[start : start + limit]
        expand_photos = "Photos" in params.get("_expand", "").split(",")
        select = [f for f in params.get("_select", "").split(",") if f]
        results = []
        for state in page:
            record = server.market.record(state, expand_photos)
            if select:
                fields = record["StandardFields"]
                chosen = {name: fields[name] for name in select if name in fields}
                if expand_photos:
                    chosen["Photos"] = fields.get("Photos", [])
                record = {"ResourceUri": record["ResourceUri"], "Id": record["Id"], "StandardFields": chosen}
            results.append(server.market.make_hostile(state, record))
        next_token = page[-1].timeline.key if page else token
        if fault == "repeat_token":
            next_token = token
        if fault == "results_object":
            return {"D": {"Success": True, "Results": {"0": results[:1]}, "SkipToken": next_token}}
        if fault == "empty_page":
            return {"D": {"Success": True, "Results": [], "SkipToken": next_token}}
        return {"D": {"Success": True, "Results": results, "SkipToken": next_token}}
