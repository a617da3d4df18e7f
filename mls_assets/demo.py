"""`make run`: materialize the main job for the demo feeds on the embedded defaults.

Runs are recorded in the local Dagster instance, so they appear in `make dev`'s UI.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

DEMO_FEEDS = ("jpsrealtor.gps", "jpsrealtor.crmls")
MAIN_JOB = "smoke_job"
# The full event stream is in the UI (`make dev`); the terminal gets warnings and the summary.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _metadata_value(event: dg.DagsterEvent, name: str):
    entry = event.materialization.metadata.get(name)
    return getattr(entry, "value", entry)


def run_demo() -> int:
    from mls_assets.definitions import defs
    from mls_assets.defs.partitions import FEEDS_PARTITION_NAME, feed_day_key

    instance = dg.DagsterInstance.get()
    known = set(instance.get_dynamic_partitions(FEEDS_PARTITION_NAME))
    missing = [feed for feed in DEMO_FEEDS if feed not in known]
    if missing:
        instance.add_dynamic_partitions(FEEDS_PARTITION_NAME, missing)

    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    job = defs.resolve_job_def(MAIN_JOB)
    failures = 0
    rows = []
    for feed in DEMO_FEEDS:
        result = job.execute_in_process(
            instance=instance,
            partition_key=str(feed_day_key(feed, day)),
            raise_on_error=False,
            tags={"mls/feed": feed},
            run_config=QUIET_CONSOLE,
        )
        if not result.success:
            failures += 1
        for event in result.get_asset_materialization_events():
            rows.append(
                (
                    feed,
                    event.asset_key.to_user_string(),
                    _metadata_value(event, "dagster/table_name"),
                    _metadata_value(event, "inserted"),
                    _metadata_value(event, "updated"),
                    _metadata_value(event, "unchanged"),
                    _metadata_value(event, "dagster/partition_row_count"),
                )
            )
    header = ("feed", "asset", "collection", "inserted", "updated", "unchanged", "rows")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\nmls_assets: {MAIN_JOB} for day {day}")
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
    print("FAILED" if failures else "OK", f"({len(DEMO_FEEDS) - failures}/{len(DEMO_FEEDS)} feeds)")
    return 1 if failures else 0
