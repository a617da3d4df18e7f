"""The embedded MongoDB-compatible server (SecantusDB) used when `MONGODB_URI` is unset.

One server per checkout, shared by every process on the machine (webserver, daemon,
run workers, tests, the CLI); see `mls_assets.lib.services` for the start-once logic.
SecantusDB is GPL-2.0, so it is only ever run as a separate process through its
`secantusd-py` launcher; this module never imports it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
import zlib
from pathlib import Path

from mls_assets.lib.paths import project_root, state_dir
from mls_assets.lib.services import LocalService, ServiceError, ServiceInfo

LAUNCHER = "secantusd-py"
HOST = "127.0.0.1"
CACHE_ENV = "MLS_EMBEDDED_MONGO_CACHE"
GIB, MIB = 1024**3, 1024**2


def cache_size_for(memory_bytes: int) -> str:
    """WiredTiger's cache as MongoDB sizes it: half of (memory - 1 GB), at least 256 MB. The
    embedded server's own default is 1 GB, in which a 50k-listing sync stalled 30-100 s inside
    the storage engine with no process using a CPU; a larger cache removed the stall."""
    return f"{max(256 * MIB, (memory_bytes - GIB) // 2) // MIB}M"


def available_memory() -> int:
    """The machine's memory, or its container's limit when that is smaller (cgroup v2 or v1)."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit in (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes")):
        try:
            text = limit.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            memory = min(memory, int(text))
    return memory


def cache_size() -> str:
    """`MLS_EMBEDDED_MONGO_CACHE` (e.g. `4G`, `512M`), else MongoDB's rule for this machine."""
    chosen = os.environ.get(CACHE_ENV, "").strip()
    if not chosen:
        return cache_size_for(available_memory())
    if not re.fullmatch(r"[1-9][0-9]*[MG]", chosen):
        raise ServiceError(f"{CACHE_ENV}={chosen[:20]!r}: expected a size such as 512M or 4G")
    return chosen


def server_uri(port: int, host: str = HOST) -> str:
    """How every process reaches an embedded server: directly, and without retryable writes.

    The embedded server keeps each retryable write's reply in a table it scans on every write
    and sorts once it holds 10,000 (MongoDB keeps them in an index). Measured: an `update_one`
    cost it 0.69 ms of CPU over the first 1,000 writes and 2.9 ms over the next 11,000; 0.48
    and 0.45 ms without; at 2,000 feeds the table is full within minutes. A retry protects a
    write from a dropped connection to a replica set's primary; here the server is one local
    process, and a failed write fails its step, whose run is retried (the writers are built to
    be re-run). A `MONGODB_URI` keeps the driver's default, retryable writes."""
    return f"mongodb://{host}:{port}/?directConnection=true&retryWrites=false"


def default_port(root: Path, base: int = 27100) -> int:
    """A port derived from the checkout path: stable for one checkout, distinct between two."""
    return base + zlib.crc32(str(root).encode()) % 800


def launcher_path() -> str:
    """`secantusd-py` next to this interpreter (the project's venv), else on PATH."""
    beside = Path(sys.executable).parent / LAUNCHER
    if beside.exists():
        return str(beside)
    found = shutil.which(LAUNCHER)
    if not found:
        raise ServiceError(
            f"`{LAUNCHER}` not found: install the embedded extra (`pip install -e '.[embedded]'`, "
            "done by `make run`/`make test`) or set MONGODB_URI to use an existing server."
        )
    return found


def is_serving(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts connections and answers a Mongo `ping`."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError:
        return False
    from pymongo import MongoClient

    client = MongoClient(host, port, directConnection=True, serverSelectionTimeoutMS=int(timeout * 4000))
    try:
        client.admin.command("ping")
        return True
    except Exception:
        return False
    finally:
        client.close()


def server_command(port: int, storage: str, *extra: str) -> list[str]:
    """The launcher's command line for a server on loopback `port` that stores in `storage`
    (a folder, or `:memory:`), with `extra` flags such as `--cache-size`.

    `--standalone`: the server presents itself as a standalone server, not as a one-member
    replica set, and so keeps no oplog. The project uses neither change streams nor
    transactions, and the oplog cost 12.6% of the server's CPU in a full sync at 10k
    listings: every written document was encoded again and written a second time."""
    return [
        launcher_path(),
        "--host",
        HOST,
        "--port",
        str(port),
        "--storage-path",
        storage,
        "--log-level",
        "WARNING",
        "--standalone",
        *extra,
    ]


def service() -> LocalService:
    port = int(os.environ.get("MLS_EMBEDDED_MONGO_PORT") or default_port(project_root()))
    home = Path(os.environ.get("MLS_EMBEDDED_MONGO_HOME") or state_dir() / "mongo")
    data = home / "data"

    def command() -> list[str]:
        data.mkdir(parents=True, exist_ok=True)
        return server_command(port, str(data), "--cache-size", cache_size())

    return LocalService(
        name="embedded MongoDB",
        home=home,
        url=server_uri(port),
        is_up=lambda: is_serving(HOST, port),
        command=command,
    )


def ensure_running() -> ServiceInfo:
    return service().ensure_running()


def status() -> ServiceInfo | None:
    return service().status()


def stop() -> bool:
    return service().stop()
