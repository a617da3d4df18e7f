"""Dead runs: a run whose process was killed (SIGKILL, a lost host) stays STARTED in Dagster
and would hold its feed's place in the run queue (`mls/feed` allows one run at a time).

Every run of this code location records its presence in the `leases` collection and renews
it while it lives (`defs/leases.py`). This sensor marks STARTED runs whose presence went
stale as failed, with the reason, and frees every lease they held, so the feed's next run
proceeds whatever way the dead run had been launched (daemon, `dagster dev`, the CLI,
`make run`).
"""

import dagster as dg

from mls_assets.defs.resources import MongoResource
from mls_assets.lib.store.leases import release_run, stale_runs


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def dead_run_sensor(context: dg.SensorEvaluationContext, mongo: MongoResource) -> dg.SkipReason | None:
    """Marks runs whose process is gone as failed and frees their leases."""
    database = mongo.get_database()
    started = context.instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]), limit=500)
    by_id = {run.run_id: run for run in started}
    dead = stale_runs(database, list(by_id))
    for run_id, holder in dead:
        message = (f"the run's process is gone ({holder.describe()} stopped renewing its leases): marked failed "
                   "so that the feed's next run can start")  # fmt: skip
        context.instance.report_run_failed(by_id[run_id], message=message)
        release_run(database, run_id)
        context.log.warning(f"run {run_id}: {message}")
    if not dead:
        return dg.SkipReason(f"{len(by_id)} runs in progress, none dead")
    return None
