"""`make bench` (the fleet's freshness): 2,000 feeds on the production Dagster instance
(PostgreSQL from pgserver, the image's event batching; MLS_BENCH_FLEET_INSTANCE=sqlite for the
local one) with the daemon, and a status or price change in the MLS until every feed of that
MLS has it in MongoDB.

A live simulator serves 20 MLS ids of 50 listings (its market follows real time); 2,000
tenants of one feed each, 100 per MLS, tenants sharing a token in tens (200 sources). The
feeds start as a fleet in steady state: a cursor at now and their collections and indexes made
(their history is not the point here: each change is). A
real `dagster-daemon` runs every sensor of the code location and launches the queued runs (our
coordinator, MLS_BENCH_FLEET_RUN_SLOTS, 4, at once); the probe's shared runs serve the feeds of one source together.
Changes are made at random moments; for each, the time from its ModificationTimestamp until
each of the MLS's 100 feeds holds it in the right status collection (checked every 5 s, in the
feeds whose cursor moved past the change, so the observer hardly loads the server), p50 and
p95 over every feed of every change. Also: the runs launched, the feeds they served, and
the peak RSS of the code server (the process that evaluates the sensors at 2,000 feeds), the
CPU seconds of each process, and where each change's time went.

Targets (issue 31): p95 <= 2 min; code server <= 500 MiB. Shorter: MLS_BENCH_FLEET_FRESHNESS_S,
MLS_BENCH_FLEET_CHANGES, MLS_BENCH_FLEET_FEEDS."""

import os
import random
import re
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import dagster as dg
import psutil
import pytest
import yaml

from mls_assets.defs.automation.run_requests import FEED_TAG, MEMBER_TAG_PREFIX, TRIGGER_TAG, feeds_of_run
from mls_assets.defs.feeds.registration import load_and_register_configs, partition_changes
from mls_assets.lib.catalogue import STATUS_COLLECTIONS, CollectionSpec, ensure_feed_collections
from mls_assets.lib.paths import project_root
from mls_assets.lib.store.client import get_client
from mls_assets.lib.store.cursors import CURSORS_COLLECTION, read_cursors
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.transform.status import status_class
from mls_assets.simulator import DEMO_TOKEN, Market, SimulatorServer
from mls_assets.simulator.market import fleet_mls_ids
from mls_assets_tests.bench.test_bench_fleet import tenants_document, token_env
from mls_assets_tests.bench.test_bench_freshness import _percentile
from mls_assets_tests.bench.test_bench_pipeline import Server
from mls_assets_tests.daemon import start_daemon, stop_process
from mls_assets_tests.support.servers import image_env

pytestmark = pytest.mark.bench
FEEDS = int(os.environ.get("MLS_BENCH_FLEET_FEEDS", "2000"))
DURATION_S = float(os.environ.get("MLS_BENCH_FLEET_FRESHNESS_S", "420"))
CHANGES = int(os.environ.get("MLS_BENCH_FLEET_CHANGES", "10"))
GIVE_UP_S = 300
INSTANCE = os.environ.get("MLS_BENCH_FLEET_INSTANCE", "postgres")
RUN_SLOTS = int(os.environ.get("MLS_BENCH_FLEET_RUN_SLOTS", "4"))
NEW_STATUSES = ("Expired", "Canceled", "Withdrawn", "Pending")


