"""`make bench` (the fleet): the cost of every sensor and schedule tick at 200, 1,000 and 2,000
feeds, each size on a fresh embedded server and a fresh Dagster instance, the bundled
simulator in its own process (rate limits set high, standing in for each agent's own token).

Per size: registration (the first discovery tick over the whole file, then one tenant
added), the change probe with every feed pulled once and nothing changed (one request per
feed), the media sensor with every feed waiting, and the nightly sensor, intraday schedule and
weekly sweep ticks. Aim: every tick
<= 10 s at 2,000 feeds, growth far below 10x from 200 to 2,000. The feeds lie over 20 MLS ids the
simulator serves, tenants of one MLS sharing a token in tens, no feed naming a cron. Then what
the UI asks of the webserver's GraphQL for one chain asset: the partitions page's query, and
every partition key. Then the runs the instigators request: the probe's when every feed changed,
and per hour at the simulator's own change rate (probe, safety net, nightly), shared and one
per feed. The freshness run at 2,000 feeds with the daemon is `test_bench_fleet_freshness`."""

import hashlib
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import httpx
import pytest
import yaml
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster_graphql.test.utils import execute_dagster_graphql

from mls_assets.defs.automation.probe import change_probe_sensor
from mls_assets.defs.automation.run_requests import SHARED_RUN_FEEDS, feeds_of_run, feeds_order, shared_requests
from mls_assets.defs.automation.schedules import intraday_status_sync
from mls_assets.defs.automation.sensors import nightly_due, nightly_sync_sensor
from mls_assets.defs.feeds.sensors import feed_discovery_sensor
from mls_assets.defs.maintenance.schedules import weekly_deletion_sweep
from mls_assets.defs.media.assets import MEDIA_BACKLOG
from mls_assets.defs.media.sensors import photo_media_sensor
from mls_assets.defs.resources import ClockResource, MongoResource, SourceResource
from mls_assets.lib.paths import project_root
from mls_assets.lib.replication.window import PullWindow
from mls_assets.lib.settings import SETTINGS
from mls_assets.lib.store.client import get_client
from mls_assets.lib.store.cursors import CURSORS_COLLECTION
from mls_assets.lib.tenants import FeedConfig, read_configs
from mls_assets.lib.transform.screen import screen
from mls_assets.lib.transform.values import FieldError
from mls_assets.simulator import DEMO_TOKEN
from mls_assets.simulator.market import fleet_mls_ids
from mls_assets_tests.bench.test_bench_pipeline import Server
from mls_assets_tests.bench.test_bench_tenants_scale import PARTITION_STATUS
from mls_assets_tests.support.servers import free_port

pytestmark = pytest.mark.bench
SIZES = (200, 1000, 2000)
HIGH_RATE = {"requests": 1_000_000, "per_seconds": 60}


def timed(action):
    started = time.perf_counter()
    value = action()
    return value, time.perf_counter() - started


MLS_IDS = fleet_mls_ids(20)
SHARED_KEY_EVERY = 10  # tenants n, n+20, ... n+180 of one MLS share one token (a brokerage's key)


def token_env(n: int) -> str:
    return f"FLEET_TOKEN_{n // (len(MLS_IDS) * SHARED_KEY_EVERY):04d}_{n % len(MLS_IDS):02d}"


def tenants_document(count: int, base_url: str) -> dict:
    """`count` tenants, one feed each, over 20 MLS ids in turn; no cron given (spread)."""
    return {
        "tenants": [
            {
                "tenant_id": f"agent{n:05d}",
                "feeds": [
                    {
                        "mls": f"mls{n % len(MLS_IDS):02d}",
                        "mls_id": MLS_IDS[n % len(MLS_IDS)],
                        "base_url": base_url,
                        "token_env": token_env(n),
                        "rate_limit": dict(HIGH_RATE),
                    }
                ],
            }
            for n in range(count)
        ]
    }


