"""`make bench` (freshness): how long a status or price change in the MLS takes to reach
MongoDB with the change probe, as in `make dev`.

A live simulator (its market follows real time) serves two feeds; a real `dagster-daemon`
runs the sensors and launches the queued runs on a local instance (our run coordinator and
per-feed limit). After the feeds' first sync, changes are made in the source at random
moments (status moves and price changes of active listings); for each, the time from its
ModificationTimestamp until the listing is in the right status collection with the new
value (and, for a status move, its history event is written). Then a quiet period: the
Spark requests each feed costs per hour while nothing changes, and the runs launched.

Targets (issue 13): p95 <= 2 min, max <= 3 min; quiet: <= 70 requests per feed per hour and
no run. Shorter runs for a try: MLS_BENCH_FRESHNESS_S, MLS_BENCH_FRESHNESS_CHANGES,
MLS_BENCH_QUIET_S."""

import os
import random
import statistics
import time
from datetime import UTC, datetime

import dagster as dg
import pytest
import yaml

from mls_assets.defs.partitions import feed_day_key
from mls_assets.lib.catalogue import HISTORY, STATUS_COLLECTIONS
from mls_assets.lib.paths import project_root
from mls_assets.lib.store.client import get_client
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.tenants import load_feeds, sync_configs
from mls_assets.lib.transform.status import status_class
from mls_assets.simulator import CRMLS_MLS_ID, GPS_MLS_ID, Market, SimulatorServer
from mls_assets_tests.daemon import start_daemon, stop_process

pytestmark = pytest.mark.bench
FEEDS = {"jpsrealtor.gps": GPS_MLS_ID, "jpsrealtor.crmls": CRMLS_MLS_ID}
DURATION_S = float(os.environ.get("MLS_BENCH_FRESHNESS_S", "600"))
CHANGES = int(os.environ.get("MLS_BENCH_FRESHNESS_CHANGES", "36"))
QUIET_S = float(os.environ.get("MLS_BENCH_QUIET_S", "300"))
GIVE_UP_S = 300  # a change not stored after this long counts as this long (and fails the target)
NEW_STATUSES = ("Expired", "Canceled", "Withdrawn", "Pending", "Active Under Contract")


