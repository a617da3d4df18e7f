"""The embedded MongoDB-compatible server (SecantusDB) used when `MONGODB_URI` is unset.

One server per checkout, shared by every process on the machine (webserver, daemon,
run workers, tests, the CLI); see `mls_assets.lib.services` for the start-once logic.
SecantusDB is GPL-2.0, so it is only ever run as a separate process through its
`secantusd-py` launcher; this module never imports it.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import zlib
from pathlib import Path

from mls_assets.lib.paths import project_root, state_dir
from mls_assets.lib.services import LocalService, ServiceError, ServiceInfo

LAUNCHER = "secantusd-py"
HOST = "127.0.0.1"


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


def service() -> LocalService:
    port = int(os.environ.get("MLS_EMBEDDED_MONGO_PORT") or default_port(project_root()))
    home = Path(os.environ.get("MLS_EMBEDDED_MONGO_HOME") or state_dir() / "mongo")
    data = home / "data"

    def command() -> list[str]:
        data.mkdir(parents=True, exist_ok=True)
        return [
            launcher_path(),
            "--host",
            HOST,
            "--port",
            str(port),
            "--storage-path",
            str(data),
            "--log-level",
            "WARNING",
        ]

    return LocalService(
        name="embedded MongoDB",
        home=home,
        url=f"mongodb://{HOST}:{port}/?directConnection=true",
        is_up=lambda: is_serving(HOST, port),
        command=command,
    )


def ensure_running() -> ServiceInfo:
    return service().ensure_running()


def status() -> ServiceInfo | None:
    return service().status()


def stop() -> bool:
    return service().stop()
