"""`make bench` (photos): photos per CPU second (per core), side by side on the same images.

- floor: Pillow by hand, what one would write: open, decode at a reduced scale, resize to the
  three boxes, save WebP at quality 90 (no checks, no orientation, metadata as Pillow keeps it);
- `render_variants`: the same with the checks (type, bytes, pixels before decoding), EXIF
  orientation, metadata stripped;
- `photo_media`, the asset: one feed synced by the chain, then its media run as Dagster runs
  it (download from the simulator's media host, render, store in a local folder, state and
  photo documents written), then a run with nothing changed and a run after 1% of the
  listings changed their photos.

Images: the simulator's `-large` photos (2048x1536, one in seven portrait, ~450 kB), served
from its cache (rendered before the clock starts: the server's CPU is not ours).
`BENCH_MEDIA_LISTINGS` sets the feed's listings (default 100, at most 2 photos each)."""

import io
import os
import resource
import time
from datetime import timedelta

import dagster as dg
import httpx
import pytest
from PIL import Image

from mls_assets.lib.media.images import VARIANTS, render_variants
from mls_assets.simulator import GPS_MLS_ID, Market, SimulatorServer
from mls_assets.simulator.media import MediaHost
from mls_assets_tests.support.chain import ANCHOR
from mls_assets_tests.support.media import FEED, MediaWorld, feed_on, media_figures

pytestmark = pytest.mark.bench
LISTINGS = int(os.environ.get("BENCH_MEDIA_LISTINGS", "100"))


def by_hand(content: bytes) -> int:
    image = Image.open(io.BytesIO(content))
    image.draft("RGB", (1920, 1440))
    stored = 0
    for variant in VARIANTS:
        copy = image.copy()
        copy.thumbnail((variant.width, variant.height))
        out = io.BytesIO()
        copy.save(out, "WEBP", quality=90)
        stored += out.tell()
    return stored


def cpu_rate(work, items) -> tuple[float, float]:
    """Photos per CPU second (this process, one thread) and per wall second."""
    cpu, wall = time.process_time(), time.perf_counter()
    for item in items:
        work(item)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return len(items) / cpu, len(items) / wall


def timed(work):
    cpu, wall = time.process_time(), time.perf_counter()
    result = work()
    return result, time.process_time() - cpu, time.perf_counter() - wall


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_bench_media(mongo_db, mongo_uri, tmp_path, monkeypatch):
    market = Market(listings=LISTINGS, seed=9, anchor=ANCHOR, mls_ids=(GPS_MLS_ID,), bad_record_rate=0, max_photos=2)
    host = MediaHost(rate_per_second=10_000, cache_size=100_000)
    with SimulatorServer(market, media_host=host) as server:
        feed_on(mongo_db, server, tmp_path, monkeypatch)
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("feeds", [FEED])
            world = MediaWorld(market, server, mongo_db, mongo_uri, instance, {"folder": str(tmp_path / "media")})
            world.sync()
            photos = world.photos()
            urls = [p["uriLarge"] for p in photos]
            with httpx.Client() as client:
                images = [client.get(url).content for url in urls]  # rendered by the server, cached, before timing
            floor = cpu_rate(by_hand, images)
            ours = cpu_rate(lambda content: render_variants(content, "image/jpeg"), images)
            rss_before = peak_rss_mib()
            full, full_cpu, full_wall = timed(lambda: media_figures(world.rehost()))
            rss_full = peak_rss_mib()
            served = host.served
            unchanged, unchanged_cpu, unchanged_wall = timed(lambda: media_figures(world.rehost()))
            asked_unchanged = host.served - served
            listings = sorted({p["listingKey"] for p in photos})
            changed = listings[: max(1, len(listings) // 100)]
            market.advance(timedelta(minutes=5))
            for key in changed:
                market.change(key, photos=True)
            world.sync()
            one_percent, inc_cpu, inc_wall = timed(lambda: media_figures(world.rehost()))
            stored_bytes = sum(p.stat().st_size for p in (tmp_path / "media").rglob("*.webp"))
            objects = sum(1 for _ in (tmp_path / "media").rglob("*.webp"))
            referenced = world.referenced_keys()
    per_core = full["stored"] / full_cpu
    print(
        f"\n[bench] photos: one feed, {len(listings)} listings with photos, {len(images)} photos of 2048x1536, "
        f"mean {sum(map(len, images)) / len(images) / 1e3:.0f} kB"
    )
    print(f"  floor (Pillow by hand):   {floor[0]:5.2f} photos per CPU second")
    print(f"  render_variants:          {ours[0]:5.2f} photos per CPU second ({ours[0] / floor[0]:.0%} of the floor)")
    print(
        f"  photo_media, full:        {per_core:5.2f} photos per CPU second ({per_core / floor[0]:.0%} of the floor); "
        f"{full['stored']} photos in {full_wall:.1f} s wall ({full['stored'] / full_wall:.2f} a second on "
        f"{os.cpu_count()} cores), {full_cpu:.1f} s CPU"
    )
    print(
        f"  nothing changed:          {unchanged['downloaded']} downloaded, {asked_unchanged} requests to the media "
        f"host, {unchanged['photo_documents_updated']} documents written, {unchanged_wall:.2f} s wall"
    )
    print(
        f"  1% of listings changed:   {len(changed)} listings, {one_percent['downloaded']} downloaded, "
        f"{one_percent['objects_deleted']} objects removed, {inc_wall:.2f} s wall "
        f"({inc_wall / full_wall:.1%} of full), {inc_cpu:.2f} s CPU"
    )
    print(
        f"  stored: {objects} objects, {stored_bytes / 1e6:.1f} MB, {stored_bytes / len(listings) / 1e3:.0f} kB a "
        f"listing, {stored_bytes / max(1, full['stored']) / 1e3:.0f} kB a photo (three variants)"
    )
    print(f"  peak RSS of this process: {rss_before:.0f} MiB before the media run, {rss_full:.0f} MiB after")
    assert full["stored"] == len(photos) and full["failed"] == 0
    assert unchanged["downloaded"] == 0 and asked_unchanged == 0
    assert 0 < one_percent["downloaded"] <= 2 * len(changed)
    assert objects == len(referenced)
