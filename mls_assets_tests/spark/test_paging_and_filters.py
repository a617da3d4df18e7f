"""Paging and filtering against the simulator over HTTP."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mls_assets.lib.sources import filters
from mls_assets.lib.sources.spark import sparkql
from mls_assets.lib.sources.spark.client import SparkClient
from mls_assets.lib.sources.spark.errors import SparkConfigurationError
from mls_assets.simulator import CRMLS_MLS_ID, DEMO_TOKEN, GPS_MLS_ID
from mls_assets_tests.support.sources import ANCHOR


def expected_keys(market, predicate=lambda row: True) -> list[str]:
    return [s.timeline.key for s in market.states() if predicate(s.index_row)]


@pytest.mark.parametrize("limit", [1, 7, 1000])
def test_paging_returns_every_listing_exactly_once(client, market, limit):
    gps = filters.eq("MlsId", GPS_MLS_ID)
    keys = [r["Id"] for r in client.listings(gps, limit=limit)]
    want = expected_keys(market, lambda row: row["MlsId"] == GPS_MLS_ID)
    assert len(keys) == len(set(keys)) == len(want)
    assert keys == want  # ListingKey order, as Spark's skiptoken paging is
    pages = -(-len(want) // limit)
    assert client.stats.requests == pages + 1  # the last request returns no results


def test_paging_can_resume_from_a_checkpointed_token(client, market):
    pages = client.pages(limit=50)
    first = next(pages)
    resumed = [r["Id"] for page in client.pages(limit=50, start_token=first.next_token) for r in page.results]
    assert [r["Id"] for r in first.results] + resumed == expected_keys(market)


def test_an_unchanged_skiptoken_on_a_partial_page_ends_paging(client, simulator, market):
    total = len(expected_keys(market))
    full_pages = total // 100
    # the page after the last full one comes back with the request's own token
    client_pages = client.pages(limit=100)
    seen = []
    for number, page in enumerate(client_pages, start=1):
        seen.extend(r["Id"] for r in page.results)
        if number == full_pages:
            simulator.inject("repeat_token")
    assert len(seen) == len(set(seen)) == total
    assert client.stats.requests == full_pages + 1  # no extra request after the repeat


def test_a_full_page_whose_token_does_not_advance_is_asked_again(client, simulator, market):
    simulator.inject("repeat_token", "repeat_token")
    keys = [r["Id"] for r in client.listings(limit=25)]
    assert keys == expected_keys(market)


def test_a_token_that_never_advances_fails_clearly(client, simulator):
    from mls_assets.lib.sources.spark.errors import SparkPagingError

    simulator.inject(*["repeat_token"] * 20)
    with pytest.raises(SparkPagingError, match="refusing to stop early"):
        list(client.listings(limit=10))


def test_filters_by_status_mls_and_date_window(client, market):
    start, end = ANCHOR - timedelta(days=10), ANCHOR - timedelta(days=3)
    cases = [
        (
            filters.one_of("StandardStatus", ["Expired", "Canceled", "Withdrawn"]),
            lambda r: r["StandardStatus"] in ("Expired", "Canceled", "Withdrawn"),
        ),
        (
            filters.eq("MlsId", CRMLS_MLS_ID) & filters.one_of("PropertyType", "AB"),
            lambda r: r["MlsId"] == CRMLS_MLS_ID and r["PropertyType"] in "AB",
        ),
        (
            filters.ge("ModificationTimestamp", start) & filters.lt("ModificationTimestamp", end),
            lambda r: start <= r["ModificationTimestamp"] < end,
        ),
        (
            filters.bt("ListPrice", 300_000, 800_000) & ~filters.eq("City", "Indio"),
            lambda r: 300_000 <= r["ListPrice"] <= 800_000 and r["City"] != "Indio",
        ),
    ]
    for query, predicate in cases:
        want = expected_keys(market, predicate)
        assert want, f"the market has no listing for {query}"
        assert [r["Id"] for r in client.listings(query, limit=1000)] == want, sparkql.render(query)


def test_select_listing_key_returns_only_keys(client, market):
    results = list(client.listings(select=["ListingKey"], limit=1000))
    assert [r["StandardFields"] for r in results[:2]] == [{"ListingKey": k} for k in expected_keys(market)[:2]]
    assert len(results) == len(expected_keys(market))


def test_expand_photos_puts_photos_in_standard_fields(client):
    records = list(client.listings(filters.eq("MlsId", GPS_MLS_ID), limit=200, expand=["Photos"]))
    with_photos = [r for r in records if r["StandardFields"].get("Photos")]
    assert with_photos
    photo = with_photos[0]["StandardFields"]["Photos"][0]
    assert {
        "Id",
        "Primary",
        "UriThumb",
        "Uri300",
        "Uri640",
        "Uri800",
        "Uri1024",
        "Uri1280",
        "Uri1600",
        "Uri2048",
        "UriLarge",
    } <= set(photo)
    plain = next(client.listings(limit=1))
    assert "Photos" not in plain["StandardFields"]


def test_pagination_count(client, market):
    gps = filters.eq("MlsId", GPS_MLS_ID)
    assert client.count(gps) == len(expected_keys(market, lambda r: r["MlsId"] == GPS_MLS_ID))


@pytest.mark.parametrize(
    "bad_filter",
    ["MlsId Eq", "Bogus Eq 'x'", "ListPrice Gt 'cheap'", "(City Eq 'Indio'", "City Like 'x'"],
)
def test_bad_filters_fail_at_once_with_code_1040(client, bad_filter, sleeps):
    with pytest.raises(SparkConfigurationError, match="code 1040") as failure:
        list(client.listings(bad_filter))
    assert client.stats.requests == 1 and sleeps == []
    assert "filter" in str(failure.value).lower()


def test_limit_over_1000_is_refused_by_server_and_client(simulator):
    response = httpx.get(
        f"{simulator.url}/listings", params={"_limit": "1001"}, headers={"Authorization": f"Bearer {DEMO_TOKEN}"}
    )
    assert response.status_code == 400 and response.json()["D"]["Code"] == 1053
    with pytest.raises(SparkConfigurationError, match="_limit"):
        next(SparkClient(simulator.url, DEMO_TOKEN).pages(limit=5000))


def test_missing_token_gets_401_code_1020(simulator):
    response = httpx.get(f"{simulator.url}/listings")
    assert response.status_code == 401
    assert response.json()["D"] == {"Success": False, "Code": 1020, "Message": "Access token required"}


def test_the_market_has_realistic_quirks_and_both_mlss(client):
    records = list(client.listings(limit=1000))
    fields = [r["StandardFields"] for r in records]
    assert {f["MlsId"] for f in fields} == {GPS_MLS_ID, CRMLS_MLS_ID}
    assert any(isinstance(f["ListPrice"], str) for f in fields)
    assert any(isinstance(f["Longitude"], str) and f["Longitude"].startswith(" ") for f in fields)
    assert any(f.get("ListAgentEmail") == "********" for f in fields)
    assert any(f.get("Rooms") == [] for f in fields)
    statuses = {f["StandardStatus"] for f in fields}
    assert {"Active", "Pending", "Closed", "Expired", "Canceled", "Withdrawn"} <= statuses
    closed = next(f for f in fields if f["StandardStatus"] == "Closed")
    assert closed["ClosePrice"] and closed["CloseDate"]
    assert any(isinstance(v, dict) and all(isinstance(b, bool) for b in v.values()) for f in fields for v in f.values())


def test_sparkql_builder_round_trips_through_the_parser():
    built = (
        filters.eq("MlsId", "20200218121507636729000000")
        & filters.one_of("PropertyType", ["A", "B", "C"])
        & filters.gt("ModificationTimestamp", datetime(2026, 11, 20, tzinfo=UTC))
    )
    text = (
        "MlsId Eq '20200218121507636729000000' And (PropertyType Eq 'A' Or PropertyType Eq 'B' Or "
        "PropertyType Eq 'C') And ModificationTimestamp Gt 2026-11-20T00:00:00Z"
    )
    assert sparkql.render(built) == text
    assert sparkql.render(sparkql.parse(text)) == text
    assert sparkql.render(filters.eq("City", "O'Brien")) == "City Eq 'O\\'Brien'"
    assert sparkql.parse("City Eq 'O\\'Brien'").value == "O'Brien"
    assert sparkql.render(filters.bt("ListDate", datetime(2026, 1, 1).date(), datetime(2026, 2, 1).date())) == (
        "ListDate Bt 2026-01-01,2026-02-01"
    )
    assert sparkql.render(filters.Not(filters.eq("City", "Indio"))) == "Not (City Eq 'Indio')"
    with pytest.raises(sparkql.SparkQLSyntaxError):
        sparkql.parse("City Eq 'x' And")
    with pytest.raises(ValueError):
        filters.eq("Bad Field", 1)