class Change:
    """One listing changed in the source; when each feed of its MLS had it."""

    def __init__(self, key: str, feeds: list[str], status: str | None, price: int | None, at: datetime) -> None:
        self.key, self.status, self.price, self.at = key, status, price, at
        self.seen: dict[str, datetime | None] = dict.fromkeys(feeds)
        self.superseded: set[str] = set()  # feeds that hold a later edit of the listing

    def look(self, database, cursors: dict[str, datetime], now: datetime) -> None:
        """A feed can hold the change only once a pull that started after it has stored its
        raw records (its cursor moved past the change): only such a feed's collections are
        read, so that the observer hardly loads the server it measures. They are read at each
        look until the change is there: the cursor moves when the raw records are stored, the
        status collections are written by the run's later steps (reading once per cursor
        missed feeds read in between, until their next run)."""
        for feed in [f for f, at in self.seen.items() if at is None]:
            cursor = cursors.get(feed)
            if cursor is None or cursor < self.at:
                continue
            if self._stored(database, FeedKey.parse(feed)):
                self.seen[feed] = now

    def _copies(self, database, feed: FeedKey) -> Iterator[tuple[CollectionSpec, dict]]:
        """The listing as each of the feed's status collections holds it."""
        for spec in STATUS_COLLECTIONS.values():
            doc = database[spec.collection_name(feed)].find_one(
                {"listingKey": self.key}, {"standardStatus": 1, "listPrice": 1, "modificationTimestamp": 1}
            )
            if doc is not None:
                yield spec, doc

    def _stored(self, database, feed: FeedKey) -> bool:
        """The feed holds the change, or a later edit of the listing: the market also changes
        on its own and may edit it again (its status or price then differ from the change's,
        though the feed is as fresh as it can be); such feeds are counted in `superseded`."""
        now_in = status_class(self.status or "Active").value  # a price change leaves it active
        for spec, doc in self._copies(database, feed):
            stamp = doc.get("modificationTimestamp")
            if isinstance(stamp, datetime) and stamp.replace(tzinfo=stamp.tzinfo or UTC) > self.at:
                self.superseded.add(str(feed))
                return True
            if spec.status_class == now_in:
                return doc["standardStatus"] == self.status if self.status else doc.get("listPrice") == self.price
        return False

    def held(self, database, feed: FeedKey) -> str:
        """What the feed holds of the listing (for a feed that never had the change)."""
        for spec, doc in self._copies(database, feed):
            return (
                f"{spec.collection_name(feed)}: {doc.get('standardStatus')} {doc.get('listPrice')} "
                f"modified {doc.get('modificationTimestamp')}; the change: {self.status} {self.price} at {self.at}"
            )
        return "the listing in no status collection"

    @property
    def pending(self) -> bool:
        return any(at is None for at in self.seen.values())


def _cursors(database, changes: list[Change]) -> dict[str, datetime]:
    """The cursors of every feed some change still waits for: one query a look."""
    waiting = sorted({f for c in changes if c.pending for f, at in c.seen.items() if at is None})
    return {feed: at for feed, at in read_cursors(database, waiting).items() if isinstance(at, datetime)}


FEED_PREFIX = re.compile(r"^agent\d+_mls\d+_")


def _server_time_by_collection(database) -> list[tuple[str, tuple[float, int]]]:
    """Where the server spent its time since it started (MongoDB's `top`), a feed's
    collections summed over every feed, most first."""
    totals: dict[str, list[float]] = {}
    for namespace, figures in database.client.admin.command("top")["totals"].items():
        if not isinstance(figures, dict) or "total" not in figures:
            continue
        name = FEED_PREFIX.sub("<feed>_", namespace.split(".", 1)[-1])
        entry = totals.setdefault(name, [0.0, 0])
        entry[0] += figures["total"]["time"] / 1e6
        entry[1] += figures["total"]["count"]
    return sorted(((n, (t, int(c))) for n, (t, c) in totals.items()), key=lambda item: -item[1][0])


