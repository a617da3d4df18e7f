"""Submitting replication runs to the Dagster instance's run queue, as the UI does: the run
is created from the code location's own snapshot, tagged with its feed (so the per-feed
limit of the queue applies) and launched by the daemon when its turn comes."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import dagster as dg
from dagster._cli.job import _create_run  # what `dagster job launch` runs
from dagster._cli.workspace.cli_target import (
    WorkspaceOpts,
    get_code_location_from_workspace,
    get_remote_job_from_remote_repo,
    get_remote_repository_from_code_location,
    get_workspace_from_cli_opts,
)
from dagster.version import __version__ as dagster_version

from mls_assets.defs.automation.run_requests import FEED_TAG, TRIGGER_TAG
from mls_assets.defs.partitions import feed_day_key
from mls_assets.lib.paths import project_root

CHAIN_JOB = "replication_job"


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
    instance: dg.DagsterInstance,
    partitions: Iterable[tuple[str, str]],
    *,
    trigger: str = "operator",
    run_config: dict | None = None,
    workspace: Path | None = None,
) -> list[str]:
    """Queue one `replication_job` run per `(feed, day)` on the code location of `workspace`
    (default: the checkout's `workspace.yaml`); their run ids."""
    workspace = workspace or project_root() / "workspace.yaml"
    run_ids = []
    with get_workspace_from_cli_opts(
        instance, version=dagster_version, workspace_opts=WorkspaceOpts(workspace=(str(workspace),))
    ) as context:
        location = get_code_location_from_workspace(context, None)
        repository = get_remote_repository_from_code_location(location, None)
        job = get_remote_job_from_remote_repo(repository, CHAIN_JOB)
        for feed, day in partitions:
            run = _create_run(
                instance=instance,
                code_location=location,
                remote_repo=repository,
                remote_job=job,
                run_config=run_config or {},
                tags=chain_run_tags(feed, day, trigger),
                op_selection=None,
                run_id=None,
            )
            run_ids.append(instance.submit_run(run.run_id, context).run_id)
    return run_ids
