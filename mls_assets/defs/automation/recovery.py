"""Recovery of a shared run (a run over several feeds, `run_requests.shared_run`) that failed.

Dagster records a range run's days as materialized or failed all together: a run cannot say
"these feeds failed, those did not" (dagster-io/dagster#17836). So a shared run in which one
feed failed fails as a whole before any day is recorded, the others' records stored and their
cursors moved, and the feed that failed is marked to run alone (`lib/store/alone.py`). This
sensor then asks each feed's days again: the feed that failed in a run of its own (its
failure, retries and slowness cost only itself), the others in shared runs again. A shared run
that failed without naming a feed (a later step, a lost process) is asked again one feed per
run, which finds the feed at fault. Either way the UI never shows a failed feed's day as
materialized, and the others' days are materialized again within a sensor interval.
"""

import dagster as dg

from mls_assets.defs.automation.jobs import replication_job
from mls_assets.defs.automation.run_requests import FEED_TAG, feeds_of_run, feeds_order, shared_requests
from mls_assets.defs.instigators import described
from mls_assets.defs.partitions import RANGE_TAGS, split_key
from mls_assets.defs.resources import MongoResource
from mls_assets.lib.store.alone import feeds_alone


@described(
    dg.run_failure_sensor,
    monitored_jobs=[replication_job],
    request_job=replication_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def shared_run_failure_sensor(context: dg.RunFailureSensorContext, mongo: MongoResource):
    """A shared run (several feeds) that failed: each of its feeds' days asked again, the feed
    that failed alone, the others shared (one feed per run when no feed was named)."""
    run = context.dagster_run
    members = feeds_of_run(run.tags) - {run.tags.get(FEED_TAG)}
    start, end = (run.tags.get(tag) for tag in RANGE_TAGS)
    if len(members) < 2 or not (start and end):
        return dg.SkipReason(f"run {run.run_id} served one feed: nothing to share out")
    alone = feeds_alone(mongo.get_database())
    named = {feed for feed, doc in alone.items() if doc.get("runId") == run.run_id}
    apart = set(alone) | (set() if named else members)  # nobody named: every feed alone, once
    due = dict.fromkeys(members, run.run_id)
    context.log.info(
        f"run {run.run_id} over {len(members)} feeds failed; {len(named)} named at fault "
        f"({', '.join(sorted(named)[:10])}); asking each feed's days again"
    )
    return shared_requests(
        feeds_order(context.instance), due, apart, split_key(start)[1], split_key(end)[1], "catch-up"
    )
