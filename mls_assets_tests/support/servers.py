"""Servers the tests start on loopback: a free port, an ephemeral embedded MongoDB."""

from __future__ import annotations

import socket
import subprocess
import time

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
