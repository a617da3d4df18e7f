"""`make bench` (photos): photos per second on one core, side by side on the same images.

- floor: Pillow by hand, what one would write: open, decode at a reduced scale, resize to the
  three boxes, save WebP at quality 90 (no checks, no orientation, metadata as Pillow keeps it);
- `render_variants`: the same with the checks (type, bytes, pixels before decoding),
  EXIF orientation, metadata stripped;
- the whole path: download from the simulator's media host, render, store in a local folder.

Images: the simulator's `-large` photos (2048x1536, one in seven portrait). `BENCH_MEDIA_PHOTOS`
sets how many (default 150). Issue 35's target is checked by the media asset's bench, once it
exists; this one measures the pieces."""

import io
import os
import time
from datetime import UTC, datetime

import httpx
import pytest
from PIL import Image

from mls_assets.lib.media.download import PhotoDownloader
from mls_assets.lib.media.images import VARIANTS, render_variants
from mls_assets.lib.media.storage import media_key, storage_from_settings
from mls_assets.lib.settings import Settings
from mls_assets.lib.store.naming import FeedKey
from mls_assets.simulator import Market, SimulatorServer
from mls_assets.simulator.media import MediaHost

pytestmark = pytest.mark.bench
PHOTOS = int(os.environ.get("BENCH_MEDIA_PHOTOS", "150"))
ANCHOR = datetime(2026, 11, 20, tzinfo=UTC)


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


def test_bench_media(tmp_path):
    market = Market(listings=max(20, PHOTOS // 10), seed=9, anchor=ANCHOR)
    feed = FeedKey("bench", "gps")
    with SimulatorServer(market, media_host=MediaHost(rate_per_second=10_000)):
        urls = [p["UriLarge"] for s in market.states() for p in market.photos(s)][:PHOTOS]
        with httpx.Client() as client:
            images = [client.get(url).content for url in urls]  # the server renders each once here
        storage = storage_from_settings(Settings(media_dir=str(tmp_path / "media")))
        sizes: list[int] = []

        def ours(content: bytes) -> None:
            sizes.append(sum(len(r.data) for r in render_variants(content, "image/jpeg").values()))

        def whole(url: str) -> None:
            download = downloader.fetch(url)
            for name, rendered in render_variants(download.content, download.content_type).items():
                storage.put(media_key(feed, url, url, "v1", name), rendered.data)

        floor = cpu_rate(by_hand, images)
        mine = cpu_rate(ours, images)
        with PhotoDownloader() as downloader:
            path = cpu_rate(whole, urls)
    print(
        f"\n[bench] photos: {len(images)} simulator photos of 2048x1536, mean {sum(map(len, images)) / len(images) / 1e3:.0f} kB"
    )
    print(f"  floor (Pillow by hand):          {floor[0]:6.1f} photos per CPU second ({floor[1]:.1f} per wall second)")
    print(f"  render_variants:                 {mine[0]:6.1f} photos per CPU second ({mine[1]:.1f} per wall second)")
    print(
        f"  download + render + store:       {path[0]:6.1f} photos per CPU second of this process ({path[1]:.1f} per wall second)"
    )
    print(
        f"  ours / floor: {floor[0] / mine[0]:.2f}x the CPU; stored {sum(sizes) / len(sizes) / 1e3:.0f} kB a photo (three variants)"
    )
    assert len(sizes) == len(images) and all(size > 0 for size in sizes)
