"""The leads API in a CRM's hands: spreadsheet formulas never reach an export as formulas,
a large body is refused before it is read, out-of-range input is a 422 that does not echo
it, and `If-Match: *` matches the current lead."""

import csv
import io

import pytest

from mls_assets.lib.catalogue import EXPIRED
from mls_assets_tests.support.leads import ALPHA_GPS

LIST = "/v1/tenants/alpha/expired-listings"


@pytest.mark.parametrize("owner", ['=HYPERLINK("http://x","y")', "=1+1", "+1", "-1+2", "@SUM(1,2)", "\t=1", "\r=1"])
def test_a_formula_in_a_lead_field_is_neutralised_in_the_csv_export(api, alpha_key, leads_db, owner):
    leads_db[EXPIRED.collection_name(ALPHA_GPS)].update_one(
        {"listingKey": "A1"}, {"$set": {"ownerName": owner, "unparsedAddress": "=cmd|' /C calc'!A0"}}
    )
    response = api.get(LIST + ".csv", headers=alpha_key)
    assert response.status_code == 200
    row = next(r for r in csv.DictReader(io.StringIO(response.text)) if r["listingKey"] == "A1")
    assert row["ownerName"] == "'" + owner  # shown as text, never evaluated
    assert row["unparsedAddress"] == "'=cmd|' /C calc'!A0"


def test_a_plain_value_is_exported_as_it_is(api, alpha_key, leads_db):
    leads_db[EXPIRED.collection_name(ALPHA_GPS)].update_one(
        {"listingKey": "A1"}, {"$set": {"ownerName": "Pat O'Doe, Jr."}}
    )
    rows = list(csv.DictReader(io.StringIO(api.get(LIST + ".csv", headers=alpha_key).text)))
    assert next(r for r in rows if r["listingKey"] == "A1")["ownerName"] == "Pat O'Doe, Jr."


def test_a_body_over_the_limit_is_refused_before_it_is_read(api, alpha_key):
    big = b'{"ownerName": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    for headers, status in (({}, 401), (alpha_key, 413)):  # never read, never parsed
        response = api.patch(
            f"{LIST}/A1", content=big, headers={**headers, "If-Match": '"0"', "Content-Type": "application/json"}
        )
        assert response.status_code == status, response.text
        assert len(response.content) < 1000

    def chunks():  # no Content-Length: counted as it arrives, cut off at the limit
        for _ in range(64):
            yield b"x" * 65536

    response = api.patch(
        f"{LIST}/A1", content=chunks(), headers={**alpha_key, "If-Match": '"0"', "Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text


def test_a_body_without_a_key_is_refused_before_it_is_read(api):
    response = api.patch(f"{LIST}/A1", json={"leadStatus": "skipped"}, headers={"If-Match": '"0"'})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"


def test_a_422_never_echoes_large_input(api, alpha_key):
    response = api.patch(f"{LIST}/A1", json={"leadStatus": "x" * 20_000}, headers={**alpha_key, "If-Match": '"0"'})
    assert response.status_code == 422 and len(response.content) < 2000
    assert any("leadStatus" in error["loc"] for error in response.json()["detail"])


@pytest.mark.parametrize(
    "params",
    [
        {"since": "0001-01-01T00:00:00+01:00"},
        {"until": "9999-12-31T23:59:59-01:00"},
        {"since": "9999-12-31"},
        {"until": "0001-01-01"},
    ],
)
def test_dates_out_of_range_are_a_422(api, alpha_key, params):
    for route in (LIST, LIST + ".csv"):
        response = api.get(route, params=params, headers=alpha_key)
        assert response.status_code == 422, response.text
        (error,) = response.json()["detail"]
        assert next(iter(params)) in error["loc"] and "between" in error["msg"]


def test_a_cursor_out_of_range_is_a_422(api, alpha_key):
    import base64
    import json

    for day in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        cursor = base64.urlsafe_b64encode(json.dumps([day, "A1"]).encode()).decode()
        response = api.get(LIST, params={"cursor": cursor}, headers=alpha_key)
        assert response.status_code == 422, response.text


def test_nan_in_a_patch_is_a_422(api, alpha_key):
    response = api.patch(
        f"{LIST}/A1",
        content=b'{"ownerName": "x", "skipTraced": NaN}',
        headers={**alpha_key, "If-Match": '"0"', "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text


def test_if_match_star_matches_the_current_lead(api, alpha_key, leads_db):
    first = api.patch(f"{LIST}/A1", json={"leadStatus": "contacted"}, headers={**alpha_key, "If-Match": "*"})
    assert first.status_code == 200, first.text
    second = api.patch(f"{LIST}/A1", json={"leadStatus": "skipped"}, headers={**alpha_key, "If-Match": "*"})
    assert second.status_code == 200 and second.headers["ETag"] != first.headers["ETag"]
    assert (
        api.patch(f"{LIST}/NOPE", json={"leadStatus": "skipped"}, headers={**alpha_key, "If-Match": "*"}).status_code
        == 404
    )


def test_the_etag_changes_when_a_resync_changes_the_listing_and_a_write_on_the_old_one_is_refused(
    api, alpha_key, leads_db
):
    read = api.get(f"{LIST}/A1", headers=alpha_key)
    leads_db[EXPIRED.collection_name(ALPHA_GPS)].update_one({"listingKey": "A1"}, {"$set": {"listPrice": 123_000}})
    again = api.get(f"{LIST}/A1", headers=alpha_key)
    assert again.headers["ETag"] != read.headers["ETag"]  # what the client read changed
    stale = api.patch(
        f"{LIST}/A1", json={"leadStatus": "contacted"}, headers={**alpha_key, "If-Match": read.headers["ETag"]}
    )
    assert stale.status_code == 412 and stale.headers["ETag"] == again.headers["ETag"]
    ok = api.patch(
        f"{LIST}/A1", json={"leadStatus": "contacted"}, headers={**alpha_key, "If-Match": again.headers["ETag"]}
    )
    assert ok.status_code == 200


def test_the_openapi_document_describes_answers_errors_security_and_the_csv(api):
    spec = api.get("/openapi.json").json()
    (scheme,) = spec["components"]["securitySchemes"].values()
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")  # Swagger UI's Authorize button
    paths = {path.replace("{tenant}", "T"): operations for path, operations in spec["paths"].items()}
    route = "/v1/tenants/T/expired-listings"
    operations = {
        ("get", route),
        ("get", route + ".csv"),
        ("get", route + "/{listing_key}"),
        ("patch", route + "/{listing_key}"),
    }
    for method, path in operations:
        operation = paths[path][method]
        assert {"401", "404", "422"} <= set(operation["responses"]), (method, path)
        assert operation.get("security"), (method, path)
    listed = paths[route]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert set(spec["components"]["schemas"][listed.rsplit("/", 1)[1]]["properties"]) == {
        "leads",
        "total",
        "next_cursor",
    }
    assert set(paths[route + ".csv"]["get"]["responses"]["200"]["content"]) == {"text/csv"}
    patch = paths[route + "/{listing_key}"]["patch"]
    assert {"412", "413", "428"} <= set(patch["responses"])
    (if_match,) = [p for p in patch["parameters"] if p["name"].lower() == "if-match"]
    assert if_match["required"] is True and "*" in if_match["description"]
