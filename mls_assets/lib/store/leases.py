"""Leases in MongoDB: at most N holders of a name across processes and hosts.

Used for what must hold however a run is launched (the daemon's queue, `dagster dev`, the
CLI, `make run`): one run per feed at a time (`feed:<tenant.mls>`, 1 slot), a bounded
number of concurrent pulls per Spark token (`token:<hash>`, the token's own limit), and a
presence record per run (`run:<id>`) that tells a live run from a dead one.

A holder renews its leases from a heartbeat thread. A lease is free when nobody holds it,
when its holder stopped renewing for `ttl` seconds (a host that vanished), at once when
its holder was a process on this host that is gone (a SIGKILL), or when the run that held
it is known to have ended. A crashed run therefore blocks nothing for long, and nothing at
all on its own machine.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from mls_assets.lib.settings import SETTINGS

LEASES_COLLECTION = "leases"
DEFAULT_TTL_S = SETTINGS.lease_ttl_s
DEFAULT_WAIT_S = SETTINGS.lease_wait_s


class LeaseTimeout(RuntimeError):
    """A lease stayed taken by a live holder for longer than the caller would wait."""


def feed_lease(feed: str) -> str:
    return f"feed:{feed}"


def media_lease(feed: str) -> str:
    """A feed's media runs, one at a time; apart from its feed lease, so that photos being
    processed never hold up the feed's listing syncs."""
    return f"media:{feed}"


def token_lease(fingerprint: str) -> str:
    """Named by the token's fingerprint (`SparkClient.fingerprint`): never the token itself."""
    return f"token:{fingerprint}"


def run_lease(run_id: str) -> str:
    return f"run:{run_id}"


def _host_id() -> str:
    """This machine: host name plus boot id, so a rebooted host's pids are not trusted."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        boot = "-"
    return f"{socket.gethostname()}/{boot}"


def _process_start(pid: int) -> str:
    """When the process started (tells a reused pid from the holder), or '' if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22, after the command name


def _process_alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not started or _process_start(pid) in ("", started)


@dataclass(frozen=True)
class Holder:
    run_id: str
    host: str
    pid: int
    started: str

    @classmethod
    def this_process(cls, run_id: str) -> Holder:
        pid = os.getpid()
        return cls(run_id, _host_id(), pid, _process_start(pid))

    def describe(self) -> str:
        return f"run {self.run_id} (host {self.host.split('/')[0]}, pid {self.pid})"


def holder_of(doc: dict[str, Any]) -> Holder:
    return Holder(str(doc.get("runId")), str(doc.get("host")), int(doc.get("pid") or 0), str(doc.get("started") or ""))


# Runs of this process that ended without being able to release their leases (the database
# was unreachable then): their leases are free for this process at once.
_ended_here: set[str] = set()


def is_stale(doc: dict[str, Any], now: datetime, ttl: float, run_ended: Callable[[str], bool] | None = None) -> bool:
    """A lease whose holder can no longer be holding it."""
    if doc.get("runId") in _ended_here and doc.get("pid") == os.getpid():
        return True
    beat = doc.get("heartbeatAt")
    if beat is not None and beat.tzinfo is None:
        beat = beat.replace(tzinfo=UTC)
    if beat is None or now - beat > timedelta(seconds=ttl):
        return True
    holder = holder_of(doc)
    if holder.host == _host_id() and not _process_alive(holder.pid, holder.started):
        return True
    return bool(run_ended and run_ended(holder.run_id))


