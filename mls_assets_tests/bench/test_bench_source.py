"""Benchmarks of the source side (`make bench`): simulator, client under faults, transforms.

Figures are printed; compare them as ratios within one run, not across machines.
"""

import time
from datetime import UTC, datetime

import pytest

from mls_assets.lib.sources.spark.client import RetryPolicy, SparkClient
from mls_assets.lib.tenants import FeedConfig
from mls_assets.lib.transform import transform_record
from mls_assets.simulator import DEMO_TOKEN, GPS_MLS_ID, Market, SimulatorServer
from mls_assets.simulator.faults import FaultPlan

pytestmark = pytest.mark.bench
ANCHOR = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def big_market():
    started = time.perf_counter()
    market = Market(listings=30_000, seed=1, anchor=ANCHOR)
    visible = len(market.states())
    print(f"\n[bench] market: {visible} visible listings built in {time.perf_counter() - started:.1f}s")
    return market


def pull(url, *, faults=False, sleeps=None):
    client = SparkClient(
        url,
        DEMO_TOKEN,
        retry=RetryPolicy(attempts=10, floor=0.01, cap=0.1, jitter=0.01),
        timeout=5,
        sleep=(sleeps.append if sleeps is not None else time.sleep),
    )
    started = time.perf_counter()
    keys = [r["Id"] for r in client.listings(limit=1000, expand=["Photos"])]
    return keys, time.perf_counter() - started, client.stats


def test_bench_simulator_throughput_and_retries_under_faults(big_market):
    with SimulatorServer(big_market) as server:
        keys, seconds, stats = pull(server.url)
        assert len(keys) == len(set(keys)) == len(big_market.states())
        rate = len(keys) / seconds
        print(
            f"[bench] simulator+client, photos expanded: {len(keys)} listings in {seconds:.2f}s "
            f"= {rate:,.0f} listings/s over {stats.requests} requests"
        )

        server.set_faults(
            FaultPlan(
                rate=0.10, seed=5, delay_seconds=6.0, kinds=("429", "503", "500", "success_false", "truncated", "reset")
            )
        )
        faulty_keys, faulty_seconds, faulty_stats = pull(server.url, faults=True, sleeps=[])
        assert faulty_keys == keys
        print(
            f"[bench] 10% fault rate: {faulty_stats.retries} retries for {faulty_stats.requests} requests "
            f"({faulty_stats.retries / faulty_stats.requests:.1%}), errors {faulty_stats.errors_by_kind}, "
            f"0 lost, 0 repeated; time ratio faulty/clean = {faulty_seconds / seconds:.2f}"
        )
        assert rate > 1000


@pytest.mark.parametrize("with_photos", [True, False], ids=["with-photos", "no-photos"])
def test_bench_transform_listings_per_second_per_core(big_market, with_photos):
    records = [big_market.record(s, with_photos) for s in big_market.states()[:10_000]]
    photos = sum(len(r["StandardFields"].get("Photos", [])) for r in records)
    feed = FeedConfig(tenant_id="jpsrealtor", mls="gps", mls_id=GPS_MLS_ID)
    now = datetime(2026, 11, 20, tzinfo=UTC)
    started = time.process_time()
    results = [transform_record(r, feed, now) for r in records]
    cpu = time.process_time() - started
    rejects = sum(r.reject is not None for r in results)
    print(
        f"[bench] clean+flatten+hash+validate: {len(records) / cpu:,.0f} listings/s per core "
        f"(CPU time, {len(records)} listings, {photos / len(records):.1f} photos each, {rejects} rejects)"
    )
    assert rejects < len(records) * 0.01
