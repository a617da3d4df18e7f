"""`mls-assets dev` (what `make dev` runs): the Dagster UI and daemon beside the leads API,
started together and stopped together, however the stop is asked for.

Why a launcher rather than two commands in the Makefile: started in the background, that
recipe stayed up on TERM and INT. GNU make forwards TERM only to its own child (the shell,
which waits for `dagster dev` before it runs a trap) and forwards no INT at all (it expects the
terminal to signal the whole group, and waits for its children); a job started with `&` from a
script inherits INT ignored, and `dagster dev` maps TERM onto its INT handler, so it ignored
both. This process is make's only child (`exec`), catches TERM, INT and HUP whatever it
inherited (its children therefore start with the default INT and exit on it), and stops when:

- it receives TERM, INT or HUP (make forwards TERM; Ctrl-C signals the whole group);
- its parent exits or is killed (Linux: a parent-death signal; elsewhere: polling);
- its parent is make and make stops catching a fatal signal: make resets the handler first
  thing when INT, TERM, HUP or QUIT arrives and then waits for us (Linux, from /proc);
- the UI or the API exits on its own (the other is stopped too).

Each server runs in its own process group. `dagster dev` gets TERM and stops its webserver,
daemon and code servers through their shutdown pipes; whatever is left in a group after the
grace period gets KILL, so no process of the launch outlives it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mls_assets.lib.paths import project_root

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# Signals whose handler GNU make resets on arrival (fatal_error_signal) before waiting for us.
MAKE_FATAL_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
POLL_S = 0.25
GRACE_S = 30.0
_PR_SET_PDEATHSIG = 1
# Loaded once here: the children call prctl between fork and exec, where loading is unsafe.
_LIBC = ctypes.CDLL(None) if sys.platform.startswith("linux") else None


@dataclass
class Server:
    name: str
    command: list[str]
    process: subprocess.Popen | None = None

    def start(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            self.command, env=env, cwd=project_root(), process_group=0, preexec_fn=_terminate_with_parent
        )

    def group_alive(self) -> bool:
        """Whether any process of this server's group (the server, its children) still runs."""
        if self.process is None:
            return False
        self.process.poll()  # reap the leader, or it counts as alive
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def signal_group(self, signum: int) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


@dataclass
class Launch:
    servers: list[Server]
    grace_s: float = GRACE_S
    stop_requested: threading.Event = field(default_factory=threading.Event)
    reason: str = ""

    def request_stop(self, reason: str) -> None:
        if not self.stop_requested.is_set():
            self.reason = reason
            self.stop_requested.set()

    def run(self) -> int:
        for signum in STOP_SIGNALS:
            signal.signal(signum, lambda s, _frame: self.request_stop(signal.Signals(s).name))
        parent = ParentWatch.of_current_process()
        env = os.environ.copy()
        for server in self.servers:
            if not self.stop_requested.is_set():
                server.start(env)
        exited_alone = None
        while not self.stop_requested.wait(POLL_S):
            exited_alone = next((s for s in self.servers if s.process and s.process.poll() is not None), None)
            if exited_alone:
                self.request_stop(f"{exited_alone.name} exited with {exited_alone.process.returncode}")
            else:
                reason = parent.reason_to_stop()
                if reason:
                    self.request_stop(reason)
        print(f"mls-assets dev: stopping ({self.reason}) ...", file=sys.stderr, flush=True)
        self.stop()
        print("mls-assets dev: stopped", file=sys.stderr, flush=True)
        return 1 if exited_alone else 0

    def stop(self) -> None:
        """TERM to each server (its own clean shutdown), then KILL to whatever of their
        groups is left after the grace period."""
        for server in self.servers:
            if server.process and server.process.poll() is None:
                server.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for server in self.servers:
            try:
                if server.process:
                    server.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for server in self.servers:
            if server.group_alive():
                server.signal_group(signal.SIGKILL)
            if server.process:
                server.process.wait()


@dataclass
class ParentWatch:
    """Our parent's exit, and (when it is GNU make) make handling a fatal signal."""

    parent_pid: int
    make_signals_caught: frozenset[int]

    @classmethod
    def of_current_process(cls) -> ParentWatch:
        parent_pid = os.getppid()
        _terminate_with_parent()
        is_make = _read_proc(parent_pid, "comm").strip() in {"make", "gmake"}
        caught = _caught_signals(parent_pid) & set(MAKE_FATAL_SIGNALS) if is_make else set()
        return cls(parent_pid, frozenset(caught))

    def reason_to_stop(self) -> str | None:
        if os.getppid() != self.parent_pid:
            return "the parent process exited"
        if self.make_signals_caught:
            given_up = self.make_signals_caught - _caught_signals(self.parent_pid)
            if given_up:
                return f"make received {signal.Signals(min(given_up)).name}"
        return None


def _read_proc(pid: int, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_text()
    except OSError:
        return ""


def _caught_signals(pid: int) -> set[int]:
    """Signals process `pid` has a handler for (SigCgt of /proc/PID/status); empty if unknown."""
    for line in _read_proc(pid, "status").splitlines():
        if line.startswith("SigCgt:"):
            mask = int(line.split(":", 1)[1].strip(), 16)
            return {n for n in range(1, 65) if mask & (1 << (n - 1))}
    return set()


def _terminate_with_parent() -> None:
    """Linux: ask the kernel for TERM when our parent dies (also run in each child before exec,
    so a killed launcher still stops the servers)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def launch(dagster_port: int, api_port: int, host: str = "127.0.0.1") -> Launch:
    """The UI (`dagster dev` on this checkout's workspace) and the leads API."""
    bin_dir = Path(sys.executable).parent
    os.environ.setdefault("MLS_UI_URL", f"http://{host}:{dagster_port}")
    return Launch(
        [
            Server(
                "dagster dev",
                [
                    str(bin_dir / "dagster"),
                    "dev",
                    "-w",
                    str(project_root() / "workspace.yaml"),
                    "-h",
                    host,
                    "-p",
                    str(dagster_port),
                ],
            ),
            Server(
                "leads API", [sys.executable, "-m", "mls_assets.cli", "api", "--host", host, "--port", str(api_port)]
            ),
        ]
    )
