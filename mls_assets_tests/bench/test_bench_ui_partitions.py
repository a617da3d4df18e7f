"""`make bench` (the fleet in a browser): the partitions page of `raw_listings` in headless
Chromium at 200, 1,000 and 2,000 feeds, each on a fresh local instance with every feed
registered and two days of each materialized, served by `dagster-webserver` on loopback.

It measures, with Playwright driving the machine's Chromium, the seconds from asking for the
page to the page showing the partition count (days x feeds) and the materialized count, the
page a data engineer opens first (the browser's own start is reported apart). Skipped where
Chromium is not installed (`apt-get install chromium`). Target (issue 31): <= 3 s at 2,000
feeds, far below 10x the time at 200."""

import os
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


def page_seconds(url: str, partitions: int, materialized: int) -> tuple[float, float]:
    """Seconds to start the browser, and seconds from asking for the page to the page showing
    the partition count and the materialized count (what a data engineer waits for), in
    headless Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        started = time.monotonic()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1100})
            launched = time.monotonic()
            page.goto(url, wait_until="commit")
            page.wait_for_function(  # the UI writes the partition count with commas, the materialized without
                "([shown, done]) => document.body.innerText.includes(shown) && document.body.innerText.includes(done)",
                arg=[f"{partitions:,} Partitions Selected", f"Materialized ({materialized})"],
                timeout=120_000,
            )
            return launched - started, time.monotonic() - launched
        finally:
            browser.close()


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
            days = len(day_partitions.get_partition_keys())
            url = f"http://127.0.0.1:{port}/assets/raw_listings?view=partitions"
            launch, seconds = page_seconds(url, days * size, len(DAYS) * size)
        finally:
            web.terminate()
            web.wait(timeout=60)
        rows[size] = (seconds, days * size, launch)
    print("\n[bench] the partitions page of raw_listings in headless Chromium: seconds from asking for the page")
    print("  to its partition and materialized counts shown (the browser's own start apart)")
    for size, (seconds, partitions, launch) in rows.items():
        print(f"  {size:>5} feeds: {seconds:5.1f} s, {partitions:,} partitions (browser start {launch:.1f} s)")
    if len(rows) > 1:
        first, last = SIZES[0], SIZES[-1]
        print(f"  growth {first} -> {last} feeds: {rows[last][0] / rows[first][0]:.2f}x the time")
