"""The RESO client against the simulator's RESO dialect over HTTP (and, for a next link to
another host, a fake transport: that host is refused before any request goes there)."""

import httpx
import pytest

from mls_assets.lib.sources import filters
from mls_assets.lib.sources.errors import FATAL_ERRORS, SourcePagingError, SourceRetryable
from mls_assets.lib.sources.reso.client import (
    ResoClient,
    ResoConfigurationError,
    ResoPagingError,
    ResoProtocolError,
    ResoTokenExpired,
)
from mls_assets.simulator import DEMO_TOKEN, GPS_MLS_ID
from mls_assets.simulator.faults import FaultPlan
from mls_assets.simulator.reso import RESO_SYSTEM_NAMES
from mls_assets_tests.support.sources import FAST_RETRY

GPS = filters.eq("OriginatingSystemName", RESO_SYSTEM_NAMES[GPS_MLS_ID])
VIEWABLE = filters.all_of(GPS, filters.eq("MlgCanView", True))


def visible_gps_keys(market) -> list[str]:
    return [s.timeline.key for s in market.states() if s.timeline.mls_id == GPS_MLS_ID]


def test_pages_follow_next_links_to_the_end_gzipped(client, simulator, market):
    pages = list(client.pages("Property", VIEWABLE, top=25, expand=["Media"]))
    keys = [r["ListingKey"] for page in pages for r in page.results]
    assert keys == visible_gps_keys(market)
    assert len(pages) == -(-len(keys) // 25) == client.stats.requests
    assert simulator.gzipped == client.stats.requests  # every answer came gzip-compressed and was read
    assert all("Media" in r for r in pages[0].results)
    assert client.count("Property", VIEWABLE) == len(keys)


def test_deleted_listings_come_back_as_mlgcanview_false_unless_filtered_out(client, market):
    everything = [r for p in client.pages("Property", GPS, top=5000) for r in p.results]
    deleted = {r["ListingKey"] for r in everything if r["MlgCanView"] is False}
    assert deleted, "the seeded market deletes some listings"
    assert deleted.isdisjoint(visible_gps_keys(market))
    assert {r["ListingKey"] for r in everything} - deleted == set(visible_gps_keys(market))


def test_a_repeated_next_link_is_an_error_not_a_loop(client, simulator):
    simulator.inject("repeat_token")
    with pytest.raises(ResoPagingError, match="already requested"):
        list(client.pages("Property", VIEWABLE, top=10))
    assert client.stats.requests == 1  # the repeated link was never requested
    assert isinstance(ResoPagingError("x"), SourcePagingError)


def test_an_empty_answer_without_a_next_link_ends_the_pull(client, simulator):
    simulator.inject("empty_page")
    assert list(client.pages("Property", VIEWABLE, top=10)) == []


def test_a_429_is_retried_after_the_servers_retry_after(simulator, sleeps):
    simulator.set_faults(FaultPlan(retry_after="1.5"))
    simulator.inject("429", "503", "500", "truncated")
    with ResoClient(simulator.reso_url, DEMO_TOKEN, retry=FAST_RETRY, sleep=sleeps.append) as client:
        first = next(client.pages("Property", VIEWABLE, top=10))
    assert len(first.results) == 10
    assert sleeps[:2] == [1.5, 1.5]  # Retry-After wins over the backoff
    assert client.stats.retries == 4 and client.stats.errors_by_kind == {"429": 1, "503": 1, "500": 1, "200": 1}


def test_errors_are_sorted_into_retry_or_fail_fast(simulator, sleeps):
    with ResoClient(simulator.reso_url, "not-a-token", retry=FAST_RETRY, sleep=sleeps.append) as client:
        with pytest.raises(ResoTokenExpired, match="no way to refresh"):
            list(client.pages("Property", VIEWABLE))
    with ResoClient(simulator.reso_url, DEMO_TOKEN, retry=FAST_RETRY, sleep=sleeps.append) as client:
        with pytest.raises(ResoConfigurationError, match="HTTP 400.*NoSuchField"):
            list(client.pages("Property", filters.eq("NoSuchField", 1)))
        simulator.inject("wrong_host")
        with pytest.raises(ResoConfigurationError, match="HTTP 403.*not licensed"):
            list(client.pages("Property", VIEWABLE))
        simulator.inject("results_object")
        with pytest.raises(ResoProtocolError, match="page 1 of Property: 'value' is dict"):
            list(client.pages("Property", VIEWABLE))
        assert client.stats.retries == 0  # none of them is worth a retry
    for error in (ResoTokenExpired, ResoConfigurationError, ResoProtocolError):
        assert issubclass(error, FATAL_ERRORS)
    assert not issubclass(ResoPagingError, SourceRetryable)


def test_top_beyond_the_dialects_limits_is_refused_before_any_request(client):
    with pytest.raises(ResoConfigurationError, match="between 1 and 1000 with \\$expand"):
        next(client.pages("Property", VIEWABLE, top=1001, expand=["Media"]))
    with pytest.raises(ResoConfigurationError, match="between 1 and 5000"):
        next(client.pages("Property", VIEWABLE, top=5001))
    assert client.stats.requests == 0


def test_a_next_link_to_another_host_is_refused_before_the_token_goes_there():
    seen: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(
            200,
            json={"value": [{"ListingKey": "A"}], "@odata.nextLink": "https://elsewhere.example/v2/Property?$skip=1"},
        )

    http = httpx.Client(transport=httpx.MockTransport(answer))
    with ResoClient("http://127.0.0.1:9/v2", DEMO_TOKEN, http=http, retry=FAST_RETRY) as client:
        pages = client.pages("Property", VIEWABLE)
        assert next(pages).results == [{"ListingKey": "A"}]
        with pytest.raises(ResoProtocolError, match="another host .*elsewhere.example"):
            next(pages)
    assert [url.host for url in seen] == ["127.0.0.1"]


def test_a_relative_next_link_is_followed_on_the_same_host():
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if "$skip" in request.url.params:
            return httpx.Response(200, json={"value": [{"ListingKey": "B"}]})
        return httpx.Response(200, json={"value": [{"ListingKey": "A"}], "@odata.nextLink": "Property?$skip=1"})

    http = httpx.Client(transport=httpx.MockTransport(answer))
    with ResoClient("http://127.0.0.1:9/v2", DEMO_TOKEN, http=http, retry=FAST_RETRY) as client:
        keys = [r["ListingKey"] for page in client.pages("Property", VIEWABLE) for r in page.results]
    assert keys == ["A", "B"] and seen[1].startswith("http://127.0.0.1:9/v2/Property?")
