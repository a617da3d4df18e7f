"""The run queue, aware of feeds: every run of one feed queues behind the feed's other runs,
however it was started (a schedule, a sensor, the UI's Materialize or a backfill), with no
tag to type.

Dagster's queue limits runs by tag; our instance limits `mls/feed` to one run per value.
Schedules and sensors set that tag, but a run launched from the UI or a backfill carries
only Dagster's partition tags (`dagster/partition/feed` for one partition, the range's start
and end keys for a single-run backfill). This coordinator derives the feed from them and
sets `mls/feed` before the run enters the queue. A run over several feeds gets no feed tag
(the feed leases in MongoDB keep its steps apart from other runs of those feeds) but a
`mls-feed/<feed>` tag per feed, as the shared runs the sensors request carry. Runs of
`media_job` get neither: they hold each feed's media lease, so a feed's photos being
processed never hold up its listing syncs in the queue.

It also mends the runs of a backfill launched from a job's page. Dagster (1.13, issue
dagster-io/dagster#28861) gives such a single-run backfill the range tags of its window and
also the first partition's `dagster/partition/<dimension>` tags, and a run with dimension
tags executes that one partition only: a seven-day window ran one day and reported green.
A range run keeps only its range: the run is created again with the same job, snapshots,
selection and backfill id, minus the dimension tags (Dagster has no call that removes a
tag), and the broken one deleted before it queues, so every day of the window is pulled and
materialized with its own counts.
"""

from __future__ import annotations

import uuid

from dagster import DagsterRun, QueuedRunCoordinator, SubmitRunContext

from mls_assets.defs.automation.run_requests import FEED_TAG, feeds_of_run, feeds_order, member_tags
from mls_assets.defs.media.assets import MEDIA_JOB
from mls_assets.defs.partitions import RANGE_TAGS, feed_of_run, range_run_tags, split_key


class FeedQueuedRunCoordinator(QueuedRunCoordinator):
    """`QueuedRunCoordinator` that tags each run with its feed before queueing it."""

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        mended = range_run_tags(run.tags)
        if mended is not None:
            run = self._stored_again(run, mended, context)
            context = SubmitRunContext(run, workspace=context.workspace)
        if run.job_name == MEDIA_JOB:  # media runs hold media leases, never a feed's place in the queue
            return super().submit_run(context)
        feed = feed_of_run(run.tags)
        added = {FEED_TAG: feed} if feed is not None and run.tags.get(FEED_TAG) != feed else self._members(run)
        if added:
            self._instance.add_run_tags(run.run_id, added)
            run = self._instance.get_run_by_id(run.run_id) or run
            context = SubmitRunContext(run, workspace=context.workspace)
        return super().submit_run(context)

    def _members(self, run: DagsterRun) -> dict[str, str]:
        """A range over several feeds launched without our tags (the UI, a backfill): a
        `mls-feed/<feed>` tag per feed, so that the sensors and `feeds status` see its feeds."""
        start, end = (run.tags.get(tag) for tag in RANGE_TAGS)
        if not (start and end) or feeds_of_run(run.tags) or "|" not in start or "|" not in end:
            return {}
        order = feeds_order(self._instance)
        first, last = split_key(start)[0], split_key(end)[0]
        if first not in order or last not in order:
            return {}
        return member_tags(order[order.index(first) : order.index(last) + 1])

    def _stored_again(self, run: DagsterRun, tags: dict[str, str], context: SubmitRunContext) -> DagsterRun:
        """`run` created anew with exactly `tags` (same job, snapshots, selection and backfill
        id; a new run id: the old one's planned check rows cannot be planned twice), so that
        the materializations and checks it plans are the whole range's; the broken run is
        deleted before it ever queues. Without a workspace (no asset graph to plan with) the
        run is left as it is."""
        instance = self._instance
        if context.workspace is None or not run.job_snapshot_id or not run.execution_plan_snapshot_id:
            return run
        mended = instance.create_run(
            job_name=run.job_name,
            run_id=str(uuid.uuid4()),
            run_config=run.run_config,
            resolved_op_selection=run.resolved_op_selection,
            step_keys_to_execute=run.step_keys_to_execute,
            status=run.status,
            tags=tags,
            root_run_id=run.root_run_id,
            parent_run_id=run.parent_run_id,
            job_snapshot=instance.get_job_snapshot(run.job_snapshot_id),
            execution_plan_snapshot=instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id),
            parent_job_snapshot=None,
            asset_selection=run.asset_selection,
            asset_check_selection=run.asset_check_selection,
            op_selection=run.op_selection,
            remote_job_origin=run.remote_job_origin,
            job_code_origin=run.job_code_origin,
            asset_graph=context.workspace.asset_graph,
        )
        instance.delete_run(run.run_id)
        return mended
