"""The run queue, aware of feeds: every run of one feed queues behind the feed's other runs,
however it was started (a schedule, a sensor, the UI's Materialize or a backfill), with no
tag to type.

Dagster's queue limits runs by tag; our instance limits `mls/feed` to one run per value.
Schedules and sensors set that tag, but a run launched from the UI or a backfill carries
only Dagster's partition tags (`dagster/partition/feed` for one partition, the range's start
and end keys for a single-run backfill). This coordinator derives the feed from them and
sets `mls/feed` before the run enters the queue. A run over several feeds gets no feed tag
(the feed leases in MongoDB keep its steps apart from other runs of those feeds).
"""

from __future__ import annotations

from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext
from dagster._core.storage.dagster_run import DagsterRun

from mls_assets.defs.automation.run_requests import FEED_TAG
from mls_assets.defs.partitions import feed_of_run


class FeedQueuedRunCoordinator(QueuedRunCoordinator):
    """`QueuedRunCoordinator` that tags each run with its feed before queueing it."""

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        feed = feed_of_run(run.tags)
        if feed is not None and run.tags.get(FEED_TAG) != feed:
            self._instance.add_run_tags(run.run_id, {FEED_TAG: feed})
            run = self._instance.get_run_by_id(run.run_id) or run
            context = SubmitRunContext(run, workspace=context.workspace)
        return super().submit_run(context)
