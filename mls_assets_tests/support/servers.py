"""Servers the tests start on loopback: a free port, an ephemeral embedded MongoDB, the
production Dagster instance on a PostgreSQL of its own."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import psutil

from mls_assets.lib.paths import project_root
from mls_assets.lib.store import embedded


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_ephemeral_server(port: int, storage: str = ":memory:", *extra: str) -> subprocess.Popen:
    """`:memory:` keeps everything in WiredTiger's cache: fine for tests, too small for
    benchmarks, which pass a folder instead."""
    process = subprocess.Popen(
        embedded.server_command(port, storage, *extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not embedded.is_serving("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"ephemeral SecantusDB did not start on port {port}")
        time.sleep(0.05)
    return process


def image_env(name: str) -> str:
    """A variable the image sets (`ENV` in deploy/Dockerfile)."""
    text = (project_root() / "deploy" / "Dockerfile").read_text()
    return next(line.split("=", 1)[1].split()[0] for line in text.splitlines() if line.strip().startswith(f"{name}="))


class ProductionInstance:
    """The Dagster instance of the image: a PostgreSQL of its own (pgserver, on this machine)
    with `deploy/dagster_home/dagster.yaml` and the image's DAGSTER_EVENT_BATCH_SIZE. `env`
    points a process at it."""

    def __init__(self, path: Path) -> None:
        import pgserver

        path.mkdir(parents=True, exist_ok=True)
        self.server = pgserver.get_server(path / "pgdata", cleanup_mode="stop")
        self.server.psql("CREATE DATABASE dagster;")
        self.home = path / "dagster_home_production"
        self.home.mkdir()
        (self.home / "dagster.yaml").write_text(
            (project_root() / "deploy" / "dagster_home" / "dagster.yaml").read_text()
        )
        self.env = {
            "DAGSTER_HOME": str(self.home),
            "DAGSTER_PG_URL": self.server.get_uri("dagster"),
            "DAGSTER_EVENT_BATCH_SIZE": image_env("DAGSTER_EVENT_BATCH_SIZE"),
        }

    def cpu_seconds(self) -> float:
        """CPU time of the PostgreSQL server and its backends so far (the live ones)."""
        postmaster = psutil.Process(self.server.get_pid())
        total = 0.0
        for process in [postmaster, *postmaster.children(recursive=True)]:
            try:
                times = process.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
            except psutil.Error:
                pass
        return total

    def stop(self) -> None:
        self.server.cleanup()
