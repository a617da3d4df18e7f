"""`make dev` started in the background stops, with every process it started, when make gets
TERM or INT or is killed: the README's `make dev` run as a script or a supervisor runs it.

Each case starts the real `make dev` (embedded database and simulator in the test's own
folders, no feeds so that no run starts), waits for the UI and the API to answer, signals only
make's pid (not its group: that is what `kill PID` and a supervisor do), and asserts that make
and every descendant it had are gone. The database and simulator are detached services that
outlive `make dev` by design (`make db-stop`, `make sim-stop`); the test stops them itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from mls_assets.lib.paths import project_root
from mls_assets_tests.support.servers import free_port

# make's own exit is bounded by the launcher's grace period (30 s) plus its clean stop and the
# KILL of what is left. Alone that takes 16 s from the start; beside `make test`'s heaviest tests
# on a 2-core machine the same stop passed 45 s (twice in one run), hence the room.
STOP_DEADLINE_S = 90


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def dev_env(tmp_path: Path):
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text("tenants: []\n")
    env = {k: v for k, v in os.environ.items() if k not in {"MONGODB_URI", "MONGODB_DATABASE"}}
    env.update(
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
        MLS_TENANTS_FILE=str(tenants),
        MLS_EMBEDDED_MONGO_HOME=str(tmp_path / "mongo"),
        MLS_EMBEDDED_MONGO_PORT=str(free_port()),
        MLS_SIMULATOR_HOME=str(tmp_path / "simulator"),
        MLS_SIMULATOR_PORT=str(free_port()),
        DAGSTER_PORT=str(free_port()),
        MLS_API_PORT=str(free_port()),
    )
    yield env
    cli = [sys.executable, "-m", "mls_assets.cli"]
    subprocess.run([*cli, "sim", "stop"], env=env, capture_output=True, timeout=60)
    subprocess.run([*cli, "db", "stop"], env=env, capture_output=True, timeout=60)


def _start_make_dev(env: dict, log: Path) -> tuple[subprocess.Popen, list[psutil.Process]]:
    make = subprocess.Popen(
        ["make", "--no-print-directory", "dev"],
        cwd=project_root(),
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    ui = f"http://127.0.0.1:{env['DAGSTER_PORT']}/server_info"
    api = f"http://127.0.0.1:{env['MLS_API_PORT']}/openapi.json"
    deadline = time.monotonic() + 180
    while not (_answers(ui) and _answers(api)):
        assert make.poll() is None, f"make dev exited early:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"make dev did not come up:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)
    descendants = psutil.Process(make.pid).children(recursive=True)
    commands = [" ".join(p.cmdline()) for p in descendants]
    assert any("dagster_webserver" in c for c in commands), commands
    assert any("dagster._daemon" in c for c in commands), commands
    assert any("code-server" in c or "api grpc" in c for c in commands), commands
    assert any("mls_assets.cli api" in c for c in commands), commands
    return make, descendants


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT", "SIGKILL"])
def test_make_dev_stops_with_everything_it_started(dev_env, tmp_path, stop):
    log = tmp_path / "make_dev.log"
    make, descendants = _start_make_dev(dev_env, log)

    try:
        os.kill(make.pid, getattr(signal, stop))
        try:
            make.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            alive = [" ".join(p.cmdline())[:100] for p in descendants if p.is_running() and p.status() != "zombie"]
            pytest.fail(
                f"make still running {STOP_DEADLINE_S} s after {stop}; alive: {alive}\n{log.read_text()[-4000:]}"
            )
        _, alive = psutil.wait_procs(descendants, timeout=STOP_DEADLINE_S)
        left = [(p.pid, " ".join(p.cmdline())[:120]) for p in alive if p.is_running() and p.status() != "zombie"]
    finally:  # whatever happened, nothing of this test outlives it
        for process in [psutil.Process(make.pid), *descendants] if make.poll() is None else descendants:
            with contextlib.suppress(psutil.Error):
                process.kill()
    assert not left, f"left running after {stop} to make: {left}\n{log.read_text()[-3000:]}"
    if stop != "SIGKILL":  # the launcher says why it stopped, and the UI shut down cleanly
        text = log.read_text()
        assert "mls-assets dev: stopping" in text and "mls-assets dev: stopped" in text, text[-3000:]
        assert "Dagster services shut down" in text, text[-3000:]
