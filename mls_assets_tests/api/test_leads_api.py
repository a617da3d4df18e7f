"""The expired-leads API over HTTP against the real MongoDB server: each route, each error,
paging while leads arrive, and isolation between tenants on every route."""

import csv
import io
import re
from datetime import timedelta

import pytest
from cachetools import TTLCache

from mls_assets.lib.catalogue import EXPIRED, LEAD_EVENTS
from mls_assets.lib.leads import keys
from mls_assets.lib.leads.keys import KEYS_COLLECTION, revoke_key
from mls_assets_tests.support.leads import ALPHA_GPS, NOW, expired_doc

LIST = "/v1/tenants/alpha/expired-listings"


def keys_of(body: dict) -> list[str]:
    return [lead["listingKey"] for lead in body["leads"]]


def test_list_merges_the_tenants_mlss_newest_first_one_copy_per_listing(api, alpha_key):
    body = api.get(LIST, params={"count": "true"}, headers=alpha_key).json()
    assert keys_of(body) == ["A1", "C1", "A2", "A3", "A4", "DUP", "C2"]
    assert body["total"] == 7 and body["next_cursor"] is None
    assert api.get(LIST, headers=alpha_key).json()["total"] is None  # counted only on request
    dup = next(lead for lead in body["leads"] if lead["listingKey"] == "DUP")
    assert dup["mls"] == "gps"  # its newer copy
    assert not {"_id", "_seq", "_hash", "_runId"} & set(dup)


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"leadStatus": "contacted"}, ["A4"]),
        ({"city": "Tustin"}, ["A3"]),
        ({"mls": "crmls"}, ["C1", "DUP", "C2"]),
        ({"status": "Canceled"}, ["C1", "A2"]),  # both spellings
        ({"status": "Withdrawn"}, ["C2"]),
        (
            {"since": (NOW - timedelta(days=3, hours=1)).isoformat(), "until": (NOW - timedelta(days=1)).isoformat()},
            ["C1", "A2", "A3"],
        ),
    ],
)
def test_filters(api, alpha_key, params, expected):
    body = api.get(LIST, params={**params, "count": "true"}, headers=alpha_key).json()
    assert keys_of(body) == expected and body["total"] == len(expected)