class Simulator:
    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mls_assets.cli",
                "simulator",
                "--port",
                str(self.port),
                "--listings",
                "50",
                "--mlss",
                str(len(MLS_IDS)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}/v1"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/_admin/stats", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and self.process.poll() is None, "the simulator did not start"
            time.sleep(0.1)

    def requests(self) -> int:
        return httpx.get(f"http://127.0.0.1:{self.port}/_admin/stats", timeout=10).json()["requests"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


per_tick: dict[int, int] = {}  # runs the safety net requests in one tick, per size
runs_per_hour: dict[int, dict[str, float]] = {}  # per size: runs each instigator requests in an hour
every_feed_changed: dict[int, int] = {}  # per size: the probe's runs when every feed changed
questions: dict[int, int] = {}  # per size: the probe's requests when nothing changed


def changed_minutes(source: SourceResource, feeds: list[FeedConfig], since: datetime, now: datetime) -> dict[str, int]:
    """Per MLS id: the minutes since `since` in which one of its listings changed (each is a
    probe tick that finds a change), from one feed's pull of that window."""
    found = {}
    for feed in {f.mls_id: f for f in feeds}.values():
        minutes = set()
        with source.provider_for(feed) as provider:
            for page in provider.pages(PullWindow(since, None, incremental=True, after_cursor=True), 1000):
                for record in page.records:
                    try:
                        minutes.add(screen(record, now).modified.replace(second=0, microsecond=0))
                    except FieldError:
                        continue
        found[feed.mls_id] = len(minutes)
    return found


def steady_state(
    instance: dg.DagsterInstance, database, source: SourceResource, now: datetime, market_now: datetime
) -> dict[str, float]:
    """Runs requested per hour at the simulator's change rate: the probe (an MLS changed in k
    minutes of the market's last day asks k times a day), shared and, for comparison, one run per feed; the
    safety net (its 16 slots over 4 hours); the nightly crons (a day, and its busiest hour)."""
    feeds = [f for f in read_configs(database) if f.enabled]
    minutes = {
        mls: n / 24 for mls, n in changed_minutes(source, feeds, market_now - timedelta(days=1), market_now).items()
    }
    by_mls: dict[str, list[str]] = {}
    for feed in feeds:
        by_mls.setdefault(feed.mls_id, []).append(str(feed.key))
    today, order = now.date(), feeds_order(instance)
    probe = sum(
        minutes[m] * len(shared_requests(order, dict.fromkeys(keys, "x"), {}, today, today, "p"))
        for m, keys in by_mls.items()
    )
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    ticks: dict[str, dict[str, str]] = {}  # each cron minute of the day: its feeds, as the sensor's tick sees them
    for due in nightly_due(feeds, start, start + timedelta(days=1)).values():
        for feed, tick in due.items():
            ticks.setdefault(tick, {})[feed] = tick
    nightly = [0] * 24
    for tick, due in ticks.items():
        day = datetime.fromisoformat(tick).date() - timedelta(days=1)
        nightly[datetime.fromisoformat(tick).hour] += len(shared_requests(order, due, {}, day, day, "nightly"))
    net = 0
    for tick in range(16):
        with dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=start + timedelta(minutes=15 * tick),
            resources={"mongo": MongoResource(uri=SERVER_URIS[-1], database="fleet")},
        ) as ctx:
            asked = intraday_status_sync(ctx)
        net += len(asked) if isinstance(asked, list) else 0
    return {
        "probe": probe,
        "probe, one run per feed": sum(minutes[m] * len(k) for m, k in by_mls.items()),
        "safety net": net / 4,
        "nightly, a day": sum(nightly),
        "nightly, busiest hour": max(nightly),
        "MLS minutes with a change": sum(minutes.values()),
    }


SERVER_URIS: list[str] = []
media_runs: dict[int, int] = {}  # the media sensor's runs when every feed waits, per size
keys: dict[int, int] = {}  # partition keys of one chain asset, per size
ALL_KEYS = """
query AllKeys($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) { ... on AssetNode { partitionKeys } }
}"""


