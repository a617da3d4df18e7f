"""A backfill launched from a job's page, as a data engineer launches it: through the
webserver's GraphQL (the mutation the UI sends) with a real daemon processing it and our run
coordinator queueing the run. Every day of the window is pulled and materialized with its own
counts (Dagster gives such a run one partition's dimension tags beside the range; the
coordinator mends the run before it queues)."""

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import yaml

from mls_assets.defs.partitions import RANGE_TAGS, feed_day_key
from mls_assets.lib.catalogue import RAW
from mls_assets.lib.paths import project_root
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.tenants import load_feeds, sync_configs
from mls_assets.simulator import CRMLS_MLS_ID, Market, SimulatorServer
from mls_assets_tests.daemon import start_daemon, stop_process
from mls_assets_tests.support.servers import free_port

FEED = "jpsrealtor.crmls"
DAYS = 7
LAUNCH = """mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}"""
STATUS = """query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } }
}"""


def start_webserver(env: dict, port: int, log: Path) -> subprocess.Popen:
    webserver = Path(sys.executable).parent / "dagster-webserver"
    return subprocess.Popen(
        [str(webserver), "-w", str(project_root() / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        cwd=project_root(),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def wait_for(condition, what: str, limit_s: float, log: Path):
    """Poll `condition` until it returns something truthy (a condition, not a timing)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(1.0)
    raise AssertionError(f"{what} within {limit_s:.0f} s; log:\n{log.read_text()[-4000:]}")


def graphql(port: int, query: str, variables: dict) -> dict:
    answer = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query, "variables": variables}, timeout=60)
    answer.raise_for_status()
    return answer.json()["data"]


def serving(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_job_page_backfill_materializes_every_day_of_its_window_with_its_own_counts(mongo_uri, mongo_db, tmp_path):
    market = Market(listings=80, seed=5, anchor=datetime.now(UTC), mls_ids=(CRMLS_MLS_ID,), bad_record_rate=0.0)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((project_root() / "instance" / "dagster.yaml").read_text())
    log = tmp_path / "services.log"
    port = free_port()
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=DAYS - 1 - i)).isoformat() for i in range(DAYS)]
    with SimulatorServer(market) as simulator:
        tenants = tmp_path / "tenants.yaml"
        tenants.write_text(
            yaml.safe_dump(
                {
                    "tenants": [
                        {
                            "tenant_id": "jpsrealtor",
                            "feeds": [
                                {
                                    "mls": "crmls",
                                    "mls_id": CRMLS_MLS_ID,
                                    "base_url": simulator.url,
                                    "sync_schedule": "0 0 1 1 *",
                                }
                            ],
                        }
                    ]
                }
            )
        )
        sync_configs(mongo_db, load_feeds(tenants))
        env = {
            **os.environ,
            "MONGODB_URI": mongo_uri,
            "MONGODB_DATABASE": mongo_db.name,
            "DAGSTER_HOME": str(home),
            "MLS_TENANTS_FILE": str(tenants),
            "MLS_LOCAL_MODE": "1",
        }
        with dg.DagsterInstance.from_config(str(home)) as instance:
            instance.add_dynamic_partitions("feeds", [FEED])
        webserver, daemon = start_webserver(env, port, log), start_daemon(env, log, backfill_loop_s=3)
        try:
            wait_for(lambda: serving(port), "the webserver serves", 120, log)
            params = {
                "selector": {
                    "partitionSetName": "expired_listings_backfill_partition_set",
                    "repositorySelector": {"repositoryName": "__repository__", "repositoryLocationName": "mls_assets"},
                },
                "partitionNames": [str(feed_day_key(FEED, day)) for day in days],
                "fromFailure": False,
            }
            launched = graphql(port, LAUNCH, {"params": params})["launchPartitionBackfill"]
            assert launched["__typename"] == "LaunchBackfillSuccess", launched
            backfill_id = launched["backfillId"]

            def finished() -> str | None:
                status = graphql(port, STATUS, {"id": backfill_id})["partitionBackfillOrError"]["status"]
                return status if status not in ("REQUESTED", "IN_PROGRESS") else None

            status = wait_for(finished, "the backfill finishes", 240, log)
        finally:
            # The probe's sensor thread may still be creating the feed's first-load run, about a
            # minute of planned events on this instance (docs/fleet.md, "First loads"), and the
            # daemon exits only after it. Its stop is not under test here: ten seconds, then KILL.
            stop_process(daemon, grace_s=10)
            stop_process(webserver)
    assert status == "COMPLETED_SUCCESS", log.read_text()[-4000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS]  # one run for the window
        (run,) = runs
        assert [run.tags[t] for t in RANGE_TAGS] == [
            str(feed_day_key(FEED, days[0])),
            str(feed_day_key(FEED, days[-1])),
        ]
        assert not [t for t in run.tags if t.startswith("dagster/partition/")]
        keys = [str(feed_day_key(FEED, day)) for day in days]

        def of_run(asset: str) -> dict:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=keys), limit=1000
            ).records
            return {
                r.partition_key.split("|")[0]: r.asset_materialization.metadata
                for r in records
                if r.run_id == run.run_id
            }

        raw_by_day, expired_days = of_run("raw_listings"), set(of_run("expired_listing_photos"))
    assert sorted(raw_by_day) == days and sorted(expired_days) == days  # every day, not the first one only
    raw = mongo_db[FeedKey.parse(FEED).collection(RAW.name)]
    for day in days[:-1]:  # each past day reports its own records (today's is the cursor's window)
        start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        stored = raw.count_documents({"modificationTimestamp": {"$gte": start, "$lt": start + timedelta(days=1)}})
        assert raw_by_day[day]["pulled"].value == stored, day
    assert sum(m["pulled"].value for m in raw_by_day.values()) > 0