def _tree(pid: int) -> list[psutil.Process]:
    """A process and every process under it (none if it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _peak_rss_mib(pid: int) -> dict[str, float]:
    """Peak RSS (VmHWM) of each process under `pid`, by its command."""
    found = {}
    for child in _tree(pid):
        try:
            status = open(f"/proc/{child.pid}/status").read()
            peak = next(line for line in status.splitlines() if line.startswith("VmHWM"))
            name = f"{' '.join(child.cmdline()[1:4])[:60]} (pid {child.pid})"
            found[name] = max(found.get(name, 0.0), int(peak.split()[1]) / 1024)
        except (psutil.Error, OSError, StopIteration):
            continue
    return found


def test_bench_fleet_freshness_with_the_daemon(tmp_path, monkeypatch):
    mls_ids = fleet_mls_ids(20)
    market = Market(listings=50, seed=13, mls_ids=mls_ids, follow_wall_clock=True, bad_record_rate=0.0)
    rng = random.Random(13)
    server = Server(tmp_path / "db")
    home = tmp_path / "dagster_home"
    home.mkdir()
    instance_env, postgres = _instance_home(home, tmp_path)
    log = tmp_path / "daemon.log"
    database = get_client(server.uri)["fleet"]
    try:
        with SimulatorServer(market) as simulator:
            document = tenants_document(FEEDS, simulator.url)
            tenants = tmp_path / "tenants.yaml"
            tenants.write_text(yaml.safe_dump(document))
            env = {
                **os.environ,
                "MONGODB_URI": server.uri,
                "MONGODB_DATABASE": "fleet",
                "DAGSTER_HOME": str(home),
                **instance_env,
                "MLS_TENANTS_FILE": str(tenants),
                "MLS_TENANTS_FILE_MAX_BYTES": str(10 * tenants.stat().st_size),
                **{token_env(n): DEMO_TOKEN for n in range(FEEDS)},
            }
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            feeds = load_and_register_configs(database)
            with dg.DagsterInstance.get() as instance:
                added, _ = partition_changes(instance, feeds)
                instance.add_dynamic_partitions("feeds", added)
                now = datetime.now(UTC)
                database[CURSORS_COLLECTION].insert_many(
                    [{"_id": key, "cursor": now, "updatedAt": now} for key in added]
                )
                with ThreadPoolExecutor(4) as pool:  # a fleet in steady state: every feed's collections exist
                    list(pool.map(lambda key: ensure_feed_collections(database, FeedKey.parse(key)), added))
                by_mls = {mls_id: [str(f.key) for f in feeds.feeds if f.mls_id == mls_id] for mls_id in mls_ids}
                daemon = start_daemon(env, log)
                changes: list[Change] = []
                peak: dict[str, float] = {}
                cpu: dict[int, tuple[str, float]] = {}
                try:
                    started = time.monotonic()
                    moments = sorted(rng.uniform(60, DURATION_S) for _ in range(CHANGES))
                    while moments or any(c.pending for c in changes):
                        elapsed = time.monotonic() - started
                        while moments and moments[0] <= elapsed:
                            moments.pop(0)
                            changes.append(_change(simulator, market, rng, by_mls, {c.key for c in changes}))
                        now = datetime.now(UTC)
                        cursors = _cursors(database, changes)
                        for change in changes:
                            if change.pending and (now - change.at).total_seconds() <= GIVE_UP_S:
                                change.look(database, cursors, now)
                        if elapsed > DURATION_S + GIVE_UP_S:
                            break
                        for name, mib in _peak_rss_mib(daemon.pid).items():
                            peak[name] = max(peak.get(name, 0.0), mib)
                        _cpu_by_pid(cpu, daemon.pid, server.process.pid)
                        time.sleep(5)
                    runs = instance.get_runs()
                    server_time = _server_time_by_collection(database)
                    phases = _run_phases(instance, runs)
                    stages = _change_stages(instance, changes)
                    stories = _slowest_feeds(instance, changes, database)
                    by_job = _runs_by_job(instance)
                finally:
                    stop_process(daemon)
    finally:
        server.stop()
        if postgres is not None:
            postgres.cleanup()

    latencies = [((at - c.at).total_seconds() if at else float(GIVE_UP_S)) for c in changes for at in c.seen.values()]
    worst_per_change = [
        max(((at - c.at).total_seconds() if at else float(GIVE_UP_S)) for at in c.seen.values()) for c in changes
    ]
    served = sum(len(feeds_of_run(r.tags)) or 1 for r in runs)
    p50, p95 = statistics.median(latencies), _percentile(latencies, 0.95)
    print(
        f"\n[bench] fleet freshness: {FEEDS:,} feeds over {len(mls_ids)} MLS ids, {len(changes)} changes over "
        f"{DURATION_S:.0f} s, each until every feed of its MLS ({FEEDS // len(mls_ids)}) has it"
    )
    print(
        f"  ModificationTimestamp -> stored, over every feed of every change: p50 {p50:.0f} s, p95 {p95:.0f} s; "
        f"the last feed of each change: median {statistics.median(worst_per_change):.0f} s, "
        f"max {max(worst_per_change):.0f} s"
    )
    print(
        f"  runs launched: {len(runs)} ({sum(1 for r in runs if r.status == dg.DagsterRunStatus.SUCCESS)} succeeded), "
        f"serving {served:,} feed-runs ({served / max(len(runs), 1):.0f} feeds a run)"
    )
    for name, mib in sorted(peak.items(), key=lambda item: -item[1])[:4]:
        print(f"  peak RSS {mib:7.0f} MiB  {name}")
    roles: dict[str, float] = {}
    for role, seconds in cpu.values():
        roles[role] = roles.get(role, 0.0) + seconds
    print(
        "  CPU seconds by process: " + ", ".join(f"{r} {s:.0f}" for r, s in sorted(roles.items(), key=lambda i: -i[1]))
    )
    for job, seconds in sorted(by_job.items()):
        print(f"  {job}: {len(seconds)} runs, {sum(seconds):.0f} s in all (median {statistics.median(seconds):.0f} s)")
    for stage, seconds in stages.items():
        print(f"  per change, {stage}: median {statistics.median(seconds):.0f} s, max {max(seconds):.0f} s")
    print("  the server's time by collection (its `top`; a feed's collections summed over every feed):")
    for name, (seconds, count) in server_time[:10]:
        print(f"    {seconds:7.1f} s  {count:>8,} operations  {name}")
    for phase, seconds in phases.items():
        if seconds:
            print(f"  replication runs, {phase}: median {statistics.median(seconds):.1f} s, max {max(seconds):.1f} s")
    superseded = sum(len(c.superseded) for c in changes)
    print(f"  feeds that held a later edit of the changed listing (counted as stored then): {superseded}")
    print("  the slowest feeds' runs (s from the change: created / started / ended, trigger, feeds in the run):")
    for story in stories:
        print(f"    {story}")
    assert all(not c.pending for c in changes), f"changes never stored; daemon log:\n{log.read_text()[-3000:]}"
    assert p95 <= 120


def _instance_home(home, tmp_path) -> tuple[dict[str, str], object]:
    """The Dagster instance under test: the production one (PostgreSQL, `deploy/dagster_home`,
    the image's event batching, this machine's run slots) unless MLS_BENCH_FLEET_INSTANCE=sqlite (the local one)."""
    if INSTANCE == "sqlite":
        (home / "dagster.yaml").write_text((project_root() / "instance" / "dagster.yaml").read_text())
        return {}, None
    import pgserver

    postgres = pgserver.get_server(tmp_path / "pgdata", cleanup_mode="stop")
    postgres.psql("CREATE DATABASE dagster;")
    config = yaml.safe_load((project_root() / "deploy" / "dagster_home" / "dagster.yaml").read_text())
    config["concurrency"]["runs"]["max_concurrent_runs"] = RUN_SLOTS
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return {
        "DAGSTER_PG_URL": postgres.get_uri("dagster"),
        "DAGSTER_EVENT_BATCH_SIZE": image_env("DAGSTER_EVENT_BATCH_SIZE"),
    }, postgres


def _role(process: psutil.Process) -> str:
    command = " ".join(process.cmdline())
    # run workers are spawned by the code server (multiprocessing's `spawn_main`)
    for marker, role in (
        ("api grpc", "code server"),
        ("spawn_main", "runs"),
        ("dagster-daemon", "daemon"),
        ("secantusd", "MongoDB server"),
        ("postgres", "PostgreSQL"),
    ):
        if marker in command:
            return role
    return command[:40]


def _cpu_by_pid(found: dict[int, tuple[str, float]], *roots: int) -> None:
    """CPU seconds so far of every process under `roots`, of this one (the simulator) and of
    PostgreSQL's."""
    postgres = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]
    for process in [psutil.Process(), *postgres, *(p for root in roots for p in _tree(root))]:
        try:
            times = process.cpu_times()
            role = "bench and simulator" if process.pid == os.getpid() else _role(process)
            found[process.pid] = (role, times.user + times.system)
        except psutil.Error:
            continue