def measure(size: int, tmp_path, monkeypatch, simulator: Simulator) -> dict[str, float]:
    text = yaml.safe_dump(tenants_document(size, simulator.url)).encode()
    path = tmp_path / f"tenants{size}.yaml"
    path.write_bytes(text)
    monkeypatch.setenv("MLS_TENANTS_FILE", str(path))
    monkeypatch.setenv("MLS_TENANTS_FILE_MAX_BYTES", str(10 * len(text)))
    for n in range(size + 1):
        monkeypatch.setenv(token_env(n), DEMO_TOKEN)
    server = Server(tmp_path / f"db{size}")
    figures: dict[str, float] = {}
    try:
        mongo = MongoResource(uri=server.uri, database="fleet")
        database = get_client(server.uri)["fleet"]
        resources = {"mongo": mongo, "source": SourceResource(), "clock": ClockResource()}
        (tmp_path / f"home{size}").mkdir()
        with dg.instance_for_test(temp_dir=str(tmp_path / f"home{size}")) as instance:
            context = dg.build_sensor_context(instance=instance, resources=resources)
            result, figures["discovery: first tick (registers every feed)"] = timed(
                lambda: feed_discovery_sensor(context)
            )
            (added,) = result.dynamic_partitions_requests
            assert len(added.partition_keys) == size
            _, figures["  add the feeds partitions (Dagster)"] = timed(
                lambda: instance.add_dynamic_partitions("feeds", list(added.partition_keys))
            )
            document = tenants_document(size, simulator.url)
            document["tenants"].append(
                {"tenant_id": "latecomer", "feeds": json.loads(json.dumps(document["tenants"][0]["feeds"]))}
            )
            path.write_bytes(yaml.safe_dump(document).encode())
            cursor = json.dumps({"hash": hashlib.sha256(text).hexdigest(), "error": None})
            context = dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor)
            result, figures["discovery: one tenant added to the file"] = timed(lambda: feed_discovery_sensor(context))
            assert [list(r.partition_keys) for r in result.dynamic_partitions_requests] == [["latecomer.mls00"]]

            now = datetime.now(UTC)
            database[CURSORS_COLLECTION].insert_many([{"_id": key, "cursor": now} for key in added.partition_keys])
            before = simulator.requests()
            context = dg.build_sensor_context(instance=instance, resources=resources)
            result, figures["change probe tick (every feed due, none changed)"] = timed(
                lambda: change_probe_sensor(context)
            )
            asked = simulator.requests() - before
            sources = {f.source for f in read_configs(database) if str(f.key) in added.partition_keys}
            assert asked == len(sources) and [r.tags["mls/feed"] for r in result.run_requests] == ["latecomer.mls00"]
            questions[size] = asked  # one per source: its feeds share a cursor

            database[CURSORS_COLLECTION].update_many({}, {"$set": {"cursor": now - timedelta(days=30)}})
            context = dg.build_sensor_context(instance=instance, resources=resources)
            result, figures["change probe tick (every feed changed)"] = timed(lambda: change_probe_sensor(context))
            every_feed_changed[size] = len(result.run_requests)
            assert sum(len(feeds_of_run(r.tags)) for r in result.run_requests) == size + 1  # every feed served once

            # Every feed waits for media (a retry due): the media sensor's worst tick.
            database[MEDIA_BACKLOG].insert_many(
                [{"_id": f, "dueAt": now - timedelta(minutes=1)} for f in feeds_order(instance)]
            )
            context = dg.build_sensor_context(instance=instance, resources=resources)
            result, figures["media sensor tick (every feed waits)"] = timed(lambda: photo_media_sensor(context))
            media_runs[size] = len(result.run_requests)
            assert media_runs[size] == -(-len(feeds_order(instance)) // SHARED_RUN_FEEDS)
            SERVER_URIS.append(server.uri)
            market_now = datetime.fromisoformat(
                httpx.get(f"http://127.0.0.1:{simulator.port}/_admin/clock").json()["now"]
            )
            runs_per_hour[size] = steady_state(instance, database, SourceResource(), now, market_now)

            last = (now - timedelta(days=1)).isoformat()
            context = dg.build_sensor_context(instance=instance, resources=resources, cursor=last)
            result, figures["nightly sensor tick (a day of crons)"] = timed(lambda: nightly_sync_sensor(context))
            when = now.replace(minute=15, second=0, microsecond=0)
            with dg.build_schedule_context(
                instance=instance, scheduled_execution_time=when, resources=resources
            ) as scheduled:
                requests, figures["intraday safety net tick (one slot of 16)"] = timed(
                    lambda: intraday_status_sync(scheduled)
                )
                per_tick[size] = len(requests) if isinstance(requests, list) else 0
                sweeps, figures["weekly sweep schedule tick"] = timed(lambda: list(weekly_deletion_sweep(scheduled)))
                assert len(sweeps) == size + 1
            target = WorkspaceFileTarget(paths=[str(project_root() / "workspace.yaml")])
            with WorkspaceProcessContext(instance, target) as workspace:
                request = workspace.create_request_context()
                asset = {"assetKey": {"path": ["raw_listings"]}}
                answer, figures["UI: the partitions page's query (GraphQL)"] = timed(
                    lambda: execute_dagster_graphql(request, PARTITION_STATUS, asset)
                )
                assert answer.errors is None, answer.errors
                answer, figures["UI: every partition key of one asset (GraphQL)"] = timed(
                    lambda: execute_dagster_graphql(request, ALL_KEYS, asset)
                )
                assert answer.errors is None, answer.errors
                keys[size] = len(answer.data["assetNodeOrError"]["partitionKeys"])
    finally:
        server.stop()
    return figures


def test_bench_fleet(tmp_path, monkeypatch):
    simulator = Simulator()
    try:
        results = {size: measure(size, tmp_path, monkeypatch, simulator) for size in SIZES}
    finally:
        simulator.stop()
    labels = list(results[SIZES[0]])
    print(
        f"\n[bench] the fleet: seconds per tick, {' / '.join(f'{s:,}' for s in SIZES)} feeds, and the growth "
        f"{SIZES[0]:,} -> {SIZES[-1]:,}"
    )
    for label in labels:
        values = [results[size][label] for size in SIZES]
        print(f"  {label:<56}" + "".join(f"{v:>9.2f}" for v in values) + f"   x{values[-1] / max(values[0], 1e-3):.1f}")
    print(
        "  safety-net runs in that tick: "
        + " / ".join(f"{per_tick[s]}" for s in SIZES)
        + f" (x4 per hour; every feed every 15 minutes was {4 * SIZES[-1]:,} an hour at {SIZES[-1]:,})"
    )
    print(
        "  the probe's questions (requests) in a tick: "
        + " / ".join(f"{questions[s]}" for s in SIZES)
        + " (one per source and cursor; one per feed before: "
        + " / ".join(f"{s}" for s in SIZES)
        + ")"
    )
    print("  partition keys of one chain asset: " + " / ".join(f"{keys[s]:,}" for s in SIZES))
    print(
        "  the probe's runs when every feed changed: "
        + " / ".join(f"{every_feed_changed[s]}" for s in SIZES)
        + f" (one run per feed: {' / '.join(f'{s + 1:,}' for s in SIZES)})"
    )
    print(
        "  the media sensor's runs when every feed waits: "
        + " / ".join(f"{media_runs[s]}" for s in SIZES)
        + f" (one per block of {SHARED_RUN_FEEDS} feeds; at most x{3600 // SETTINGS.media_interval_s} an hour)"
    )
    print("  runs requested per hour at the simulator's change rate:")
    for label in runs_per_hour[SIZES[0]]:
        print(f"    {label:<34}" + "".join(f"{runs_per_hour[s][label]:>9.1f}" for s in SIZES))
    steady = {
        s: runs_per_hour[s]["probe"] + runs_per_hour[s]["safety net"] + runs_per_hour[s]["nightly, a day"] / 24
        for s in SIZES
    }
    print("    steady state (probe + safety net + nightly / 24)" + "".join(f"{steady[s]:>9.0f}" for s in SIZES))
    print("[bench] aim: every tick <= 10 s at 2,000 feeds; the partitions query <= 3 s")
