"""`photo_media` end to end: the chain writes a feed's photos from the simulator, the media
asset downloads them from the simulator's media host, renders the WebP variants and stores
them in S3 over its real API (moto on loopback); the objects are counted through S3 itself
against the photo documents."""

from datetime import timedelta

import dagster as dg
import pytest

from mls_assets.defs.media.assets import MEDIA_BACKLOG
from mls_assets.lib.catalogue import PHOTO_MEDIA, PHOTOS
from mls_assets.lib.media.download import PhotoDownloader, host_allowed
from mls_assets.lib.media.sync import mark_gone
from mls_assets.lib.replication.sweep import remove_listings
from mls_assets.lib.tenants import feed_config
from mls_assets.simulator import GPS_MLS_ID, Market, SimulatorServer
from mls_assets.simulator.media import MediaHost
from mls_assets_tests.support.chain import ANCHOR
from mls_assets_tests.support.media import FEED, KEY, MediaWorld, feed_on, media_figures, s3_options

VARIANTS = {"large", "medium", "thumbnail"}
FAULT_REASONS = {"missing", "undecodable", "content_type", "too_many_pixels", "timeout", "unauthorized"}


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.fixture
def world(request, mongo_db, mongo_uri, s3, tmp_path, monkeypatch):
    fault_rate = getattr(request, "param", 0.0)
    market = Market(listings=24, seed=11, anchor=ANCHOR, mls_ids=(GPS_MLS_ID,), bad_record_rate=0, max_photos=3)
    host = MediaHost(fault_rate=fault_rate, max_side=320, slow_seconds=0.01)
    with SimulatorServer(market, media_host=host) as server:
        feed_on(mongo_db, server, tmp_path, monkeypatch)
        with dg.DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions("feeds", [FEED])
            yield MediaWorld(market, server, mongo_db, mongo_uri, instance, s3_options(s3))


def test_every_photo_gets_three_variants_in_s3_and_a_rerun_downloads_nothing(world):
    world.sync()
    photos = world.photos()
    assert len(photos) > 20
    result = world.rehost()
    figures = media_figures(result)
    assert figures["stored"] == figures["downloaded"] == len(photos) and figures["failed"] == 0
    for photo in world.database[PHOTOS.collection_name(KEY)].find():
        media = photo["media"]
        assert media["status"] == "ok" and set(media["variants"]) == VARIANTS, photo["_id"]
        assert all(v["url"].startswith("https://cdn.example.test/m/jpsrealtor-") for v in media["variants"].values())
        assert photo["uriLarge"].startswith(world.server.root_url)  # the source's URL stays as the fallback
    assert world.stored() == world.referenced_keys() and len(world.stored()) >= len(photos)
    assert checks(result)["media_coverage"].passed and checks(result)["media_failures"].passed

    served = world.server.media.served
    again = media_figures(world.rehost())
    assert (again["downloaded"], again["stored"], again["photo_documents_updated"]) == (0, 0, 0)
    assert world.server.media.served == served  # not one request to the media host


def test_replaced_deleted_and_expired_photos_leave_no_object_behind(world):
    world.sync()
    world.rehost()
    listings = sorted({p["listingKey"] for p in world.database[PHOTOS.collection_name(KEY)].find()})
    replaced, deleted = listings[0], listings[1]
    before = {p["_id"] for p in world.photos() if p["listingKey"] == replaced}
    world.market.advance(timedelta(minutes=5))
    world.market.change(replaced, photos=True)  # a new photo set: new ids, new URLs
    world.sync()
    remove_listings(
        world.database, feed_config(world.database, FEED), {deleted: world.market.now}, world.market.now, "t"
    )
    figures = media_figures(world.rehost())
    after = {p["_id"] for p in world.photos() if p["listingKey"] == replaced}
    assert after and not before & after
    assert figures["objects_deleted"] >= 2 * (len(before) + 1)  # 320 px photos: large is medium, stored once
    assert not [s for s in world.states().values() if s["listingKey"] == deleted or s["_id"] in before]
    assert world.stored() == world.referenced_keys()
    assert {s["_id"] for s in world.states().values()} == {p["_id"] for p in world.photos()}

    # A listing deleted and relisted before the next media run: its media are made again.
    relisted = listings[2]
    mark_gone(world.database, KEY, [relisted])
    figures = media_figures(world.rehost())
    mine = [s for s in world.states().values() if s["listingKey"] == relisted]
    assert mine and figures["downloaded"] == len(mine) and all(s["status"] == "ok" and not s.get("gone") for s in mine)
    assert world.stored() == world.referenced_keys()

    # The TTL removes an expired listing's photo documents at its expiresAt: its media go too.
    expired = world.database[PHOTOS.collection_name(KEY)].find_one({})
    past = world.market.now - timedelta(minutes=1)
    world.database[PHOTO_MEDIA.collection_name(KEY)].update_many(
        {"listingKey": expired["listingKey"]}, {"$set": {"expiresAt": past}}
    )
    world.database[PHOTOS.collection_name(KEY)].delete_many({"listingKey": expired["listingKey"]})
    world.rehost()
    assert not [s for s in world.states().values() if s["listingKey"] == expired["listingKey"]]
    assert world.stored() == world.referenced_keys()


