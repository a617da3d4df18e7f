"""The pipeline benchmark's contenders, each run in a process of its own so that its peak
RSS is its own (`python -m mls_assets_tests.bench.contenders <name> '<json spec>'`; prints
one JSON line: seconds, documents written, documents stored).

- `floor`: fetch every page (`_limit=1000`, photos expanded) and `insert_many` the listings
  and their photos, unordered, no indexes: what a first sync cannot beat.
- `seed`: the script pipeline this project replaces, as its documentation describes it:
  fetch everything into one JSON file, flatten it into another, then `UpdateOne(upsert)`
  batches of 500 by listingId, then the same for the photos.
- `floor_contract`: the floor for what a correct first sync must store here: the raw
  record, the flattened listing, the listing in its status collection and its photos in
  theirs, `insert_many` only (no lookups, no hashing, no history, no checks), then the
  indexes the collection catalogue declares (unique keys, the write sequence, 2dsphere,
  TTL...). What the chain does beyond this is its bookkeeping.
- `chain`: `replication_job` for today's partition of the feed, checks included.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pymongo import MongoClient, UpdateOne, monitoring

from mls_assets.lib.sources.spark.client import SparkClient
from mls_assets.lib.tenants import FeedConfig
from mls_assets.simulator import DEMO_TOKEN, GPS_MLS_ID

FEED = "bench.gps"
IDENTITY = FeedConfig(tenant_id="bench", mls="gps", mls_id=GPS_MLS_ID)


def _database(spec: dict):
    return MongoClient(spec["uri"], tz_aware=True)[spec["database"]]


def _photos(record: dict) -> list[dict]:
    fields = record.get("StandardFields", {})
    return [
        {**photo, "ListingKey": fields.get("ListingKey"), "Order": n}
        for n, photo in enumerate(fields.get("Photos") or [])
    ]


def floor(spec: dict) -> dict:
    database = _database(spec)
    written = 0
    with SparkClient(spec["sim_url"], DEMO_TOKEN) as client:
        for page in client.pages(limit=1000, expand=["Photos"]):
            database["listings"].insert_many([dict(r) for r in page.results], ordered=False)
            photos = [p for r in page.results for p in _photos(r)]
            if photos:
                database["photos"].insert_many(photos, ordered=False)
            written += len(page.results) + len(photos)
    return {"written": written}


def floor_contract(spec: dict) -> dict:
    from datetime import datetime

    from mls_assets.lib.catalogue import EXPIRED_PHOTOS, FLATTENED, PHOTOS, PHOTOS_OF_CLASS, RAW, STATUS_COLLECTIONS
    from mls_assets.lib.replication.routing import home_of_listing
    from mls_assets.lib.store.indexes import ensure_indexes
    from mls_assets.lib.store.naming import FeedKey
    from mls_assets.lib.transform.flatten import flatten
    from mls_assets.lib.transform.screen import clean

    database, feed = _database(spec), FeedKey.parse(FEED)
    now = datetime.fromisoformat(spec["now"])
    specs = [RAW, FLATTENED, *STATUS_COLLECTIONS.values(), PHOTOS, EXPIRED_PHOTOS]
    written = 0
    with SparkClient(spec["sim_url"], DEMO_TOKEN) as client:
        for page in client.pages(limit=1000, expand=["Photos"]):
            out: dict[str, list[dict]] = {s.name: [] for s in specs}
            for record in page.results:
                record = clean(record)
                fields = record.get("StandardFields", {})
                out[RAW.name].append({"listingKey": fields.get("ListingKey"), "record": record})
                try:
                    doc, photos = flatten(record, IDENTITY, now)
                except ValueError:
                    continue
                out[FLATTENED.name].append(doc)
                home = home_of_listing(doc, now)
                if home is not None:
                    out[STATUS_COLLECTIONS[home].name].append(dict(doc))
                    out[PHOTOS_OF_CLASS[home].name].extend({"_id": p["photoId"], **p} for p in photos)
            for collection_spec in specs:
                if out[collection_spec.name]:
                    database[collection_spec.collection_name(feed)].insert_many(
                        out[collection_spec.name], ordered=False
                    )
                    written += len(out[collection_spec.name])
    for collection_spec in specs:
        ensure_indexes(database[collection_spec.collection_name(feed)], collection_spec.all_indexes())
    return {"written": written}


def seed(spec: dict) -> dict:
    from mls_assets.lib.transform.flatten import flatten
    from mls_assets.lib.transform.screen import clean

    database = _database(spec)
    work = Path(spec["workdir"])
    now = __import__("datetime").datetime.now(__import__("datetime").UTC)
    listings: list[dict] = []
    with SparkClient(spec["sim_url"], DEMO_TOKEN) as client:  # fetch.py: everything, then one file
        for page in client.pages(limit=1000, expand=["Photos"]):
            listings.extend(clean(r) for r in page.results)
    (work / "all_listings_with_expansions.json").write_text(json.dumps(listings))
    raw = json.loads((work / "all_listings_with_expansions.json").read_text())  # flatten.py
    flat, photos = [], []
    for record in raw:
        try:
            doc, listing_photos = flatten(record, IDENTITY, now)
        except ValueError:
            continue
        flat.append(doc)
        photos.extend(listing_photos)
    (work / "flattened_all_listings_preserved.json").write_text(json.dumps(flat, default=str))
    database["listings"].create_index("listingId", unique=True)
    database["photos"].create_index("photoId", unique=True)
    written = 0
    for start in range(0, len(flat), 500):  # seed.py: UpdateOne(upsert) by listingId, batches of 500
        batch = [UpdateOne({"listingId": d["listingId"]}, {"$set": d}, upsert=True) for d in flat[start : start + 500]]
        written += len(batch)
        database["listings"].bulk_write(batch, ordered=False)
    for start in range(0, len(photos), 500):  # cache_photos.py: the same for every photo
        batch = [UpdateOne({"photoId": p["photoId"]}, {"$set": p}, upsert=True) for p in photos[start : start + 500]]
        written += len(batch)
        database["photos"].bulk_write(batch, ordered=False)
    return {"written": written}


class CommandTimes(monitoring.CommandListener):
    """Server time per kind of command (pymongo's command monitoring): where a run waits.
    The lease heartbeats wait in a thread of their own and are kept apart. Reads are also
    summed by collection and the fields they filter on, index builds by collection."""

    KINDS = {
        "insert": "inserts",
        "update": "updates",
        "delete": "deletes",
        "createIndexes": "index builds",
        "find": "reads",
        "getMore": "reads",
        "aggregate": "reads",
        "count": "reads",
        "distinct": "reads",
    }

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.reads: dict[str, float] = {}  # read commands by collection (the feed's prefix left out)
        self.builds: dict[str, float] = {}  # index builds by collection
        self._kinds: dict[int, tuple[str, str]] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = str(event.command.get(event.command_name))
        on_leases = target == "leases"
        kind = "lease heartbeats" if on_leases else self.KINDS.get(event.command_name, "other")
        fields = ",".join(sorted(event.command.get("filter") or event.command.get("query") or {})) or "all"
        name = target.removeprefix(FEED.replace(".", "_") + "_")
        self._kinds[event.request_id] = (kind, f"{event.command_name} {name} by {fields}")

    def succeeded(self, event: monitoring.CommandSucceededEvent | monitoring.CommandFailedEvent) -> None:
        kind, target = self._kinds.pop(event.request_id, ("other", ""))
        self.seconds[kind] = self.seconds.get(kind, 0.0) + event.duration_micros / 1e6
        if kind == "reads" and not target.startswith("getMore"):
            self.reads[target] = self.reads.get(target, 0.0) + event.duration_micros / 1e6
        if kind == "index builds":
            collection = target.split()[1]
            self.builds[collection] = self.builds.get(collection, 0.0) + event.duration_micros / 1e6

    failed = succeeded

    def totals(self) -> dict[str, float]:
        return {kind: round(seconds, 1) for kind, seconds in sorted(self.seconds.items(), key=lambda kv: -kv[1])}

    def top_reads(self, count: int = 6) -> dict[str, float]:
        return _longest(self.reads, count)

    def index_builds(self) -> dict[str, float]:
        return _longest(self.builds, len(self.builds))


def _longest(seconds: dict[str, float], count: int) -> dict[str, float]:
    return {name: round(s, 2) for name, s in sorted(seconds.items(), key=lambda kv: -kv[1])[:count]}


def process_cpu(pid: int) -> float:
    """CPU seconds a process has used so far (Linux `/proc`)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class MemorySamples:
    """The process's resident memory every 0.2 s while a run goes on (Linux `/proc`), to say
    which step holds the peak; and the CPU this process and the server (`server_pid`) used
    by then, to say which step keeps which of them busy and how much they overlap."""

    def __init__(self, server_pid: int | None = None) -> None:
        self.samples: list[tuple[float, float]] = []  # (time.time(), MiB)
        self.cpu: list[tuple[float, float, float]] = []  # (time.time(), client CPU s, server CPU s)
        self._server_pid = server_pid
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self._take()

    def _take(self) -> None:
        resident = int(Path("/proc/self/statm").read_text().split()[1])
        self.samples.append((time.time(), resident * os.sysconf("SC_PAGE_SIZE") / 2**20))
        if self._server_pid is not None:
            self.cpu.append((time.time(), time.process_time(), process_cpu(self._server_pid)))

    def cpu_between(self, start: float, end: float) -> tuple[float, float] | None:
        """(client, server) CPU seconds from the last sample before `start` to the first after
        `end` (a step of under 0.2 s may show nothing)."""
        before = [s for s in self.cpu if s[0] <= start]
        after = [s for s in self.cpu if s[0] >= end]
        if not before or not after:
            return None
        return round(after[0][1] - before[-1][1], 1), round(after[0][2] - before[-1][2], 1)

    def __enter__(self) -> MemorySamples:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._take()  # the last step ends between two samples

    def peak(self, start: float, end: float) -> int:
        return round(max((mib for at, mib in self.samples if start <= at <= end), default=0))


class CollectorTimes:
    """Time Python's cycle collector took, and how many collections of each generation
    (`gc.callbacks`), while the block runs."""

    def __init__(self) -> None:
        self.seconds, self.collections = 0.0, [0, 0, 0]
        self._started = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections[info["generation"]] += 1

    def __enter__(self) -> CollectorTimes:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._callback)