def _run_phases(instance: dg.DagsterInstance, runs) -> dict[str, list[float]]:
    """For each replication run: queued (created to launched), process start (launched to the
    run's start, which includes loading the code location) and steps (start to end)."""
    phases: dict[str, list[float]] = {"queued": [], "process start": [], "steps": []}
    for record in instance.get_run_records(dg.RunsFilter(job_name="replication_job")):
        starting = instance.get_records_for_run(
            record.dagster_run.run_id, of_type=dg.DagsterEventType.RUN_STARTING
        ).records
        if not starting or record.start_time is None or record.end_time is None:
            continue
        launched = starting[0].timestamp
        phases["queued"].append(launched - record.create_timestamp.timestamp())
        phases["process start"].append(record.start_time - launched)
        phases["steps"].append(record.end_time - record.start_time)
    return phases


def _runs_by_job(instance: dg.DagsterInstance) -> dict[str, list[float]]:
    """Seconds from start to end of each finished run, by job (what else took the slots)."""
    found: dict[str, list[float]] = {}
    for record in instance.get_run_records():
        if record.start_time is not None and record.end_time is not None:
            found.setdefault(record.dagster_run.job_name, []).append(record.end_time - record.start_time)
    return found


def _change_stages(instance: dg.DagsterInstance, changes: list[Change]) -> dict[str, list[float]]:
    """Where each change's time went: until its first run was created (the probe's wait and
    tick), until its last run started, and until its last run ended."""
    stages: dict[str, list[float]] = {"first run created": [], "last run started": [], "last run ended": []}
    records = instance.get_run_records(dg.RunsFilter(job_name="replication_job"))
    for change in changes:
        at = change.at.timestamp()
        done = max((seen.timestamp() for seen in change.seen.values() if seen), default=at)
        serving = [
            r
            for r in records
            if at <= r.create_timestamp.timestamp() <= done and feeds_of_run(r.dagster_run.tags) & change.seen.keys()
        ]
        if not serving:
            continue
        stages["first run created"].append(min(r.create_timestamp.timestamp() for r in serving) - at)
        stages["last run started"].append(max((r.start_time or at) for r in serving) - at)
        stages["last run ended"].append(max((r.end_time or at) for r in serving) - at)
    return {stage: seconds for stage, seconds in stages.items() if seconds}


