"""`make bench` (the fleet in a browser): the partitions page of `raw_listings` in headless
Chromium at 200, 1,000 and 2,000 feeds, each on a fresh local instance with every feed
registered and two days of each materialized, served by `dagster-webserver` on loopback.

It measures the seconds from starting the browser to a page whose DOM shows the partition
count (days x feeds) and the materialized and missing counts, the page a data engineer opens
first. Skipped where Chromium is not installed (`apt-get install chromium`). Aim: a few
seconds at 2,000 feeds, far below 10x the time at 200."""

import os
import re
import shutil
import subprocess
import sys
import time

import dagster as dg
import httpx
import pytest

from mls_assets.defs.partitions import day_partitions, feed_day_key
from mls_assets.lib.paths import project_root
from mls_assets_tests.support.servers import free_port

pytestmark = pytest.mark.bench
SIZES = tuple(int(n) for n in os.environ.get("BENCH_UI_SIZES", "200,1000,2000").split(","))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DAYS = ("2026-12-04", "2026-12-05")


def register(home, feeds: list[str]) -> None:
    """The feeds, and two days of each materialized (as runs would report them)."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("feeds", feeds)
        for day in DAYS:
            for feed in feeds:
                instance.report_runless_asset_event(
                    dg.AssetMaterialization(asset_key="raw_listings", partition=str(feed_day_key(feed, day)))
                )


def page_seconds(url: str, profile) -> tuple[float, str]:
    """Seconds until headless Chromium has the page's DOM, and the DOM."""
    started = time.monotonic()
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1600,1100",
            "--virtual-time-budget=60000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    return time.monotonic() - started, dom


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_bench_ui_partitions_page(tmp_path):
    rows = {}
    for size in SIZES:
        home = tmp_path / f"home{size}"
        home.mkdir()
        shutil.copy(project_root() / "instance" / "dagster.yaml", home / "dagster.yaml")
        feeds = [f"agent{n:04d}.mls{n % 20:02d}" for n in range(size)]
        register(home, feeds)
        port = free_port()
        web = subprocess.Popen(
            [sys.executable, "-m", "dagster_webserver", "-w", str(project_root() / "workspace.yaml")]
            + ["-h", "127.0.0.1", "-p", str(port)],
            env={**os.environ, "DAGSTER_HOME": str(home)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while True:  # readiness: the webserver answers
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert web.poll() is None and time.monotonic() < deadline, "the webserver did not start"
                time.sleep(0.2)
            seconds, dom = page_seconds(
                f"http://127.0.0.1:{port}/assets/raw_listings?view=partitions", tmp_path / f"profile{size}"
            )
        finally:
            web.terminate()
            web.wait(timeout=60)
        days = len(day_partitions.get_partition_keys())
        shown = re.search(r"([\d,]+) Partitions Selected", dom)
        assert shown and int(shown.group(1).replace(",", "")) == days * size, "the page shows every partition"
        assert f"Materialized ({len(DAYS) * size})" in dom
        rows[size] = (seconds, days * size)
    blank, _ = page_seconds("about:blank", tmp_path / "profile-blank")
    print("\n[bench] the partitions page of raw_listings in headless Chromium (seconds to its DOM, partitions)")
    print(f"  floor: an empty page (the browser's own start): {blank:.1f} s")
    for size, (seconds, partitions) in rows.items():
        print(f"  {size:>5} feeds: {seconds:5.1f} s, {partitions:,} partitions")
    if len(rows) > 1:
        first, last = SIZES[0], SIZES[-1]
        print(f"  growth {first} -> {last} feeds: {rows[last][0] / rows[first][0]:.2f}x the time")
