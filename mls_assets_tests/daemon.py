"""A real `dagster-daemon` for the tests and benchmarks that need sensors and the run queue
to work as in production (its own process, this checkout's workspace)."""

import subprocess
import sys
from pathlib import Path

from mls_assets.lib.paths import project_root


def start_daemon(env: dict, log: Path) -> subprocess.Popen:
    daemon = Path(sys.executable).parent / "dagster-daemon"
    return subprocess.Popen(
        [str(daemon), "run", "-w", str(project_root() / "workspace.yaml")],
        env=env,
        cwd=project_root(),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def stop_process(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