def chain(spec: dict) -> dict:
    commands = CommandTimes()
    monitoring.register(commands)  # before any client exists: every client the run opens reports to it
    import dagster as dg

    from mls_assets.definitions import defs
    from mls_assets.defs.partitions import feed_day_key

    os.environ["MONGODB_URI"] = spec["uri"]
    os.environ["MONGODB_DATABASE"] = spec["database"]
    os.environ["SPARK_API_BASE_URL"] = spec["sim_url"]
    instance = dg.DagsterInstance.get()
    job = defs().resolve_job_def("replication_job")
    run_config = {"resources": {"clock": {"config": {"fixed_now": spec["now"]}}}}
    started = time.perf_counter()  # the run itself: the process and its imports are Dagster's fixed cost
    cpu_started = time.process_time()  # every thread of this process: the run's own client CPU
    with MemorySamples(spec.get("server_pid")) as memory, CollectorTimes() as collector:
        result = job.execute_in_process(
            instance=instance,
            partition_key=str(feed_day_key(FEED, spec["day"])),
            run_config=run_config,
            raise_on_error=False,
        )
    seconds = time.perf_counter() - started
    run_cpu = time.process_time() - cpu_started
    if not result.success:
        raise SystemExit("the chain failed")
    written, steps, peaks, cpu = 0, {}, {}, {}
    for event in result.get_asset_materialization_events():
        meta = event.materialization.metadata
        written += sum(meta[name].value for name in ("inserted", "updated") if name in meta)
    for stat in instance.get_run_step_stats(result.run_id):
        steps[stat.step_key] = round(stat.end_time - stat.start_time, 2)
        peaks[stat.step_key] = memory.peak(stat.start_time, stat.end_time)
        cpu[stat.step_key] = memory.cpu_between(stat.start_time, stat.end_time)
    return {
        "written": written,
        "steps": steps,
        "rss_by_step": peaks,
        "cpu_by_step": cpu,
        "gc": {"seconds": round(collector.seconds, 2), "collections": collector.collections},
        "run_seconds": seconds,
        "run_cpu": run_cpu,
        "commands": commands.totals(),
        "reads": commands.top_reads(),
        "index_builds": commands.index_builds(),
    }


def stored(spec: dict) -> int:
    database = _database(spec)
    return sum(database[name].estimated_document_count() for name in database.list_collection_names())


def main() -> int:
    name, spec = sys.argv[1], json.loads(sys.argv[2])
    started = time.perf_counter()
    outcome: dict[str, Any] = {"floor": floor, "floor_contract": floor_contract, "seed": seed, "chain": chain}[name](
        spec
    )
    outcome["process_seconds"] = time.perf_counter() - started
    outcome["seconds"] = outcome.pop("run_seconds", outcome["process_seconds"])
    outcome["stored"] = stored(spec)
    print(json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