@pytest.mark.parametrize("world", [0.5], indirect=True)
def test_hostile_images_fail_alone_with_reasons_and_are_retried_with_backoff(world):
    world.sync()
    result = world.rehost()
    figures = media_figures(result)
    states = world.states()
    failed = [s for s in states.values() if s["status"] == "failed"]
    assert result.success and failed and figures["stored"] > 0
    assert {s["reason"] for s in failed} <= FAULT_REASONS and len({s["reason"] for s in failed}) >= 3
    assert all(s["attempts"] == 1 and s["nextAttemptAt"] is not None for s in failed)
    for photo in world.photos():  # a failed photo's document says so, and keeps the source URL
        assert photo["media"]["status"] == states[photo["_id"]]["status"]
    coverage, failures = checks(result)["media_coverage"], checks(result)["media_failures"]
    assert not failures.passed and failures.severity == dg.AssetCheckSeverity.WARN
    assert failures.metadata["feeds_at_fault"].value[FEED]["offending"] == len(failed)
    assert (coverage.passed, coverage.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert world.stored() == world.referenced_keys()

    assert media_figures(world.rehost())["downloaded"] == 0  # not due yet: nothing asked again
    later = media_figures(world.rehost(now=world.market.now + timedelta(minutes=6)))
    assert later["listings_looked_at"] >= 1
    assert {s["attempts"] for s in world.states().values() if s["status"] == "failed"} == {2}
    backlog = world.database[MEDIA_BACKLOG].find_one({"_id": FEED})
    assert backlog["dueAt"].replace(tzinfo=None) > (world.market.now + timedelta(minutes=6)).replace(tzinfo=None)


def test_a_run_past_its_budget_leaves_the_rest_pending_and_the_next_run_finishes(world):
    world.sync()
    world.media_options["photos_per_run"] = 10
    first = media_figures(world.rehost())
    assert first["stored"] == 10 and first["left_pending"] == len(world.photos()) - 10
    assert world.database[MEDIA_BACKLOG].find_one({"_id": FEED}) is not None
    for _ in range(10):
        if not media_figures(world.rehost())["left_pending"]:
            break
    assert all(s["status"] == "ok" for s in world.states().values())
    assert len(world.states()) == len(world.photos())
    assert world.database[MEDIA_BACKLOG].find_one({"_id": FEED}) is None


def test_in_a_shared_media_run_a_feed_that_fails_costs_only_itself(world):
    """`zz.gps` is registered but has no config: its part fails, FEED's photos are re-hosted and
    its changes committed; the broken feed's are kept for the next run."""
    world.sync()
    world.instance.add_dynamic_partitions("feeds", ["zz.gps"])
    result = world.rehost(through="zz.gps")
    figures = media_figures(result)
    assert figures["stored"] == len(world.photos()) and list(figures["failed_feeds"]) == ["zz.gps"]
    failures = checks(result)["media_failures"]
    assert not failures.passed and list(failures.metadata["feeds_at_fault"].value) == ["zz.gps"]
    assert world.database[MEDIA_BACKLOG].find_one({"_id": "zz.gps"}) is not None  # asked again later
    assert media_figures(world.rehost())["listings_looked_at"] == 0  # FEED's changes were committed


def test_a_photo_url_off_the_allowed_hosts_is_refused_before_any_request():
    for host in ("10.0.0.8", "169.254.169.254", "192.168.1.1", "::1", "localhost", "127.0.0.1", "0.0.0.0"):
        assert not host_allowed(host, local=False), host
    assert host_allowed("cdn.photos.sparkplatform.com", local=False) and host_allowed("8.8.8.8", local=False)
    assert host_allowed("127.0.0.1", local=True) and not host_allowed("cdn.photos.sparkplatform.com", local=True)
    with PhotoDownloader(local=True) as downloader:  # a request would fail: none is made
        refused = downloader.fetch("https://cdn.photos.sparkplatform.com/a.jpg")
    assert (refused.ok, refused.reason, downloader.requests) == (False, "refused_host", 0)
