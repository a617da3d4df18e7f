"""A real `dagster-daemon` for the tests and benchmarks that need sensors and the run queue
to work as in production (its own process, this checkout's workspace).

One difference: Dagster fixes the backfill daemon's loop at 30 s (`DEFAULT_DAEMON_INTERVAL_SECONDS`,
read when the loop starts), and a backfill takes two of its iterations (submit the runs, then
mark it done), so a test waited a minute or two on that clock alone. The tests' daemon loops
every `BACKFILL_LOOP_S`; what each iteration does is Dagster's own."""

import subprocess
import sys
from pathlib import Path

from mls_assets.lib.paths import project_root

BACKFILL_LOOP_S = 3
LAUNCH = f"""import sys
import dagster._daemon.controller as controller
controller.DEFAULT_DAEMON_INTERVAL_SECONDS = {BACKFILL_LOOP_S}
from dagster._daemon.cli import main
sys.exit(main())"""


def start_daemon(env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "run", "-w", str(project_root() / "workspace.yaml")],
        env=env,
        cwd=project_root(),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def stop_process(process: subprocess.Popen, grace_s: float = 60) -> None:
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
