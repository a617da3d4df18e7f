"""The simulated market evolves deterministically as its clock advances."""

from collections import Counter
from datetime import timedelta

import pytest

from mls_assets.simulator import Market
from mls_assets_tests.support.sources import ANCHOR

ACTIVE = {"Active", "Coming Soon"}


def snapshot(market):
    return {s.timeline.key: s for s in market.states()}


def test_same_seed_same_market_and_records():
    a, b = Market(listings=50, seed=5, anchor=ANCHOR), Market(listings=50, seed=5, anchor=ANCHOR)
    assert [a.record(s, True) for s in a.states()] == [b.record(s, True) for s in b.states()]
    c = Market(listings=50, seed=6, anchor=ANCHOR)
    assert a.keys() != c.keys()


def test_advancing_the_clock_produces_the_expected_transitions():
    market = Market(listings=400, seed=2, anchor=ANCHOR)
    before = snapshot(market)
    market.advance(timedelta(days=30))
    after = snapshot(market)

    assert set(after) - set(before), "new listings appear"
    assert set(before) - set(after), "deleted listings vanish"
    moves = Counter(
        (before[k].status, after[k].status) for k in set(before) & set(after) if before[k].status != after[k].status
    )
    assert moves[("Active", "Pending")] or moves[("Active", "Active Under Contract")]
    assert moves[("Pending", "Closed")] + moves[("Active Under Contract", "Closed")] > 0
    assert sum(moves[(a, b)] for a, b in moves if a == "Active" and b in ("Expired", "Canceled", "Withdrawn")) > 0
    relisted = [
        k
        for k in set(before) & set(after)
        if before[k].status in ("Expired", "Canceled", "Withdrawn") and after[k].status == "Active"
    ]
    assert relisted, "some expired listings are relisted"
    for key in set(before) & set(after):
        assert after[key].modified_at >= before[key].modified_at
        if before[key].status != after[key].status:
            assert after[key].modified_at > before[key].modified_at
            assert after[key].status_changed_at > before[key].status_changed_at
    changed_photos = [k for k in set(before) & set(after) if after[k].photo_version > before[k].photo_version]
    assert all(after[k].photos_changed_at > before[k].photos_changed_at for k in changed_photos)
    assert changed_photos


def test_going_back_in_time_restores_the_earlier_market():
    market = Market(listings=100, seed=9, anchor=ANCHOR)
    first = [market.record(s, False) for s in market.states()]
    market.advance(timedelta(days=12))
    market.set_clock(ANCHOR)
    assert [market.record(s, False) for s in market.states()] == first


def test_closed_listings_carry_close_price_and_date():
    market = Market(listings=200, seed=4, anchor=ANCHOR)
    closed = [s for s in market.states() if s.status == "Closed"]
    assert closed
    fields = market.record(closed[0], False)["StandardFields"]
    assert fields["ClosePrice"] > 0 and fields["CloseDate"] <= ANCHOR.date().isoformat()


def test_a_listing_changed_now_shows_the_change_stamped_now_over_http():
    """What the freshness benchmark does to a live source: an agent's edit, seen at once."""
    import httpx

    from mls_assets.lib.local_source import admin_url
    from mls_assets.simulator import SimulatorServer

    market = Market(listings=30, seed=4, anchor=ANCHOR)
    active = next(s for s in market.states() if s.status == "Active")
    with SimulatorServer(market) as server:
        admin = admin_url(server.url)
        answer = httpx.post(
            f"{admin}/changes", json={"listingKey": active.timeline.key, "status": "Expired", "price": 123000}
        ).json()
        bad = httpx.post(f"{admin}/changes", json={"listingKey": "nope", "status": "Expired"})
    after = snapshot(market)[active.timeline.key]
    assert (after.status, after.price, after.modified_at) == ("Expired", 123000, int(ANCHOR.timestamp()))
    assert answer["modificationTimestamp"] == ANCHOR.isoformat() and bad.status_code == 400


def test_a_listing_not_on_the_market_yet_cannot_be_changed():
    """An edit before its listing would make the edit its first event (no listing price):
    refused with a reason, and the market still answers for every listing."""
    market = Market(listings=60, seed=4, anchor=ANCHOR)
    listed = {s.timeline.key for s in market.states()}
    future = next(t.key for t in market.timelines if t.key not in listed and t.times[0] > market.now.timestamp())
    with pytest.raises(ValueError, match="not on the market yet"):
        market.change(future, price=123_000)
    market.advance(timedelta(days=31))
    assert all(market.record(s, True) for s in market.states())