class Leases:
    """The leases of one run in one process; `close()` releases them all."""

    def __init__(
        self,
        database: Database,
        run_id: str,
        *,
        ttl: float = DEFAULT_TTL_S,
        run_ended: Callable[[str], bool] | None = None,
        log: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._collection = database[LEASES_COLLECTION]
        self.holder = Holder.this_process(run_id)
        self.ttl = ttl
        self._run_ended = run_ended
        self._log = log or (lambda message: None)
        self._sleep = sleep
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> Leases:
        """Record the run's presence and start renewing."""
        self.acquire(run_lease(self.holder.run_id), wait=0)
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        _ended_here.add(self.holder.run_id)
        with self._lock:
            held, self._held = sorted(self._held), set()
        self._release(*held)

    def __enter__(self) -> Leases:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _beat(self) -> None:
        interval = max(0.5, self.ttl / 6)
        while not self._stop.wait(interval):
            with self._lock:
                held = list(self._held)
            try:
                self._collection.update_many(
                    {"_id": {"$in": held}, "runId": self.holder.run_id, "pid": self.holder.pid},
                    {"$set": {"heartbeatAt": datetime.now(UTC)}},
                )
            except PyMongoError:  # the run will see the database error itself
                pass

    # -- taking and giving back ------------------------------------------------------------

    def acquire(self, name: str, *, slots: int = 1, wait: float = DEFAULT_WAIT_S, what: str | None = None) -> str:
        """Hold one of the `slots` of `name`, waiting up to `wait` seconds for one to be free.
        Re-entrant for the same run."""
        ids = [name] if slots == 1 else [f"{name}#{n}" for n in range(slots)]
        with self._lock:
            for lease_id in ids:
                if lease_id in self._held:
                    return lease_id
        deadline = time.monotonic() + wait
        pause, told = 0.2, False
        while True:
            for lease_id in ids:
                if self._try(lease_id):
                    with self._lock:
                        self._held.add(lease_id)
                    return lease_id
            remaining = deadline - time.monotonic()
            blocker = self._collection.find_one({"_id": ids[0]}) or {}
            if remaining <= 0:
                raise LeaseTimeout(
                    f"{what or name} is held by {holder_of(blocker).describe()} since "
                    f"{blocker.get('acquiredAt')}; gave up after waiting {wait:g} s"
                )
            if not told:
                self._log(f"{what or name} is held by {holder_of(blocker).describe()}: waiting (up to {wait:g} s)")
                told = True
            self._sleep(min(pause, remaining))
            pause = min(pause * 2, 5.0)

    def release(self, lease_id: str) -> None:
        with self._lock:
            self._held.discard(lease_id)
        self._release(lease_id)

    @contextmanager
    def holding(
        self, name: str, *, slots: int = 1, wait: float = DEFAULT_WAIT_S, what: str | None = None
    ) -> Iterator[str]:
        lease_id = self.acquire(name, slots=slots, wait=wait, what=what)
        try:
            yield lease_id
        finally:
            self.release(lease_id)

    def _document(self, lease_id: str, now: datetime) -> dict[str, Any]:
        holder = asdict(self.holder)
        return {
            "_id": lease_id,
            "runId": holder["run_id"],
            "host": holder["host"],
            "pid": holder["pid"],
            "started": holder["started"],
            "heartbeatAt": now,
            "acquiredAt": now,
        }

    def _try(self, lease_id: str) -> bool:
        now = datetime.now(UTC)
        document = self._document(lease_id, now)
        try:
            self._collection.insert_one(document)
            return True
        except DuplicateKeyError:
            pass
        current = self._collection.find_one({"_id": lease_id})
        if current is None:
            return False  # released meanwhile: the next round inserts
        mine = current.get("runId") == self.holder.run_id
        if not mine and not is_stale(current, now, self.ttl, self._run_ended):
            return False
        if not mine:
            self._log(f"taking over {lease_id} from {holder_of(current).describe()}: it is no longer running")
        guard = {
            "_id": lease_id,
            "runId": current.get("runId"),
            "pid": current.get("pid"),
            "heartbeatAt": current.get("heartbeatAt"),
        }
        taken = self._collection.update_one(guard, {"$set": {k: v for k, v in document.items() if k != "_id"}})
        return taken.modified_count == 1

    def _release(self, *lease_ids: str) -> None:
        if not lease_ids:
            return
        try:
            self._collection.delete_many(
                {"_id": {"$in": list(lease_ids)}, "runId": self.holder.run_id, "pid": self.holder.pid}
            )
        except PyMongoError:  # unreachable database: the leases expire by themselves
            pass


def stale_runs(database: Database, run_ids: list[str], ttl: float = DEFAULT_TTL_S) -> list[tuple[str, Holder]]:
    """The runs among `run_ids` whose process is gone (by their presence lease)."""
    now = datetime.now(UTC)
    found = database[LEASES_COLLECTION].find({"_id": {"$in": [run_lease(r) for r in run_ids]}})
    return [(doc["runId"], holder_of(doc)) for doc in found if is_stale(doc, now, ttl)]


def release_run(database: Database, run_id: str) -> int:
    """Free every lease a (dead) run held."""
    return database[LEASES_COLLECTION].delete_many({"runId": run_id}).deleted_count