@pytest.mark.parametrize(
    "params, field",
    [
        ({"leadStatus": "hot"}, "leadStatus"),
        ({"status": "Sold"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"limit": 0}, "limit"),
        ({"limit": 10_000}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_query_parameters_get_422_naming_the_field(api, alpha_key, params, field):
    response = api.get(LIST, params=params, headers=alpha_key)
    assert response.status_code == 422
    assert any(field in error["loc"] for error in response.json()["detail"])


def test_paging_neither_skips_nor_repeats_while_leads_arrive(api, alpha_key, leads_db):
    seen: list[str] = []
    page = api.get(LIST, params={"limit": 2}, headers=alpha_key).json()
    seen += keys_of(page)
    arrivals = iter([expired_doc("NEW1", 0.1), expired_doc("OLD1", 30), expired_doc("NEW2", 0.2)])
    while page["next_cursor"]:
        leads_db[EXPIRED.collection_name(ALPHA_GPS)].insert_one(next(arrivals, expired_doc("NEW3", 0.3)))
        page = api.get(
            LIST, params={"limit": 2, "cursor": page["next_cursor"], "count": "true"}, headers=alpha_key
        ).json()
        seen += keys_of(page)
    assert len(seen) == len(set(seen)), "a lead was served twice"
    assert {"A1", "C1", "A2", "A3", "A4", "DUP", "C2"} <= set(seen), "a lead was skipped"
    assert "OLD1" in seen  # arrived behind the cursor: still served, once
    assert not {"NEW1", "NEW2", "NEW3"} & set(seen)  # arrived ahead of it: on the next first page
    assert page["total"] == 7 + 3  # counted as they arrive


def test_one_lead_with_its_photos_in_order(api, alpha_key):
    response = api.get(f"{LIST}/A1", headers=alpha_key)
    assert response.status_code == 200
    body = response.json()
    assert body["listing"]["listingKey"] == "A1" and body["listing"]["mls"] == "gps"
    assert [p["order"] for p in body["photos"]] == [0, 1, 2]
    assert response.headers["ETag"].startswith('"0.')
    assert api.get(f"{LIST}/NOPE", headers=alpha_key).status_code == 404


def test_patch_updates_lead_fields_records_an_event_and_refuses_stale_writes(api, alpha_key, leads_db):
    first = api.patch(
        f"{LIST}/A2",
        json={
            "leadStatus": "contacted",
            "skipTraced": True,
            "skipTraceDate": "2026-11-21T09:30:00Z",
            "ownerName": "Pat Doe",
        },
        headers={**alpha_key, "If-Match": '"0"'},
    )
    assert first.status_code == 200, first.text
    assert first.headers["ETag"].startswith('"1.')
    stored = leads_db[EXPIRED.collection_name(ALPHA_GPS)].find_one({"listingKey": "A2"})
    assert stored["leadStatus"] == "contacted" and stored["skipTraced"] is True and stored["ownerName"] == "Pat Doe"
    stale = api.patch(f"{LIST}/A2", json={"leadStatus": "skipped"}, headers={**alpha_key, "If-Match": '"0"'})
    assert stale.status_code == 412 and stale.headers["ETag"] == first.headers["ETag"]
    assert leads_db[EXPIRED.collection_name(ALPHA_GPS)].find_one({"listingKey": "A2"})["leadStatus"] == "contacted"
    (event,) = leads_db[LEAD_EVENTS.collection_name(ALPHA_GPS)].find({"listingKey": "A2"})
    assert event["before"] == {"leadStatus": "new", "skipTraced": False, "skipTraceDate": None, "ownerName": None}
    assert event["after"]["leadStatus"] == "contacted" and event["actor"].startswith("alpha crm")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"leadStatus": "hot"}, "leadStatus"),
        ({"listPrice": 1}, "listPrice"),
        ({"skipTraceDate": "soon"}, "skipTraceDate"),
        ({"skipTraced": "yes"}, "skipTraced"),
        ({"leadStatus": None}, "leadStatus"),
        ({"ownerEmail": "nobody"}, "ownerEmail"),
    ],
)
def test_patch_refuses_anything_but_valid_lead_fields(api, alpha_key, leads_db, body, field):
    response = api.patch(f"{LIST}/A1", json=body, headers={**alpha_key, "If-Match": '"0"'})
    assert response.status_code == 422
    assert any(field in error["loc"] for error in response.json()["detail"])
    assert leads_db[EXPIRED.collection_name(ALPHA_GPS)].find_one({"listingKey": "A1"}).get("leadVersion") is None


def test_patch_needs_if_match_and_something_to_change(api, alpha_key):
    assert api.patch(f"{LIST}/A1", json={"leadStatus": "skipped"}, headers=alpha_key).status_code == 428
    assert api.patch(f"{LIST}/A1", json={}, headers={**alpha_key, "If-Match": '"0"'}).status_code == 422
    assert (
        api.patch(f"{LIST}/NOPE", json={"leadStatus": "skipped"}, headers={**alpha_key, "If-Match": '"0"'}).status_code
        == 404
    )


def test_csv_export_streams_the_filtered_leads(api, alpha_key):
    response = api.get(LIST + ".csv", params={"mls": "crmls"}, headers=alpha_key)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["listingKey"] for r in rows] == ["C1", "DUP", "C2"]
    assert rows[0]["mls"] == "crmls" and rows[0]["leadStatus"] == "new" and rows[0]["statusChangeDate"]


ROUTES = [("GET", LIST), ("GET", LIST + ".csv"), ("GET", f"{LIST}/A1"), ("PATCH", f"{LIST}/A1")]


