"""`make bench` (pipeline): a full sync of one 50k-listing feed with photos into the embedded
server, then an incremental run with 1% of the listings changed."""

import resource
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import yaml

from mls_assets.defs.io_manager import MongoIOManager
from mls_assets.defs.partitions import feed_day_key
from mls_assets.defs.resources import ClockResource, MongoResource, SparkResource
from mls_assets.lib.spark.simulator import GPS_MLS_ID, Market, SimulatorServer
from mls_assets.lib.store.client import get_client
from mls_assets_tests.conftest import free_port, start_ephemeral_server
from mls_assets_tests.pipeline.conftest import CHAIN

pytestmark = pytest.mark.bench
ANCHOR = datetime(2026, 6, 1, 12, tzinfo=UTC)
FEED = "bench.gps"


def written(result) -> int:
    total = 0
    for event in result.get_asset_materialization_events():
        meta = event.materialization.metadata
        for name in ("inserted", "updated", "photos_written"):
            if name in meta:
                total += meta[name].value
    return total


@pytest.fixture
def disk_server(tmp_path):
    """A disk-backed embedded server, as `make run` uses (an in-memory one cannot hold 50k
    listings with their photos: WiredTiger's cache is its whole storage)."""
    port = free_port()
    process = start_ephemeral_server(port, str(tmp_path / "db"), "--cache-size", "2G")
    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    yield uri
    process.terminate()
    process.wait(timeout=60)


def test_bench_full_then_incremental_sync(tmp_path, monkeypatch, disk_server):
    mongo_uri = disk_server
    mongo_db = get_client(mongo_uri)["bench"]
    market = Market(listings=57_500, seed=3, anchor=ANCHOR, mls_ids=(GPS_MLS_ID,))
    visible = len(market.states())
    with SimulatorServer(market) as server:
        path = tmp_path / "tenants.yaml"
        path.write_text(yaml.safe_dump({"tenants": [{"tenant_id": "bench", "feeds": [
            {"mls": "gps", "mls_id": GPS_MLS_ID, "base_url": server.url, "token_env": "BENCH_TOKEN_UNSET"}]}]}))  # fmt: skip
        monkeypatch.setenv("MLS_TENANTS_FILE", str(path))
        mongo = MongoResource(uri=mongo_uri, database=mongo_db.name)

        def run(instance):
            resources = {"mongo": mongo, "io_manager": MongoIOManager(mongo=mongo), "spark": SparkResource(),
                         "clock": ClockResource(fixed_now=market.now.isoformat())}  # fmt: skip
            started = time.perf_counter()
            result = dg.materialize(CHAIN, instance=instance, resources=resources,
                                    partition_key=str(feed_day_key(FEED, market.now.date().isoformat())))  # fmt: skip
            assert result.success
            return result, time.perf_counter() - started

        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("feeds", [FEED])
            full, full_s = run(instance)
            full_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            photos = mongo_db["bench_gps_photos"].estimated_document_count() + mongo_db[
                "bench_gps_expired_photos"].estimated_document_count()
            print(f"\n[bench] full sync: {visible} listings, {photos} photos in {full_s:.1f}s = "
                  f"{visible / full_s:,.0f} listings/s, {written(full):,} documents written, "
                  f"peak RSS {full_rss:,.0f} MiB")  # fmt: skip

            changed = 0
            for state in market.states()[:: 100]:  # 1% of the listings change price
                state.timeline.times.append(market._clock + 600)
                state.timeline.events.append(("price", int(state.price * 0.98)))
                changed += 1
            market._state_cache = None
            market.advance(timedelta(hours=1))
            incremental, inc_s = run(instance)
            print(f"[bench] incremental ({changed} changed = 1%): {inc_s:.1f}s, "
                  f"{written(incremental):,} documents written; full/incremental time ratio "
                  f"{full_s / inc_s:.1f}x; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")  # fmt: skip
