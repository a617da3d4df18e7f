"""`make bench` (tenants at scale): 1,000 tenants x 2 feeds. Loading and validating their
configs (file and MongoDB), the feed discovery sensor's tick (steady, and after one tenant
is onboarded by command), `feeds status` of one feed, and what 2,000 feeds do to Dagster:
the partition count (feed x day) and the GraphQL query the UI sends for an asset's
partition status. Aims: a tick < 10 s, `feeds status` < 1 s."""

import hashlib
import json
import time
from datetime import UTC, datetime

import dagster as dg
import pytest
import yaml
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster_graphql.test.utils import execute_dagster_graphql

from mls_assets.defs.feeds.sensors import feed_discovery_sensor
from mls_assets.defs.partitions import feed_day_partitions
from mls_assets.defs.resources import MongoResource
from mls_assets.lib import tenant_admin
from mls_assets.lib.paths import project_root
from mls_assets.lib.store.client import get_client
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.tenants import FeedConfig, parse_tenants, read_feeds, sync_configs
from mls_assets.operate.status import feed_status
from mls_assets.simulator import CRMLS_MLS_ID, GPS_MLS_ID
from mls_assets_tests.bench.test_bench_pipeline import Server

pytestmark = pytest.mark.bench
TENANTS = 1000
PARTITION_STATUS = """
query PartitionStatus($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode {
      partitionKeysByDimension { name partitionKeys }
      assetPartitionStatuses {
        __typename
        ... on MultiPartitionStatuses { primaryDimensionName ranges { primaryDimStartKey primaryDimEndKey } }
      }
    }
  }
}"""


def timed(action):
    started = time.perf_counter()
    value = action()
    return value, time.perf_counter() - started


def test_bench_tenants_at_scale(tmp_path, monkeypatch):
    document = {
        "tenants": [
            {
                "tenant_id": f"agent{n:04d}",
                "feeds": [
                    {"mls": "gps", "mls_id": GPS_MLS_ID, "sync_schedule": "0 2 * * *", "max_listings": 50000},
                    {"mls": "crmls", "mls_id": CRMLS_MLS_ID, "sync_schedule": "0 3 * * *"},
                ],
            }
            for n in range(TENANTS)
        ]
    }
    text = yaml.safe_dump(document).encode()
    path = tmp_path / "tenants.yaml"
    path.write_bytes(text)
    monkeypatch.setenv("MLS_TENANTS_FILE", str(path))
    monkeypatch.setenv("MLS_TENANTS_FILE_MAX_BYTES", str(10 * len(text)))
    server = Server(tmp_path / "db")
    rows = []
    try:
        database = get_client(server.uri)["bench"]
        loaded, seconds = timed(lambda: parse_tenants(text))
        feeds = loaded.feeds
        assert len(feeds) == 2 * TENANTS and not loaded.problems
        rows.append(("parse + validate the tenants file", seconds))
        _, seconds = timed(lambda: sync_configs(database, feeds))
        rows.append(("write them to agent_mls_configs", seconds))
        read, seconds = timed(lambda: read_feeds(database))
        assert len(read.feeds) == 2 * TENANTS
        rows.append(("read + validate them from MongoDB", seconds))

        (tmp_path / "home").mkdir()
        with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
            keys = [str(f.key) for f in feeds]
            _, seconds = timed(lambda: instance.add_dynamic_partitions("feeds", keys))
            rows.append(("register 2,000 feed partitions", seconds))
            mongo = MongoResource(uri=server.uri, database="bench")
            cursor = json.dumps({"hash": hashlib.sha256(text).hexdigest(), "error": None})
            context = dg.build_sensor_context(instance=instance, resources={"mongo": mongo}, cursor=cursor)
            result, seconds = timed(lambda: feed_discovery_sensor(context))
            assert not result.dynamic_partitions_requests
            rows.append(("discovery sensor tick, nothing changed", seconds))
            new = FeedConfig(tenant_id="latecomer", mls="gps", mls_id=GPS_MLS_ID)
            _, onboard = timed(lambda: tenant_admin.add_feed(database, new))
            rows.append(("onboard one feed by command (config + collections + indexes)", onboard))
            context = dg.build_sensor_context(instance=instance, resources={"mongo": mongo}, cursor=cursor)
            result, seconds = timed(lambda: feed_discovery_sensor(context))
            assert [r.partition_keys for r in result.dynamic_partitions_requests] == [["latecomer.gps"]]
            rows.append(("discovery sensor tick, one feed added", seconds))
            status, seconds = timed(lambda: feed_status(instance, database, FeedKey.parse("agent0500.gps")))
            assert status["feed"] == "agent0500.gps"
            rows.append(("feeds status of one feed", seconds))

            now = datetime.now(UTC)
            partitions = len(
                feed_day_partitions.get_partition_keys(current_time=now, dynamic_partitions_store=instance)
            )
            target = WorkspaceFileTarget(paths=[str(project_root() / "workspace.yaml")])
            with WorkspaceProcessContext(instance, target) as workspace:
                request = workspace.create_request_context()
                answer, seconds = timed(
                    lambda: execute_dagster_graphql(request, PARTITION_STATUS, {"assetKey": {"path": ["raw_listings"]}})
                )
                assert answer.errors is None, answer.errors
                dims = {
                    d["name"]: len(d["partitionKeys"])
                    for d in answer.data["assetNodeOrError"]["partitionKeysByDimension"]
                }
                assert dims["feed"] == 2 * TENANTS, dims  # (the sensor result above is not applied here)
                rows.append((f"UI GraphQL: raw_listings partition status ({dims})", seconds))
    finally:
        server.stop()

    print(f"\n[bench] {TENANTS:,} tenants x 2 feeds = {2 * TENANTS:,} feeds")
    for label, seconds in rows:
        print(f"  {label:<64}{seconds:>8.2f} s")
    print(f"  Dagster partitions per chain asset (feed x day since MLS_PARTITIONS_START_DATE): {partitions:,}")
    print("[bench] aims: a sensor tick < 10 s, feeds status < 1 s")
