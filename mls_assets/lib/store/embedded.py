"""The embedded MongoDB-compatible server (SecantusDB) used when `MONGODB_URI` is unset.

One server per checkout, shared by every process on the machine (webserver, daemon,
run workers, tests, the CLI). It is started on first use, reused while it runs, and
started only once when several processes race for it (a file lock serialises the
check-and-start). SecantusDB is GPL-2.0, so it is only ever run as a separate process
through its `secantusd-py` launcher; this module never imports it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock

from mls_assets.lib.paths import project_root, state_dir

LAUNCHER = "secantusd-py"
START_TIMEOUT_S = 60.0


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be started or reached."""


@dataclass(frozen=True)
class EmbeddedSettings:
    """Where the embedded server listens and keeps its files."""

    host: str
    port: int
    home: Path  # holds data/, server.json, server.lock, server.log

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def state_file(self) -> Path:
        return self.home / "server.json"

    @property
    def lock_file(self) -> Path:
        return self.home / "server.lock"

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"


@dataclass(frozen=True)
class ServerInfo:
    uri: str
    pid: int | None
    started_here: bool
    data_dir: str


def default_port(root: Path) -> int:
    """A port derived from the checkout path: stable for one checkout, distinct between two."""
    return 27100 + zlib.crc32(str(root).encode()) % 800


def settings_from_env() -> EmbeddedSettings:
    root = project_root()
    port = int(os.environ.get("MLS_EMBEDDED_MONGO_PORT") or default_port(root))
    home = Path(os.environ.get("MLS_EMBEDDED_MONGO_HOME") or state_dir() / "mongo")
    return EmbeddedSettings(host="127.0.0.1", port=port, home=home)


def launcher_path() -> str:
    """`secantusd-py` next to this interpreter (the project's venv), else on PATH."""
    beside = Path(sys.executable).parent / LAUNCHER
    if beside.exists():
        return str(beside)
    found = shutil.which(LAUNCHER)
    if not found:
        raise EmbeddedServerError(
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

    client = MongoClient(
        host, port, directConnection=True, serverSelectionTimeoutMS=int(timeout * 4000)
    )
    try:
        client.admin.command("ping")
        return True
    except Exception:
        return False
    finally:
        client.close()


def _read_state(settings: EmbeddedSettings) -> dict:
    try:
        return json.loads(settings.state_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def status(settings: EmbeddedSettings | None = None) -> ServerInfo | None:
    """The running server of this checkout, or None."""
    settings = settings or settings_from_env()
    if not is_serving(settings.host, settings.port):
        return None
    state = _read_state(settings)
    pid = state.get("pid") if _pid_alive(state.get("pid")) else None
    return ServerInfo(settings.uri, pid, False, str(settings.data_dir))


def ensure_running(settings: EmbeddedSettings | None = None) -> ServerInfo:
    """Start the server unless it already runs; safe to call from many processes at once."""
    settings = settings or settings_from_env()
    running = status(settings)
    if running:
        return running
    settings.home.mkdir(parents=True, exist_ok=True)
    with FileLock(str(settings.lock_file), timeout=START_TIMEOUT_S * 2):
        running = status(settings)  # another process may have won the race
        if running:
            return running
        return _start(settings)


def _start(settings: EmbeddedSettings) -> ServerInfo:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        launcher_path(),
        "--host", settings.host,
        "--port", str(settings.port),
        "--storage-path", str(settings.data_dir),
        "--log-level", "WARNING",
    ]  # fmt: skip
    with open(settings.log_file, "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the process that started it
            cwd=settings.home,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not is_serving(settings.host, settings.port):
        if process.poll() is not None:
            tail = settings.log_file.read_text(errors="replace")[-2000:]
            raise EmbeddedServerError(
                f"embedded MongoDB exited with code {process.returncode} "
                f"(port {settings.port}); log tail:\n{tail}"
            )
        if time.monotonic() > deadline:
            process.terminate()
            raise EmbeddedServerError(f"embedded MongoDB did not answer on port {settings.port}")
        time.sleep(0.05)
    state = {"pid": process.pid, **asdict(settings), "home": str(settings.home)}
    settings.state_file.write_text(json.dumps(state, indent=2))
    return ServerInfo(settings.uri, process.pid, True, str(settings.data_dir))


def stop(settings: EmbeddedSettings | None = None, timeout: float = 15.0) -> bool:
    """Stop the server this checkout started; True when one was stopped."""
    settings = settings or settings_from_env()
    if not settings.home.exists():
        return False
    with FileLock(str(settings.lock_file), timeout=START_TIMEOUT_S * 2):
        pid = _read_state(settings).get("pid")
        if not _pid_alive(pid):
            settings.state_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.05)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            _reap(pid)
        settings.state_file.unlink(missing_ok=True)
        return True


def _reap(pid: int) -> None:
    """Collect the exit status when the server is our own child (else it stays a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
