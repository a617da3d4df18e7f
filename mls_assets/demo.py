"""`make run`: replicate the demo feeds end to end on the embedded defaults.

Starts (or reuses) the embedded MongoDB and the Spark simulator, loads the demo feeds,
materializes the whole replication chain for each feed over the last days and today,
then moves the simulator's clock forward and syncs today again so that status moves
show, and prints what each feed holds. Runs are recorded in the local Dagster instance,
so they appear in `make dev`'s UI.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import dagster as dg
import httpx

MAIN_JOB = "replication_job"
# The full event stream is in the UI (`make dev`); the terminal gets warnings and the summary.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
SUMMARY = (("raw", "raw_listings"), ("flattened", "flattened_listings"), ("rejects", "rejects"),
           ("active", "listings"), ("closed", "closed_listings"), ("expired", "expired_listings"),
           ("photos", "photos"), ("exp.photos", "expired_photos"), ("history", "status_history"))  # fmt: skip


def _run(job: dg.JobDefinition, instance: dg.DagsterInstance, feed: str, day: str) -> bool:
    from mls_assets.defs.partitions import feed_day_key

    result = job.execute_in_process(
        instance=instance,
        partition_key=str(feed_day_key(feed, day)),
        raise_on_error=False,
        tags={"mls/feed": feed},
        run_config=QUIET_CONSOLE,
    )
    failed_checks = [e for e in result.get_asset_check_evaluations() if not e.passed]
    print(f"  {feed} {day}: {'ok' if result.success else 'FAILED'}", flush=True)
    for evaluation in failed_checks:
        print(f"    check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} "
              f"({evaluation.severity.value}): {evaluation.description}")  # fmt: skip
    return result.success


def run_demo() -> int:
    from mls_assets.definitions import defs
    from mls_assets.defs.feeds import sync_feed_partitions
    from mls_assets.lib.spark.simulator import process
    from mls_assets.lib.store.client import get_database
    from mls_assets.lib.tenants import read_configs

    database = get_database()
    simulator = None if os.environ.get("SPARK_API_BASE_URL") else process.ensure_running()
    instance = dg.DagsterInstance.get()
    added, _ = sync_feed_partitions(instance, database)
    feeds = [str(f.key) for f in read_configs(database) if f.enabled]
    print(f"feeds: {', '.join(feeds)} (newly registered: {', '.join(added) or 'none'})")

    days_back = int(os.environ.get("MLS_RUN_DAYS", "7"))
    today = datetime.now(UTC).date()
    # today first: with no cursor yet it pulls the whole feed; the past days then re-pull
    # their own listings (and change nothing that is already current)
    days = [today.isoformat()] + [(today - timedelta(days=n)).isoformat() for n in range(days_back, 0, -1)]
    job = defs.resolve_job_def(MAIN_JOB)
    ok = True
    print(f"replicating today (the whole feed on the first run), then {days[1]} .. {days[-1]}")
    for feed in feeds:
        for day in days:
            ok &= _run(job, instance, feed, day)
    if simulator is not None:
        advanced = httpx.post(f"{process.admin_url(simulator.url)}/clock", json={"advance_hours": 72}).json()
        print(f"simulator clock moved 72h ahead to {advanced['now']}: syncing today again")
        for feed in feeds:
            ok &= _run(job, instance, feed, days[0])
    _print_summary(database, read_configs(database))
    print("OK" if ok else "FAILED: see the runs in the UI (make dev)")
    return 0 if ok else 1


def _print_summary(database, feeds) -> None:
    header = ("feed", *(label for label, _ in SUMMARY))
    rows = [header]
    for feed in feeds:
        rows.append((str(feed.key), *(database[feed.collection(name)].estimated_document_count() for _, name in SUMMARY)))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    print()
    for row in rows:
        print("  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(row, widths))))
