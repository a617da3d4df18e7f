"""The market as a RESO Web API in MLS Grid's replication dialect: `GET /reso/odata/Property`.

Bearer auth (401), `$filter` (the OData subset; bad -> 400), `$top` (max 5000, 1000 with
`$expand=Media`), `$select`, `$count=true`, `@odata.nextLink` paging over ListingKey
order, deleted listings as `MlgCanView: false`, gzip when asked, OData error bodies.
Records carry Data Dictionary names, `OriginatingSystemName`, lookups as strings and
multi-value lookups as arrays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson

from mls_assets.lib.sources.reso.odata import ODATA
from mls_assets.simulator.filtering import SourceError, compile_filter, page_size, page_start
from mls_assets.simulator.market import (
    CRMLS_MLS_ID,
    FILTER_FIELDS,
    GPS_MLS_ID,
    ListingState,
    Market,
    iso_time,
    mls_number,
)

if TYPE_CHECKING:
    from mls_assets.simulator.server import SimulatorServer

PREFIX = "/reso/odata"
FILTERABLE = (*FILTER_FIELDS, "OriginatingSystemName", "MlgCanView", "BedroomsTotal")
MAX_TOP, MAX_TOP_EXPANDED, DEFAULT_TOP = 5000, 1000, 100
# The market's MLSs as a RESO Web API names them (`OriginatingSystemName`), and its property types.
RESO_SYSTEM_NAMES = {GPS_MLS_ID: "gpsmls", CRMLS_MLS_ID: "crmls"}
RESO_PROPERTY_TYPES = {"A": "Residential", "B": "Residential Lease", "C": "Residential Income"}


def reso_system_name(mls_id: str) -> str:
    """The MLS's `OriginatingSystemName` (a generated MLS: `mls` and its number)."""
    return RESO_SYSTEM_NAMES.get(mls_id) or f"mls{mls_number(mls_id):02d}"


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


def property_record(market: Market, state: ListingState, expand_media: bool) -> Any:
    """The listing as a RESO Web API (MLS Grid) `Property` record: Data Dictionary names,
    `OriginatingSystemName`, lookups as strings and multi-value lookups as arrays, `Media`,
    `MlgCanView`. A deleted listing is its key, its time of deletion and `MlgCanView: false`.
    Hostile listings are as hostile here as in the Spark dialect."""
    system = reso_system_name(state.timeline.mls_id)
    if state.deleted:
        return {
            "ListingKey": state.timeline.key,
            "OriginatingSystemName": system,
            "ModificationTimestamp": iso_time(state.modified_at),
            "MlgCanView": False,
        }
    record = market.make_hostile(state, market.record(state, expand_photos=expand_media))
    if not isinstance(record, dict):
        return record
    fields = {
        "BedroomsTotal" if name == "BedsTotal" else name: value
        for name, value in record["StandardFields"].items()
        if name not in ("MlsId", "Photos")
    }
    for name, value in fields.items():
        if isinstance(value, dict) and value and all(isinstance(v, bool) for v in value.values()):
            fields[name] = [option for option, chosen in value.items() if chosen]
    if fields.get("PropertyType") in RESO_PROPERTY_TYPES:
        fields["PropertyType"] = RESO_PROPERTY_TYPES[fields["PropertyType"]]
    fields.update(OriginatingSystemName=system, MlgCanView=True)
    if expand_media:
        fields["Media"] = [
            {
                "MediaKey": photo["Id"],
                "MediaURL": photo["UriLarge"],
                "Order": n,
                "MediaCategory": "Photo",
                "ShortDescription": photo["Caption"],
                "MediaModificationTimestamp": iso_time(state.photos_changed_at),
            }
            for n, photo in enumerate(record["StandardFields"].get("Photos", []))
        ]
    return fields


class ResoDialect:
    name = "reso"
    prefix = PREFIX
    resource = f"{PREFIX}/Property"
    gzip = True
    wrong_host = (403, 403, "This token is not licensed for this resource")
    transient_failure = (503, 503, "Temporary failure, try again")  # OData has no Success flag

    def error_body(self, status: int, code: int, message: str) -> bytes:
        return orjson.dumps({"error": {"code": str(status), "message": message}})  # no Spark codes here

    def matching(self, server: SimulatorServer, filter_text: str) -> list[ListingState]:
        def find(states: list[ListingState]) -> list[ListingState]:
            predicate = compile_filter(filter_text, ODATA, FILTERABLE, 400) if filter_text else None
            return [s for s in states if predicate is None or predicate(reso_row(s))]

        return server.cached_query(("reso", filter_text), server.market.states_with_deleted, find)

    def answer(self, server: SimulatorServer, params: dict[str, str], fault: str | None) -> dict[str, Any]:
        """One answer of `GET /reso/odata/Property`."""
        root = server.root_url + PREFIX
        expand = [e for e in params.get("$expand", "").split(",") if e]
        if set(expand) - {"Media"}:
            raise SourceError(400, 400, f"$expand supports Media only, not {','.join(expand)}")
        most = MAX_TOP_EXPANDED if expand else MAX_TOP
        top = page_size(params, "$top", DEFAULT_TOP, most, 400, " with $expand" if expand else "")
        found = self.matching(server, params.get("$filter", ""))
        token = params.get("$skiptoken", "")
        start = page_start(found, token)
        page = found[start : start + top]
        select = [f for f in params.get("$select", "").split(",") if f]
        records = []
        for state in page:
            record = property_record(server.market, state, expand_media=bool(expand))
            if select and isinstance(record, dict):
                record = {name: record[name] for name in (*select, *expand, "MlgCanView") if name in record}
            records.append(record)
        answer: dict[str, Any] = {"@odata.context": f"{root}/$metadata#Property", "value": records}
        if params.get("$count") == "true":
            answer["@odata.count"] = len(found)
        following = {k: v for k, v in params.items() if k not in ("$skiptoken", "$count")}
        if fault == "repeat_token":
            answer["@odata.nextLink"] = f"{root}/Property?{urlencode(params)}"  # this very request
        elif start + top < len(found) and fault != "empty_page":
            answer["@odata.nextLink"] = (
                f"{root}/Property?{urlencode({**following, '$skiptoken': page[-1].timeline.key})}"
            )
        if fault == "results_object":
            answer["value"] = {"0": records[:1]}
        if fault == "empty_page":
            answer["value"] = []
        return answer
