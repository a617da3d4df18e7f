"""Local background services shared by every process of a checkout.

The embedded MongoDB and the MLS simulator both follow one pattern: started on first
use as a detached process, reused while it answers, started once even when several
processes race (a file lock around check-and-start), stopped by hand with the CLI.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

START_TIMEOUT_S = 60.0


class ServiceError(RuntimeError):
    """A local service could not be started or reached."""


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    url: str
    pid: int | None
    started_here: bool


@dataclass(frozen=True)
class LocalService:
    """A detached process listening on `port`, with its files under `home`."""

    name: str
    home: Path
    url: str
    is_up: Callable[[], bool]
    command: Callable[[], Sequence[str]]

    @property
    def state_file(self) -> Path:
        return self.home / "server.json"

    @property
    def lock_file(self) -> Path:
        return self.home / "server.lock"

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    def _pid(self) -> int | None:
        try:
            pid = json.loads(self.state_file.read_text()).get("pid")
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return pid if _alive(pid) else None

    def status(self) -> ServiceInfo | None:
        if not self.is_up():
            return None
        return ServiceInfo(self.name, self.url, self._pid(), False)

    def ensure_running(self) -> ServiceInfo:
        running = self.status()
        if running:
            return running
        self.home.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.lock_file), timeout=START_TIMEOUT_S * 2):
            running = self.status()  # another process may have won the race
            return running or self._start()

    def _start(self) -> ServiceInfo:
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(
                list(self.command()),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the process that started it
                cwd=self.home,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.is_up():
            if process.poll() is not None:
                tail = self.log_file.read_text(errors="replace")[-2000:]
                raise ServiceError(f"{self.name} exited with code {process.returncode}; log tail:\n{tail}")
            if time.monotonic() > deadline:
                process.terminate()
                raise ServiceError(f"{self.name} did not answer at {self.url}")
            time.sleep(0.05)
        self.state_file.write_text(json.dumps({"pid": process.pid, "url": self.url}))
        return ServiceInfo(self.name, self.url, process.pid, True)

    def stop(self, timeout: float = 15.0) -> bool:
        if not self.home.exists():
            return False
        with FileLock(str(self.lock_file), timeout=START_TIMEOUT_S * 2):
            pid = self._pid()
            self.state_file.unlink(missing_ok=True)
            if pid is None:
                return False
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
                _reap(pid)
            return True


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap(pid: int) -> None:
    """Collect the exit status when the service is our own child (else it stays a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
