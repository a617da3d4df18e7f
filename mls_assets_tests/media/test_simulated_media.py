"""The simulator serves its photos' bytes: deterministic JPEGs of realistic sizes, and the
ways a media host misbehaves, each photo always the same way."""

from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest

from mls_assets.lib.media.images import ImageRejected, render_variants
from mls_assets.simulator import DEMO_TOKEN, Market, SimulatorServer
from mls_assets.simulator.media import FAULTS, MediaHost

ANCHOR = datetime(2026, 11, 20, tzinfo=UTC)


def photo_urls(market: Market, size: str = "Uri1024") -> list[str]:
    return [photo[size] for state in market.states()[:40] for photo in market.photos(state)]


@pytest.fixture
def served():
    market = Market(listings=40, seed=3, anchor=ANCHOR)
    with SimulatorServer(market, media_host=MediaHost(slow_seconds=0.01)) as server:
        yield market, server


def test_every_photo_url_answers_with_the_same_realistic_jpeg(served):
    market, server = served
    urls = photo_urls(market)
    assert urls and all(url.startswith(server.root_url + "/media/") for url in urls)
    with httpx.Client() as client:
        first = client.get(urls[0])
        assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
        assert client.get(urls[0]).content == first.content  # deterministic
        large = client.get(urls[0].replace("-1024.jpg", "-large.jpg")).content
    assert 20_000 < len(first.content) < len(large) < 3_000_000
    rendered = render_variants(first.content, "image/jpeg")
    assert max(rendered["large"].width, rendered["large"].height) == 1024  # never upscaled


def test_a_market_without_a_media_host_keeps_its_cdn_urls():
    market = Market(listings=5, seed=3, anchor=ANCHOR)
    with SimulatorServer(market):
        assert all(url.startswith("https://cdn.sparkplatform.test/") for url in photo_urls(market))


def test_faulty_photos_misbehave_always_the_same_way_and_the_checks_name_them():
    market = Market(listings=60, seed=5, anchor=ANCHOR)
    host = MediaHost(fault_rate=0.5, slow_seconds=0.01)
    outcomes: Counter[str] = Counter()
    with SimulatorServer(market, media_host=host) as server, httpx.Client(timeout=10) as client:
        urls = photo_urls(market, "Uri300")[:80]
        for url in urls:
            fault = host.fault_of(url.split("/media/", 1)[1])
            answer = client.get(url)
            assert client.get(url).status_code == answer.status_code  # the same every time
            if fault == "missing":
                assert answer.status_code == 404
            elif fault == "token_only":
                assert answer.status_code == 401
                with_token = client.get(url, headers={"Authorization": f"Bearer {DEMO_TOKEN}"})
                assert with_token.status_code == 200
                render_variants(with_token.content, with_token.headers["content-type"])
            else:
                assert answer.status_code == 200
                try:
                    render_variants(answer.content, answer.headers["content-type"])
                    outcomes["ok"] += 1
                    assert fault in (None, "slow")
                except ImageRejected as refused:
                    expected = {"wrong_type": "content_type", "huge": "too_many_pixels"}.get(fault, "undecodable")
                    assert fault in ("truncated", "corrupt", "wrong_type", "huge") and refused.reason == expected
            outcomes[fault or "none"] += 1
        assert server.media.served >= len(urls)
    assert set(outcomes) >= {"none", "ok", *FAULTS}


def test_a_host_past_its_rate_limit_answers_429_with_retry_after():
    market = Market(listings=5, seed=3, anchor=ANCHOR)
    host = MediaHost(rate_per_second=3, clock=lambda: 0.0)  # every request in the same second
    with SimulatorServer(market, media_host=host), httpx.Client() as client:
        url = photo_urls(market)[0]
        answers = [client.get(url) for _ in range(6)]
    limited = [a for a in answers if a.status_code == 429]
    assert [a.status_code for a in answers[:3]] == [200] * 3 and len(limited) == 3 and host.limited == 3
    assert all(a.headers["retry-after"] == "1" for a in limited)
