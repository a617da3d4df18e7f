"""Submitting replication runs to the Dagster instance's run queue, as the UI does: each run
is created by Dagster's own `dagster job launch` from the code location's snapshot, tagged with
its feed (so the per-feed limit of the queue applies) and launched by the daemon when its turn
comes. The command is Dagster's public interface for this; the instance is `DAGSTER_HOME`'s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mls_assets.defs.automation.run_requests import FEED_TAG, TRIGGER_TAG
from mls_assets.defs.partitions import feed_day_key
from mls_assets.lib.paths import project_root

CHAIN_JOB = "replication_job"
LAUNCHES_AT_ONCE = 4  # each launch loads the code location in its own process


class RunSubmissionError(RuntimeError):
    """`dagster job launch` refused a run; the message is the command's own last lines."""


def chain_run_tags(feed: str, day: str, trigger: str) -> dict[str, str]:
    """The tags a run of one feed-day partition of the chain carries (Dagster's partition
    tags and the feed tag the run queue limits by)."""
    key = feed_day_key(feed, day)
    return {
        "dagster/partition": str(key),
        "dagster/partition/day": day,
        "dagster/partition/feed": feed,
        FEED_TAG: feed,
        TRIGGER_TAG: trigger,
    }


def submit_chain_runs(
    partitions: Iterable[tuple[str, str]],
    *,
    trigger: str = "operator",
    run_config: dict | None = None,
    workspace: Path | None = None,
) -> list[str]:
    """Queue one `replication_job` run per `(feed, day)` on the instance of `DAGSTER_HOME` and
    the code location of `workspace` (default: the checkout's `workspace.yaml`); their run ids,
    in the order of `partitions`."""
    workspace = Path(workspace or project_root() / "workspace.yaml").absolute()
    if not os.environ.get("DAGSTER_HOME"):
        raise RunSubmissionError("DAGSTER_HOME is not set: there is no instance to queue the runs on")
    launches = [(str(uuid.uuid4()), chain_run_tags(feed, day, trigger)) for feed, day in partitions]
    with ThreadPoolExecutor(LAUNCHES_AT_ONCE) as pool:
        list(pool.map(lambda launch: _launch(workspace, run_config or {}, *launch), launches))
    return [run_id for run_id, _ in launches]


def _launch(workspace: Path, run_config: dict, run_id: str, tags: dict[str, str]) -> None:
    command = [
        *(sys.executable, "-m", "dagster", "job", "launch"),
        *("--workspace", str(workspace), "--job", CHAIN_JOB, "--run-id", run_id),
        *("--tags", json.dumps(tags), "--config-json", json.dumps(run_config)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=workspace.parent)
    if done.returncode != 0:
        last_lines = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise RunSubmissionError(f"dagster job launch failed for {tags['dagster/partition']}: {last_lines}")