def _slowest_feeds(instance: dg.DagsterInstance, changes: list[Change], database, count: int = 5) -> list[str]:
    """For the `count` slowest (change, feed) pairs: every run of that feed from a minute
    before the change until it was stored, relative to the change (why it waited)."""
    latencies = sorted(
        (
            (((at - c.at).total_seconds() if at else float(GIVE_UP_S)), c, feed)
            for c in changes
            for feed, at in c.seen.items()
        ),
        key=lambda found: found[0],
    )
    stories = []
    for latency, change, feed in latencies[-count:]:
        at = change.at.timestamp()
        records = list(instance.get_run_records(dg.RunsFilter(tags={f"{MEMBER_TAG_PREFIX}{feed}": "1"}))) + list(
            instance.get_run_records(dg.RunsFilter(tags={FEED_TAG: feed}))
        )
        runs = sorted(
            (r for r in records if at - 60 <= r.create_timestamp.timestamp() <= at + latency),
            key=lambda r: r.create_timestamp,
        )
        steps = "; ".join(
            f"{r.create_timestamp.timestamp() - at:.0f}/{(r.start_time or at) - at:.0f}/{(r.end_time or at) - at:.0f} "
            f"{r.dagster_run.tags.get(TRIGGER_TAG, r.dagster_run.job_name)} x{len(feeds_of_run(r.dagster_run.tags))}"
            for r in runs
        )
        held = "" if change.seen[feed] else f" (holds {change.held(database, FeedKey.parse(feed))})"
        stories.append(f"{latency:.0f} s {feed}: {steps or 'no run'}{held}")
    return stories


def _change(
    simulator: SimulatorServer, market: Market, rng: random.Random, by_mls: dict[str, list[str]], taken: set[str]
) -> Change:
    """Change one active listing now: its status (half the time) or its price."""
    candidates = [s for s in market.states() if s.status == "Active" and s.timeline.key not in taken]
    state = rng.choice(candidates)
    if rng.random() < 0.5:
        status, price = rng.choice(NEW_STATUSES), None
    else:
        status, price = None, int(round(state.price * rng.uniform(0.9, 0.98), -3))
    at = simulator.change(state.timeline.key, status=status, price=price)
    return Change(state.timeline.key, by_mls[state.timeline.mls_id], status, price, at)
