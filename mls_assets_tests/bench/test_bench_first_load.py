"""`make bench` (first loads): what it costs the process that creates a first-load run to
create it, on the production instance (PostgreSQL from pgserver, `deploy/dagster_home`, the
image's event batching), for runs over 1, 3 and `MLS_FIRST_LOADS_PER_TICK` (10) feeds.

A first load is one run over every day partition of its feeds, FIRST_DAY to today (the change
probe asks for it, at most `MLS_FIRST_LOADS_PER_TICK` feeds a tick). Dagster writes a planned
event for every asset and every partition of the run as it creates it, before the run is
queued: in the daemon, in the sensor's thread, before the probe's next tick. The production
event log writes them a batch at a time (`PooledPostgresEventLogStorage.store_event_batch`);
this bench shows what a tick's first loads still cost and how it grows with feeds (docs/fleet.md,
"First loads")."""

import os
import time
from datetime import UTC, datetime
from unittest import mock

import dagster as dg
import pytest
from dagster._core.execution.api import create_execution_plan

from mls_assets.definitions import defs
from mls_assets.defs.automation.probe import FIRST_LOADS_PER_TICK
from mls_assets.defs.partitions import FIRST_DAY, range_tags
from mls_assets_tests.support.servers import ProductionInstance

pytestmark = pytest.mark.bench
FEED_COUNTS = (1, 3, FIRST_LOADS_PER_TICK)


def test_bench_first_load_run_creation(tmp_path):
    print("\n[bench] creating a first-load run on the production instance")
    print(f"{'feeds':>6}{'days':>7}{'seconds':>9}{'events':>9}{'ms/event':>10}")
    today = datetime.now(UTC).date()
    job = defs().resolve_job_def("replication_job")
    for count in FEED_COUNTS:
        production = ProductionInstance(tmp_path / f"feeds{count}")
        try:
            feeds = [f"agent{n:03d}.gps" for n in range(count)]
            with mock.patch.dict(os.environ, production.env), dg.DagsterInstance.get() as instance:
                instance.add_dynamic_partitions("feeds", feeds)
                tags = range_tags(feeds[0], FIRST_DAY.isoformat(), today.isoformat(), last_feed=feeds[-1])
                plan = create_execution_plan(job, tags=tags, instance_ref=instance.get_ref())
                started = time.perf_counter()
                run = instance.create_run_for_job(job_def=job, execution_plan=plan, tags=tags)
                seconds = time.perf_counter() - started
                events = len(instance.all_logs(run.run_id))
        finally:
            production.stop()
        days = (today - FIRST_DAY).days + 1
        print(f"{count:>6}{days:>7}{seconds:>9.1f}{events:>9,}{1000 * seconds / events:>10.1f}")
    print(f"(the probe starts at most {FIRST_LOADS_PER_TICK} feeds' first loads a tick)")
