"""Downloading photos from the simulator's media host: every fault ends as one photo's
reason, retries honour Retry-After without sleeping, and the token goes only where allowed."""

from datetime import UTC, datetime
from urllib.parse import urlsplit

from mls_assets.lib.media.download import PhotoDownloader
from mls_assets.lib.media.images import Limits
from mls_assets.simulator import DEMO_TOKEN, Market, SimulatorServer
from mls_assets.simulator.media import MediaHost

ANCHOR = datetime(2026, 11, 20, tzinfo=UTC)


def urls(market: Market, size: str = "Uri300") -> list[str]:
    return [photo[size] for state in market.states()[:40] for photo in market.photos(state)]


def test_each_fault_is_one_photos_reason_and_the_token_goes_only_to_its_host():
    market = Market(listings=40, seed=5, anchor=ANCHOR)
    host = MediaHost(fault_rate=0.5, slow_seconds=0.01)
    with SimulatorServer(market, media_host=host) as server:
        photos = urls(market)[:80]
        faults = {url: host.fault_of(url.split("/media/", 1)[1]) for url in photos}
        sleeps: list[float] = []
        media_host = urlsplit(server.root_url).hostname
        with PhotoDownloader(token=DEMO_TOKEN, token_hosts=[media_host], sleep=sleeps.append) as downloader:
            done = {d.url: d for d in downloader.fetch_all(photos, workers=8)}
        with PhotoDownloader(token=DEMO_TOKEN, token_hosts=["media.elsewhere.example"]) as no_token_here:
            token_only = [url for url, fault in faults.items() if fault == "token_only"]
            refused = no_token_here.fetch(token_only[0])
    assert list(done) == photos and token_only
    for url, fault in faults.items():
        download = done[url]
        if fault == "missing":
            assert (download.ok, download.reason, download.attempts) == (False, "missing", 1)
        else:  # bytes arrive; what they are worth is for the image checks to say
            assert download.ok and download.content, (fault, download)
    assert all(done[url].attempts == 2 for url in token_only)  # asked again with the token
    assert (refused.ok, refused.reason) == (False, "unauthorized")
    assert sleeps == []


def test_a_rate_limited_host_is_retried_after_what_it_asks_then_the_photo_fails_alone():
    market = Market(listings=5, seed=3, anchor=ANCHOR)
    host = MediaHost(rate_per_second=2, clock=lambda: 0.0)  # the second never ends
    with SimulatorServer(market, media_host=host):
        sleeps: list[float] = []
        with PhotoDownloader(attempts=4, sleep=sleeps.append) as downloader:
            first, second, third = (downloader.fetch(url) for url in urls(market)[:3])
    assert first.ok and second.ok
    assert (third.ok, third.reason, third.attempts) == (False, "rate_limited", 4)
    assert sleeps == [1.0, 1.0, 1.0]  # Retry-After: 1, three times


def test_a_body_over_the_byte_limit_is_refused_while_reading():
    market = Market(listings=5, seed=3, anchor=ANCHOR)
    with SimulatorServer(market, media_host=MediaHost()):
        with PhotoDownloader(limits=Limits(max_bytes=5_000)) as downloader:
            download = downloader.fetch(urls(market, "UriLarge")[0])
    assert (download.ok, download.reason) == (False, "too_large")


def test_a_url_that_is_not_http_is_refused_before_any_request():
    with PhotoDownloader() as downloader:
        assert downloader.fetch("file:///etc/passwd").reason == "bad_url"
        assert downloader.fetch("ftp://127.0.0.1/x.jpg").reason == "bad_url"
        assert downloader.requests == 0


def test_requests_carrying_the_token_spend_the_tokens_budget_and_no_other_does():
    from mls_assets.lib.sources.rate import RateBudget

    market = Market(listings=40, seed=5, anchor=ANCHOR)
    host = MediaHost(fault_rate=0.5)
    with SimulatorServer(market, media_host=host) as server:
        photos = urls(market)[:80]
        token_only = [u for u in photos if host.fault_of(u.split("/media/", 1)[1]) == "token_only"][:3]
        plain = [u for u in photos if host.fault_of(u.split("/media/", 1)[1]) is None][:3]
        budget = RateBudget(1000, 3600, bytes_per_hour=10**9)
        media_host = urlsplit(server.root_url).hostname
        with PhotoDownloader(token=DEMO_TOKEN, token_hosts=[media_host], budget=budget) as downloader:
            assert all(d.ok for d in downloader.fetch_all([*plain, *token_only]))
    assert token_only and plain
    assert round(1000 - budget.remaining()) == len(token_only)  # only the second, tokened, request of each