@pytest.mark.parametrize("method, path", ROUTES)
def test_a_key_of_another_tenant_gets_404_on_every_route(api, beta_key, leads_db, method, path):
    response = api.request(method, path, headers={**beta_key, "If-Match": '"0"'}, json={"leadStatus": "converted"})
    assert response.status_code == 404
    assert "A1" not in response.text and "Irvine" not in response.text
    assert leads_db[EXPIRED.collection_name(ALPHA_GPS)].find_one({"listingKey": "A1"})["leadStatus"] == "new"


def test_a_key_serves_only_its_own_tenants_copy(api, beta_key):
    body = api.get("/v1/tenants/beta/expired-listings", headers=beta_key).json()
    assert keys_of(body) == ["A1", "B1"] and {lead["mls"] for lead in body["leads"]} == {"gps"}
    photos = api.get("/v1/tenants/beta/expired-listings/A1", headers=beta_key).json()["photos"]
    assert len(photos) == 1  # beta's own photo of A1, not alpha's three


@pytest.mark.parametrize("method, path", ROUTES)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer", "Bearer mls_0123456789abcdef_" + "x" * 43, "Basic abc", "Bearer not-a-key"]
)
def test_no_key_or_a_bad_one_gets_401(api, method, path, authorization):
    headers = {"If-Match": '"0"'} | ({"Authorization": authorization} if authorization else {})
    response = api.request(method, path, headers=headers, json={"leadStatus": "converted"})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"


def test_a_revoked_key_gets_401_and_keys_are_stored_only_as_hashes(api, alpha_key, leads_db):
    token = alpha_key["Authorization"].split()[1]
    assert api.get(LIST, headers=alpha_key).status_code == 200
    stored = leads_db[KEYS_COLLECTION].find_one({"tenant": "alpha"})
    secret = token.split("_", 2)[2]  # the secret itself may hold "_"
    assert secret not in str(stored) and token not in str(stored)
    revoke_key(leads_db, stored["keyId"])
    assert api.get(LIST, headers=alpha_key).status_code == 401


def test_a_verified_key_is_remembered_by_its_digest_for_a_second_and_a_refused_one_never(leads_db, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(keys, "_verified", TTLCache(maxsize=16, ttl=keys.KEYS_KEPT_SECONDS, timer=lambda: clock[0]))
    token, created = keys.create_key(leads_db, "alpha", "crm")
    assert keys.remembered_key(leads_db, token) is None
    record = keys.tenant_of(leads_db, token)
    assert (record.key_id, record.tenant) == (created.key_id, "alpha")
    assert keys.remembered_key(leads_db, token) == record  # the next request asks nothing
    assert token not in str(list(keys._verified.keys())) and token.split("_", 2)[2] not in str(
        list(keys._verified.keys())
    )
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert keys.tenant_of(leads_db, wrong) is None and keys.remembered_key(leads_db, wrong) is None
    # revoked by another process (straight in the database): valid here for at most a second
    leads_db[KEYS_COLLECTION].update_one({"keyId": record.key_id}, {"$set": {"revokedAt": NOW}})
    clock[0] += keys.KEYS_KEPT_SECONDS * 0.9
    assert keys.tenant_of(leads_db, token) == record
    clock[0] += keys.KEYS_KEPT_SECONDS * 0.2
    assert keys.tenant_of(leads_db, token) is None


def test_openapi_docs_are_served_with_no_request_leaving_the_machine(api):
    page = api.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert assets and all(a.startswith("/") for a in assets), assets  # nothing from a CDN
    for asset in assets:  # and every one of them is served here
        assert api.get(asset).status_code == 200, asset
    assert "SwaggerUIBundle" in api.get(next(a for a in assets if a.endswith(".js"))).text
    assert LIST.replace("alpha", "{tenant}") in api.get("/openapi.json").json()["paths"]
