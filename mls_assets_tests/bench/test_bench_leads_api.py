"""`make bench` (leads API): 20,000 expired listings over two MLSs of one tenant on a
disk-backed server; a filtered page of 50 and one listing with its photos, p95 latency
over HTTP (the API in its own process, as `mls-assets api` runs it) side by side with the
same query through pymongo in this process; and the CSV of all 20,000, with the API
process's peak RSS before and after it (flat memory: the export streams)."""

import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mls_assets.lib.catalogue import EXPIRED, EXPIRED_PHOTOS, ensure_feed_collections
from mls_assets.lib.leads import query
from mls_assets.lib.leads.keys import create_key
from mls_assets.lib.store.client import get_client
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.tenants import FeedConfig, sync_configs
from mls_assets.lib.transform.fields import LEAD_FIELD_DEFAULTS
from mls_assets_tests.bench.test_bench_pipeline import Server
from mls_assets_tests.conftest import free_port

pytestmark = pytest.mark.bench
LEADS, WITH_PHOTOS, PHOTOS_EACH, ROUNDS = 20_000, 1_000, 15, 40
NOW = datetime(2026, 11, 20, tzinfo=UTC)
CITIES = ["Irvine", "Tustin", "Orange", "Anaheim", "Santa Ana", "Costa Mesa", "Newport Beach", "Fullerton"]
FEEDS = (FeedKey("bench", "gps"), FeedKey("bench", "crmls"))


def load(database) -> list[str]:
    sync_configs(database, [FeedConfig(tenant_id="bench", mls="gps", mls_id="20190211172710340762000000"),
                            FeedConfig(tenant_id="bench", mls="crmls", mls_id="20200218121507636729000000")])  # fmt: skip
    rng = random.Random(5)
    with_photos = []
    for feed in FEEDS:
        ensure_feed_collections(database, feed)
        docs, photos = [], []
        for i in range(LEADS // 2):
            key = f"{feed.mls.upper()}{i:06d}" if i % 50 else f"SHARED{i:06d}"  # 2% listed on both MLSs
            changed = NOW - timedelta(minutes=rng.randrange(90 * 24 * 60))
            docs.append({"listingKey": key, "listingId": key, "standardStatus": rng.choice(["Expired", "Canceled",
                         "Withdrawn"]), "city": rng.choice(CITIES), "modificationTimestamp": changed,
                         "statusChangeDate": changed, "expiresAt": changed + timedelta(days=90),
                         "listPrice": rng.randrange(300_000, 3_000_000, 1000), "bedsTotal": rng.randrange(1, 6),
                         "unparsedAddress": f"{i} Main St", "publicRemarks": "x" * 600, **LEAD_FIELD_DEFAULTS,
                         "leadStatus": rng.choice(["new", "new", "new", "contacted", "skipped"])})  # fmt: skip
            if i < WITH_PHOTOS // 2:
                with_photos.append(key)
                photos += [{"_id": f"{key}-{p}", "photoId": f"{key}-{p}", "listingKey": key, "order": p,
                            "uri640": f"https://cdn.example/{key}/{p}.jpg"} for p in range(PHOTOS_EACH)]  # fmt: skip
        database[EXPIRED.collection_name(feed)].insert_many(docs)
        database[EXPIRED_PHOTOS.collection_name(feed)].insert_many(photos)
    return with_photos


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] * 1000


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def test_bench_leads_api(tmp_path):
    server = Server(tmp_path / "db")
    port = free_port()
    env = {**os.environ, "MONGODB_URI": server.uri, "MONGODB_DATABASE": "bench"}
    api = None
    try:
        database = get_client(server.uri)["bench"]
        with_photos = load(database)
        token, _ = create_key(database, "bench", "bench")
        api = subprocess.Popen([sys.executable, "-m", "mls_assets.cli", "api", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120,
                              headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        deadline = time.monotonic() + 60
        while True:  # readiness: the API answers
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                assert api.poll() is None and time.monotonic() < deadline, "the API did not start"
                time.sleep(0.05)
        base = "/v1/tenants/bench/expired-listings"
        rng = random.Random(7)
        timings: dict[str, list[float]] = {name: [] for name in ("page api", "page direct", "one api", "one direct")}
        for _ in range(ROUNDS):
            where = {"leadStatus": "new", "city": rng.choice(CITIES)}
            started = time.perf_counter()
            body = client.get(base, params={**where, "limit": 50}).json()
            timings["page api"].append(time.perf_counter() - started)
            started = time.perf_counter()
            direct = query.list_leads(database, "bench", query.LeadFilter(**where), 50)
            timings["page direct"].append(time.perf_counter() - started)
            assert [lead["listingKey"] for lead in body["leads"]] == [lead["listingKey"] for lead in direct["leads"]]
            key = rng.choice(with_photos)
            started = time.perf_counter()
            one = client.get(f"{base}/{key}").json()
            timings["one api"].append(time.perf_counter() - started)
            started = time.perf_counter()
            lead = query.find_lead(database, "bench", key)
            photos = query.lead_photos(database, "bench", lead)
            timings["one direct"].append(time.perf_counter() - started)
            assert len(one["photos"]) == len(photos) == PHOTOS_EACH
        before = peak_rss_mib(api.pid)
        started = time.perf_counter()
        rows, size = 0, 0
        with client.stream("GET", base + ".csv") as response:
            for line in response.iter_lines():
                rows += 1
                size += len(line)
        csv_seconds = time.perf_counter() - started
        after = peak_rss_mib(api.pid)
        expected = LEADS - LEADS // 2 // 50  # the shared listings count once
        assert rows - 1 == expected
        print(f"\n[bench] leads API, {LEADS:,} expired listings over 2 MLSs ({expected:,} leads), {ROUNDS} rounds")
        print(f"{'query':<28}{'p95 API ms':>12}{'p95 direct ms':>15}{'ratio':>8}")
        for name, label in (("page", "filtered page of 50"), ("one", "one listing + photos")):
            api_p95, direct_p95 = p95(timings[f"{name} api"]), p95(timings[f"{name} direct"])
            print(f"{label:<28}{api_p95:>12.1f}{direct_p95:>15.1f}{api_p95 / direct_p95:>7.2f}x")
        print(f"CSV of all {rows - 1:,} leads: {csv_seconds:.1f} s, {size / 2**20:.1f} MiB; API peak RSS "
              f"{before:.0f} MiB before, {after:.0f} MiB after (+{after - before:.0f} MiB)")
        print("[bench] goal: the API within 1.5x of the direct query; the CSV in flat memory")
    finally:
        if api is not None:
            api.terminate()
            api.wait(timeout=30)
        server.stop()