class Change:
    def __init__(self, feed: str, key: str, status: str | None, price: int | None, at: datetime) -> None:
        self.feed, self.key, self.status, self.price, self.at = feed, key, status, price, at
        self.seen_at: datetime | None = None

    def stored(self, database) -> bool:
        """In the collection of its status class with the new value (and its history event)."""
        feed = FeedKey.parse(self.feed)
        for spec in STATUS_COLLECTIONS.values():
            doc = database[spec.collection_name(feed)].find_one(
                {"listingKey": self.key}, {"standardStatus": 1, "listPrice": 1}
            )
            if doc is None:
                continue
            if self.status is not None:
                right = status_class(self.status).value == spec.status_class and doc["standardStatus"] == self.status
                history = database[HISTORY.collection_name(feed)].find_one({"listingKey": self.key, "to": self.status})
                return right and history is not None
            return doc.get("listPrice") == self.price
        return False


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def test_bench_freshness_of_status_and_price_changes_with_the_probe(mongo_uri, tmp_path, monkeypatch):
    database_name = f"bench_fresh_{os.getpid()}"
    database = get_client(mongo_uri)[database_name]
    market = Market(listings=120, seed=13, follow_wall_clock=True, bad_record_rate=0.0)
    rng = random.Random(13)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((project_root() / "instance" / "dagster.yaml").read_text())
    log = tmp_path / "daemon.log"
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
                                    "mls": feed.split(".")[1],
                                    "mls_id": mls_id,
                                    "base_url": simulator.url,
                                    "sync_schedule": "0 0 1 1 *",
                                }
                                for feed, mls_id in FEEDS.items()
                            ],
                        }
                    ]
                }
            )
        )
        env = {
            **os.environ,
            "MONGODB_URI": mongo_uri,
            "MONGODB_DATABASE": database_name,
            "DAGSTER_HOME": str(home),
            "MLS_TENANTS_FILE": str(tenants),
            "MLS_LOCAL_MODE": "1",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        sync_configs(database, load_feeds(tenants))
        from mls_assets.definitions import defs

        job = defs().resolve_job_def("replication_job")
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions("feeds", list(FEEDS))
            today = datetime.now(UTC).date().isoformat()
            for feed in FEEDS:  # the first sync, so that every feed has a cursor
                assert job.execute_in_process(
                    instance=instance, partition_key=str(feed_day_key(feed, today)), tags={"mls/feed": feed}
                ).success
            first_runs = len(instance.get_runs())
            daemon = start_daemon(env, log)
            changes: list[Change] = []
            try:
                started = time.monotonic()
                moments = sorted(rng.uniform(0, DURATION_S) for _ in range(CHANGES))
                pending: list[Change] = []
                while moments or pending:
                    elapsed = time.monotonic() - started
                    while moments and moments[0] <= elapsed:
                        moments.pop(0)
                        changes.append(_change(simulator, market, rng, {c.key for c in changes}))
                        pending.append(changes[-1])
                    now = datetime.now(UTC)
                    for change in list(pending):
                        if change.stored(database):
                            change.seen_at = now
                            pending.remove(change)
                        elif (now - change.at).total_seconds() > GIVE_UP_S:
                            pending.remove(change)
                    time.sleep(1.0)
                # settle: the last changes' runs, and the one run per feed the probe's lag adds
                # after a burst, are done when no run was created for 150 s
                settled_by, last_count, last_new = time.monotonic() + 600, len(instance.get_runs()), time.monotonic()
                while time.monotonic() < settled_by:
                    count = len(instance.get_runs())
                    if count != last_count:
                        last_count, last_new = count, time.monotonic()
                    busy = any(not r.is_finished for r in instance.get_runs(limit=20))
                    if not busy and time.monotonic() - last_new > 150:
                        break
                    time.sleep(2)
                changed_runs = len(instance.get_runs()) - first_runs
                runs_before, requests_before, quiet_started = (
                    len(instance.get_runs()),
                    simulator.requests,
                    time.monotonic(),
                )
                time.sleep(QUIET_S)
                quiet_s = time.monotonic() - quiet_started
                quiet_requests = simulator.requests - requests_before
                quiet_runs = len(instance.get_runs()) - runs_before
            finally:
                stop_process(daemon)
        get_client(mongo_uri).drop_database(database_name)

    latencies = [((c.seen_at - c.at).total_seconds() if c.seen_at else float(GIVE_UP_S)) for c in changes]
    per_feed_hour = quiet_requests / len(FEEDS) / (quiet_s / 3600)
    p50, p95, worst = statistics.median(latencies), _percentile(latencies, 0.95), max(latencies)
    print(
        f"\nfreshness with the change probe: {len(changes)} changes over {DURATION_S:.0f} s "
        f"({sum(1 for c in changes if c.status)} status moves, {sum(1 for c in changes if c.price)} price changes), "
        f"{changed_runs} runs launched by the daemon"
    )
    print(
        f"  ModificationTimestamp -> stored: p50 {p50:.0f} s, p95 {p95:.0f} s, max {worst:.0f} s "
        f"(not stored within {GIVE_UP_S} s: {sum(1 for c in changes if not c.seen_at)})"
    )
    print(
        f"  quiet {quiet_s:.0f} s: {quiet_requests} Spark requests = {per_feed_hour:.0f} per feed per hour, "
        f"{quiet_runs} runs launched"
    )
    assert all(c.seen_at for c in changes), f"changes never stored; daemon log:\n{log.read_text()[-3000:]}"
    assert p95 <= 120 and worst <= 180
    assert per_feed_hour <= 70 and quiet_runs == 0


def _change(simulator: SimulatorServer, market: Market, rng: random.Random, taken: set[str]) -> Change:
    """Change one active listing now: its status (half the time) or its price."""
    candidates = [s for s in market.states() if s.status == "Active" and s.timeline.key not in taken]
    state = rng.choice(candidates)
    feed = next(feed for feed, mls_id in FEEDS.items() if mls_id == state.timeline.mls_id)
    if rng.random() < 0.5:
        status, price = rng.choice(NEW_STATUSES), None
    else:
        status, price = None, int(round(state.price * rng.uniform(0.9, 0.98), -3))
    at = simulator.change(state.timeline.key, status=status, price=price)
    return Change(feed, state.timeline.key, status, price, at)
