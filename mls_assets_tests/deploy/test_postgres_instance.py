"""The production instance (`deploy/dagster_home/dagster.yaml`) on a real PostgreSQL: the
definitions load against it, a real `dagster-daemon` launches the queued runs of three feeds
(never two of one feed at once) and they leave MongoDB as the local path does, and the
sensors' cursors and the `feeds` partitions survive a daemon restart."""

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy
import yaml
from dagster._core.execution.api import create_execution_plan
from dagster._core.run_coordinator import QueuedRunCoordinator

from mls_assets.definitions import defs
from mls_assets.defs.automation.run_requests import FEED_TAG
from mls_assets.defs.partitions import feed_day_key, range_tags
from mls_assets.lib.store.client import get_client
from mls_assets.lib.store.cursors import advance_cursor
from mls_assets.lib.tenants import load_feeds, sync_configs
from mls_assets.operate.postgres_storage import (
    PooledPostgresEventLogStorage,
    PooledPostgresRunStorage,
    PooledPostgresScheduleStorage,
)
from mls_assets.operate.runs import submit_chain_runs
from mls_assets.simulator import CRMLS_MLS_ID, GPS_MLS_ID, Market, SimulatorServer
from mls_assets_tests.daemon import start_daemon, stop_process
from mls_assets_tests.support.servers import image_env

ANCHOR = datetime(2026, 6, 1, 12, tzinfo=UTC)
FEEDS = {"t1.gps": GPS_MLS_ID, "t2.gps": GPS_MLS_ID, "t3.crmls": CRMLS_MLS_ID}
DAYS = [(ANCHOR - timedelta(days=n)).date().isoformat() for n in (1, 2)]
# Fields a run stamps with its own id or time: the rest of every document must match.
RUN_FIELDS = {"_id", "_runId", "_seq", "runId", "lastSyncedAt", "syncRunId", "mlsLastSyncedAt", "updatedAt"}
BOOKKEEPING = {"leases", "write_marks", "watermarks", "sequences", "feed_cursors", "agent_mls_configs", "alerts"}


