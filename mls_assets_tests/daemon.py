"""A real `dagster-daemon` for the tests and benchmarks that need sensors and the run queue
to work as in production (its own process, this checkout's workspace)."""

import subprocess
import sys
from pathlib import Path

from mls_assets.lib.paths import project_root

# `dagster-daemon` with the backfill daemon's loop shortened: Dagster fixes it at 30 s
# (`DEFAULT_DAEMON_INTERVAL_SECONDS`, read when the loop starts).
SHORT_BACKFILL_LOOP = """import sys
import dagster._daemon.controller as controller
controller.DEFAULT_DAEMON_INTERVAL_SECONDS = {seconds}
from dagster._daemon.cli import main
sys.exit(main())"""


def start_daemon(env: dict, log: Path, backfill_loop_s: int | None = None) -> subprocess.Popen:
    """The daemon as production runs it; with `backfill_loop_s`, its backfill loop that often.
    A backfill takes two of that loop's iterations (submit the runs, then mark it done): a
    test of a backfill would wait a minute or two on Dagster's clock alone. What each
    iteration does is Dagster's own."""
    if backfill_loop_s is None:
        command = [str(Path(sys.executable).parent / "dagster-daemon")]
    else:
        command = [sys.executable, "-c", SHORT_BACKFILL_LOOP.format(seconds=int(backfill_loop_s))]
    return subprocess.Popen(
        [*command, "run", "-w", str(project_root() / "workspace.yaml")],
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