def test_the_production_instance_keeps_everything_in_postgres(production_home):
    with dg.DagsterInstance.from_config(str(production_home)) as instance:
        assert isinstance(instance.run_storage, PooledPostgresRunStorage)
        assert isinstance(instance.event_log_storage, PooledPostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PooledPostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 20
        assert any(limit["key"] == FEED_TAG and limit["limit"] == 1 for limit in queue.tag_concurrency_limits)
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 8
        instance.add_dynamic_partitions("feeds", ["a.gps"])
        job = defs().resolve_job_def("replication_job")
        assert job.partitions_def.get_partition_keys(dynamic_partitions_store=instance, current_time=ANCHOR)


def test_the_production_storages_keep_their_connections_and_survive_losing_them(production_home, postgres):
    """dagster-postgres's storages open a connection per call (1,510 for one 50-feed run); the
    production instance's keep one per storage and process. A connection PostgreSQL dropped
    (a restart, a failover) is replaced on its next use, not raised to the run."""
    with dg.DagsterInstance.from_config(str(production_home)) as instance:
        storages = (instance.run_storage, instance.event_log_storage, instance.schedule_storage)
        opened = []
        for storage in storages:
            sqlalchemy.event.listen(storage._engine, "connect", lambda *_: opened.append(1))
        for n in range(30):
            instance.add_dynamic_partitions("feeds", [f"t{n}.gps"])
            instance.get_runs(limit=5)
            instance.all_instigator_state()
        assert len(opened) <= len(storages)
        name = instance.run_storage._engine.url.database
        postgres.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';")
        assert len(instance.get_dynamic_partitions("feeds")) == 30
        assert instance.get_runs(limit=5) == []


def test_the_storages_ask_once_per_process_whether_a_table_or_column_exists_and_again_while_it_does_not(
    production_home,
):
    """dagster-postgres asks the catalog before each asset event's tags, check result and
    partition lookup, and Dagster whether a column exists before each run it adds; the
    production storages remember a table or column that exists, never one that does not (a
    migration may add it)."""
    with dg.DagsterInstance.from_config(str(production_home)) as instance:
        storage = instance.event_log_storage
        statements = []
        sqlalchemy.event.listen(storage._engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        instance.add_dynamic_partitions("feeds", ["a.gps"])
        statements.clear()
        for _ in range(5):
            assert instance.has_dynamic_partition("feeds", "a.gps")
            assert not instance.has_dynamic_partition("feeds", "b.gps")
        catalog = [s for s in statements if "pg_catalog" in s or "information_schema" in s]
        assert len(statements) - len(catalog) == 10 and len(catalog) <= 1  # the partition reads, the table once
        statements.clear()
        assert [storage.has_table("no_such_table") for _ in range(2)] == [False, False]
        assert len(statements) == 2
        runs = instance.run_storage
        sqlalchemy.event.listen(runs._engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        statements.clear()
        for _ in range(5):  # a column: SQLAlchemy reflects the table (columns, domains, enums) the first time
            assert storage.has_asset_key_index_cols() and runs.has_backfill_id_column()
        assert 0 < len(statements) <= 6


def test_a_range_run_s_planned_materializations_are_written_a_batch_at_a_time_as_dagster_writes_them_one_by_one(
    production_home, monkeypatch
):
    """Creating a range run plans a materialization per asset and partition (a first load:
    9 per feed and day). The production event log writes a batch of them with one insert;
    the rows, each partition's latest planned run and each asset's last run are what
    dagster-postgres writes one event at a time."""
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", image_env("DAGSTER_EVENT_BATCH_SIZE"))
    feeds, first, last = ["a.gps", "b.gps"], "2026-01-01", "2026-01-20"
    job = defs().resolve_job_def("replication_job")
    tags = range_tags(feeds[0], first, last, last_feed=feeds[-1])
    with dg.DagsterInstance.from_config(str(production_home)) as instance:
        instance.add_dynamic_partitions("feeds", feeds)
        inserts = []
        sqlalchemy.event.listen(
            instance.event_log_storage._engine,
            "before_cursor_execute",
            lambda *args: inserts.append(args[2]) if args[2].startswith("INSERT INTO event_logs") else None,
        )

        def planned_run() -> tuple[str, list[tuple]]:
            plan = create_execution_plan(job, tags=tags, instance_ref=instance.get_ref())
            run = instance.create_run_for_job(job_def=job, execution_plan=plan, tags=tags)
            planned = instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
            )
            rows = [(r.event_log_entry.step_key, r.asset_key, r.partition_key) for r in planned.records]
            return run.run_id, sorted(rows, key=repr)

        monkeypatch.setenv("DAGSTER_EMIT_PLANNED_EVENTS_INDIVIDUALLY", "1")  # Dagster's own path
        _, one_by_one = planned_run()
        individually = len(inserts)
        monkeypatch.delenv("DAGSTER_EMIT_PLANNED_EVENTS_INDIVIDUALLY")
        inserts.clear()
        run_id, batched = planned_run()

        checks = len(
            instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED).records
        )
        assert batched == one_by_one and len(batched) == 9 * len(feeds) * 20
        assert individually == len(batched) + checks
        batches = -(-len(batched) // int(image_env("DAGSTER_EVENT_BATCH_SIZE")))
        assert len(inserts) <= batches + 2 * checks  # a check's plan is one event, between two assets' plans
        storage = instance.event_log_storage
        for asset_key in {key for _, key, _ in batched}:
            assert instance.get_asset_records([asset_key])[0].asset_entry.last_run_id == run_id
        for _, asset_key, partition in batched[:: len(batched) // 7]:
            assert storage.get_latest_planned_materialization_info(asset_key, partition).run_id == run_id


def test_a_pool_setting_out_of_range_is_refused_by_name(production_home):
    config = yaml.safe_load((production_home / "dagster.yaml").read_text())
    config["event_log_storage"]["config"] = {**config["event_log_storage"]["config"], "pool_size": 0}
    (production_home / "dagster.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="pool_size must be >= 1"):
        dg.DagsterInstance.from_config(str(production_home))


def test_a_shared_run_with_the_images_event_batching_records_every_feeds_partition(
    production_home, feeds_on_simulator, mongo_uri, monkeypatch
):
    """With DAGSTER_EVENT_BATCH_SIZE (the image's) a range run's materializations are written
    in batches: each feed's partition is still recorded materialized, once, in PostgreSQL."""
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", image_env("DAGSTER_EVENT_BATCH_SIZE"))
    database = f"deploy_batch_{os.getpid()}_{int(time.monotonic() * 1000)}"
    monkeypatch.setenv("MONGODB_DATABASE", database)
    client = get_client(mongo_uri)
    sync_configs(client[database], load_feeds())
    try:
        with dg.DagsterInstance.from_config(str(production_home)) as instance:
            order = sorted(FEEDS)
            instance.add_dynamic_partitions("feeds", order)
            keys = [str(feed_day_key(feed, DAYS[0])) for feed in order]
            run_config = {"resources": {"clock": {"config": {"fixed_now": feeds_on_simulator.now.isoformat()}}}}
            job = defs().resolve_job_def("replication_job")
            result = job.execute_in_process(
                instance=instance,
                run_config=run_config,
                tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
            )
            assert result.success
            for asset in ("raw_listings", "active_listings", "listing_photos"):
                records = instance.fetch_materializations(dg.AssetKey(asset), limit=100).records
                assert sorted(r.partition_key for r in records) == sorted(keys), asset
    finally:
        client.drop_database(database)


def _wait_for(condition, what: str, log: Path, seconds: float = 300):
    """Poll until `condition()` is truthy (the daemon works in its own process)."""
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}; daemon log:\n{log.read_text()[-4000:]}"
        time.sleep(0.5)
    return found


def _state(database) -> dict:
    """Every feed collection's documents, without what a run stamps with its own id or time."""
    state = {}
    for name in sorted(database.list_collection_names()):
        if name in BOOKKEEPING:
            continue
        docs = [{k: v for k, v in doc.items() if k not in RUN_FIELDS} for doc in database[name].find()]
        if docs:  # (the discovery sensor also creates the collections of feeds nothing wrote yet)
            state[name] = sorted(docs, key=repr)
    return state


@pytest.fixture
def feeds_on_simulator(tmp_path, monkeypatch, mongo_uri):
    market = Market(listings=150, seed=11, anchor=ANCHOR, mls_ids=(GPS_MLS_ID, CRMLS_MLS_ID))
    with SimulatorServer(market) as simulator:
        tenants = {
            "tenants": [
                {
                    "tenant_id": feed.split(".")[0],
                    "feeds": [
                        {
                            "mls": feed.split(".")[1],
                            "mls_id": mls_id,
                            "base_url": simulator.url,
                            "sync_schedule": "0 0 1 1 *",
                        }
                    ],
                }
                for feed, mls_id in FEEDS.items()
            ]
        }
        path = tmp_path / "tenants.yaml"
        path.write_text(yaml.safe_dump(tenants))
        monkeypatch.setenv("MLS_TENANTS_FILE", str(path))
        monkeypatch.setenv("MLS_LOCAL_MODE", "1")
        yield market


def test_a_daemon_on_postgres_runs_queued_feeds_one_at_a_time_each_like_the_local_path(
    production_home, feeds_on_simulator, mongo_uri, monkeypatch, tmp_path
):
    client = get_client(mongo_uri)
    queued_db, local_db = (
        f"deploy_{kind}_{os.getpid()}_{int(time.monotonic() * 1000)}" for kind in ("queued", "local")
    )
    run_config = {"resources": {"clock": {"config": {"fixed_now": feeds_on_simulator.now.isoformat()}}}}
    partitions = [(feed, day) for day in DAYS for feed in FEEDS]
    log = tmp_path / "daemon.log"
    for name in (queued_db, local_db):
        sync_configs(client[name], load_feeds())
    try:
        # The local path: the same partitions in process, on an ephemeral instance.
        monkeypatch.setenv("MONGODB_DATABASE", local_db)
        job = defs().resolve_job_def("replication_job")
        with dg.DagsterInstance.ephemeral() as local:
            local.add_dynamic_partitions("feeds", list(FEEDS))
            for feed, day in partitions:
                assert job.execute_in_process(
                    instance=local, partition_key=str(feed_day_key(feed, day)), run_config=run_config
                ).success

        # The production path: queued on the Postgres instance, launched by a real daemon.
        monkeypatch.setenv("MONGODB_DATABASE", queued_db)
        env = dict(os.environ)
        for feed in FEEDS:  # the feeds' first loads are done and nothing is newer: the change probe leaves them be
            advance_cursor(client[queued_db], feed, ANCHOR + timedelta(days=1), "deploy-test")
        with dg.DagsterInstance.from_config(str(production_home)) as instance:
            instance.add_dynamic_partitions("feeds", list(FEEDS))
            run_ids = submit_chain_runs(partitions, trigger="deploy-test", run_config=run_config)
            assert {r.status for r in instance.get_runs(dg.RunsFilter(run_ids=run_ids))} == {dg.DagsterRunStatus.QUEUED}
            daemon = start_daemon(env, log)
            try:
                finished = _wait_for(
                    lambda: (
                        all(r.is_finished for r in instance.get_runs(dg.RunsFilter(run_ids=run_ids)))
                        and instance.get_runs(dg.RunsFilter(run_ids=run_ids))
                    ),
                    "the queued runs",
                    log,
                )
                assert {r.status for r in finished} == {dg.DagsterRunStatus.SUCCESS}, log.read_text()[-4000:]
                records = instance.get_run_records(dg.RunsFilter(run_ids=run_ids))
                for feed in FEEDS:
                    spans = sorted((r.start_time, r.end_time) for r in records if r.dagster_run.tags[FEED_TAG] == feed)
                    assert len(spans) == len(DAYS)
                    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:])), feed
                sensor = _wait_for(
                    lambda: next(
                        (
                            s
                            for s in instance.all_instigator_state()
                            if s.name == "feed_discovery_sensor" and s.instigator_data and s.instigator_data.cursor
                        ),
                        None,
                    ),
                    "a sensor tick",
                    log,
                )
                cursor = sensor.instigator_data.cursor
            finally:
                stop_process(daemon)
            assert _state(client[queued_db]) == _state(client[local_db])

            # A restarted daemon finds the sensor's cursor and the partitions where it left them.
            before = max(h.timestamp for h in instance.get_daemon_heartbeats().values())
            daemon = start_daemon(env, log)
            try:
                _wait_for(
                    lambda: max(h.timestamp for h in instance.get_daemon_heartbeats().values()) > before,
                    "the restarted daemon's heartbeat",
                    log,
                )
                again = next(s for s in instance.all_instigator_state() if s.name == "feed_discovery_sensor")
                assert again.instigator_data.cursor == cursor
                assert set(instance.get_dynamic_partitions("feeds")) == set(FEEDS)
            finally:
                stop_process(daemon)
    finally:
        client.drop_database(queued_db)
        client.drop_database(local_db)
