"""The fault-injection suite: the chain against a faulty source, a killed process, a lost
database and overlapping runs ends in the state a clean run reaches, or fails at once with
one clear line. Small data, real servers; each test names the guarantee it proves."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from mls_assets.defs.maintenance.assets import deleted_listings_sweep
from mls_assets.lib.catalogue import FLATTENED, RAW
from mls_assets.lib.store import embedded
from mls_assets.lib.store.changes import ChangeSet
from mls_assets.lib.store.client import get_client
from mls_assets.lib.store.cursors import read_cursor
from mls_assets.lib.store.naming import FeedKey
from mls_assets.simulator import GPS_MLS_ID
from mls_assets.simulator.faults import RETRYABLE_FAULTS, FaultPlan
from mls_assets_tests.pipeline.test_replication_chain import GPS, keys, snapshot
from mls_assets_tests.support.chain import CHAIN, Pipeline
from mls_assets_tests.support.servers import free_port, start_ephemeral_server

CRMLS = "jpsrealtor.crmls"


@pytest.fixture
def other_database(mongo_uri, pipeline):
    """A second, clean database on the same server: where the reference run goes."""
    database = get_client(mongo_uri)[pipeline.database.name + "_ref"]
    yield database
    database.client.drop_database(database.name)


def reference(pipeline, other_database, tenants_file, *syncs) -> tuple[Pipeline, dict]:
    """A clean run of `syncs` [(feed, day or None, clock)] in its own database."""
    clean = Pipeline(pipeline.market, other_database, pipeline.mongo.uri, pipeline.instance)
    clean.load_configs(tenants_file)
    for feed, day, clock in syncs:
        pipeline.market.set_clock(clock)
        clean.sync(feed, day)
    return clean, snapshot(clean, GPS, bookkeeping=True)


def no_change_left_behind(pipeline, feed) -> bool:
    """Every consumer's watermark has reached what its upstream wrote."""
    database, key = pipeline.database, FeedKey.parse(feed)
    consumers = {
        "flattened_listings": RAW,
        "photo_collections": RAW,
        "status_collections": FLATTENED,
        "crm_linked_properties": FLATTENED,
    }
    return all(
        ChangeSet.open(database, consumer, {key: database[spec.collection_name(key)]}).count() == 0
        for consumer, spec in consumers.items()
    )


FAULT_KINDS = (*RETRYABLE_FAULTS, "repeat_token")


def sync_through_every_fault(pipeline, simulator, feed: str, *clocks) -> None:
    """Sync `feed` at each clock while the source fails: every transient kind at least once
    at each sync, then at random (20% of requests)."""
    simulator.set_faults(FaultPlan(rate=0.2, kinds=FAULT_KINDS, delay_seconds=0.5, seed=5))
    for clock in clocks:
        pipeline.market.set_clock(clock)
        simulator.inject(*FAULT_KINDS)
        pipeline.sync(feed, page_size=15, timeout_s=0.2)


def test_every_transient_fault_kind_during_a_full_and_an_incremental_sync_ends_as_a_clean_run(
    pipeline, market, simulator, other_database, tenants_file
):
    start, later = market.now, market.now + timedelta(days=2)
    _, expected = reference(pipeline, other_database, tenants_file, (GPS, None, start), (GPS, None, later))

    sync_through_every_fault(pipeline, simulator, GPS, start, later)
    injected = simulator.faults.injected
    assert set(injected) >= set(RETRYABLE_FAULTS), injected  # every kind was met
    assert snapshot(pipeline, GPS, bookkeeping=True) == expected
    for name in ("raw_listings", "flattened_listings", "listings", "photos"):
        collection = pipeline.collection(GPS, name)
        assert len(collection.distinct("photoId" if name == "photos" else "listingKey")) == collection.count_documents(
            {}
        )


def chain_process(spec: dict, home, wait_for_go: bool = False) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mls_assets_tests.hardening.chain_process",
            json.dumps({**spec, "wait_for_go": wait_for_go}),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )


@pytest.fixture
def dagster_home(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        instance.add_dynamic_partitions("feeds", [GPS, CRMLS])
    return home


def spec_for(pipeline, feed: str, day: str | None = None, **extra) -> dict:
    return {
        "uri": pipeline.mongo.uri,
        "database": pipeline.database.name,
        "feed": feed,
        "day": day or pipeline.market.now.date().isoformat(),
        "now": pipeline.market.now.isoformat(),
        "page_size": 20,
        **extra,
    }


@pytest.mark.parametrize("first_sync", [True, False], ids=["full-sync", "incremental"])
def test_a_run_killed_at_any_point_converges_when_run_again_and_its_cursor_is_never_ahead(
    first_sync, pipeline, market, other_database, tenants_file, dagster_home
):
    start, later = market.now, market.now + timedelta(days=2)
    syncs = [(GPS, None, later)] if first_sync else [(GPS, None, start), (GPS, None, later)]
    _, expected = reference(pipeline, other_database, tenants_file, *syncs)

    def state_before_the_run() -> None:
        pipeline.database.client.drop_database(pipeline.database.name)
        pipeline.load_configs(tenants_file)
        if not first_sync:
            market.set_clock(start)
            pipeline.sync(GPS)
        market.set_clock(later)

    state_before_the_run()
    counted = chain_process(spec_for(pipeline, GPS), dagster_home)
    total = json.loads(counted.communicate(timeout=120)[0].strip().splitlines()[-1])["writes"]
    assert snapshot(pipeline, GPS, bookkeeping=True) == expected and total >= 8

    for fraction in (0.05, 0.35, 0.65, 0.95):  # in the pull, the transforms, the routing, the photos
        state_before_the_run()
        cursor_before = read_cursor(pipeline.database, GPS)
        killed = chain_process(spec_for(pipeline, GPS, kill_at_write=max(1, int(total * fraction))), dagster_home)
        assert killed.wait(timeout=120) == -9, "the run should have been killed at the chosen write"
        cursor = read_cursor(pipeline.database, GPS)
        if cursor != cursor_before:  # advanced only once every record of the pull was stored
            stored = {
                d["listingKey"]: d["modificationTimestamp"] for d in pipeline.collection(GPS, "raw_listings").find()
            }
            source = {
                s.timeline.key: s.index_row["ModificationTimestamp"]
                for s in market.states()
                if s.timeline.mls_id == GPS_MLS_ID
            }
            since = cursor_before or datetime.min.replace(tzinfo=UTC)
            assert all(
                stored.get(key) == modified for key, modified in source.items() if modified > since and key in stored
            )

        if fraction == 0.05:  # the dead run holds the token everyone shares: another feed still runs at once
            other = pipeline.resources()
            other["leases"] = other["leases"].model_copy(update={"wait_s": 5})
            result = dg.materialize(
                CHAIN, instance=pipeline.instance, resources=other, partition_key=f"{later.date().isoformat()}|{CRMLS}"
            )
            assert result.success

        pipeline.sync(GPS)
        assert snapshot(pipeline, GPS, bookkeeping=True) == expected, fraction
        assert no_change_left_behind(pipeline, GPS)


@pytest.mark.parametrize("same_day", [True, False], ids=["one-partition-twice", "two-days-of-one-feed"])
def test_two_runs_of_one_feed_started_together_end_as_one_run_and_lose_no_change(
    same_day, pipeline, market, other_database, tenants_file, dagster_home
):
    days = [None, None] if same_day else [None, (market.now - timedelta(days=3)).date().isoformat()]
    _, expected = reference(pipeline, other_database, tenants_file, *((GPS, day, market.now) for day in days))
    runs = [chain_process(spec_for(pipeline, GPS, day), dagster_home, wait_for_go=True) for day in days]
    for run in runs:  # both start when both are ready
        run.stdin.write("go\n")
        run.stdin.flush()
    outcomes = [json.loads(run.communicate(timeout=180)[0].strip().splitlines()[-1]) for run in runs]
    assert [o["success"] for o in outcomes] == [True, True]
    assert snapshot(pipeline, GPS, bookkeeping=True) == expected
    assert no_change_left_behind(pipeline, GPS)


def test_a_database_lost_midway_fails_the_run_in_one_line_and_a_rerun_converges(
    pipeline, market, simulator, tmp_path, other_database, tenants_file
):
    _, expected = reference(pipeline, other_database, tenants_file, (GPS, None, market.now))
    port, storage = free_port(), tmp_path / "db"
    storage.mkdir()
    server = start_ephemeral_server(port, str(storage))
    uri = embedded.server_uri(port)
    try:
        lost = Pipeline(market, get_client(uri)[pipeline.database.name], uri, pipeline.instance, timeout_ms=1500)
        lost.load_configs(tenants_file)
        original, calls = simulator.dialects[0].answer, {"n": 0}

        def stop_the_database_at_the_third_page(simulated, params, fault):
            calls["n"] += 1
            if calls["n"] == 3:
                server.terminate()
                server.wait(timeout=30)
            return original(simulated, params, fault)

        simulator.dialects[0].answer = stop_the_database_at_the_third_page
        resources = lost.resources(page_size=10)
        result = dg.materialize(
            CHAIN,
            instance=pipeline.instance,
            resources=resources,
            raise_on_error=False,
            partition_key=f"{market.now.date().isoformat()}|{GPS}",
        )
        simulator.dialects[0].answer = original
        assert not result.success
        assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_RESTARTED]
        failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message
        line = failure.strip().splitlines()[-1]
        assert f"MongoDB at 127.0.0.1:{port} is unreachable" in line and "MONGODB_URI" in line

        server = start_ephemeral_server(port, str(storage))
        lost.sync(GPS)
        assert snapshot(lost, GPS, bookkeeping=True) == expected
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_sweep_refuses_a_truncated_key_list_and_deletes_nothing(pipeline, simulator):
    pipeline.sync(GPS)
    before = snapshot(pipeline, GPS)
    simulator.inject(*["empty_page"] * 4)  # every try of the sweep sees an empty feed
    result = dg.materialize(
        [deleted_listings_sweep],
        instance=pipeline.instance,
        resources=pipeline.resources(),
        partition_key=GPS,
        raise_on_error=False,
    )
    assert not result.success
    failure = [e for e in result.all_events if e.is_step_failure][-1]
    assert "refusing to delete anything" in failure.step_failure_data.error.message
    assert snapshot(pipeline, GPS) == before


@pytest.mark.parametrize(
    ("fault", "words"),
    [("wrong_host", "code 1021"), ("expire_token", "expired"), ("results_object", "D.Results is dict")],
)
def test_an_error_a_retry_cannot_fix_fails_the_run_at_once(pipeline, simulator, fault, words):
    simulator.inject(fault)
    result = dg.materialize(
        CHAIN,
        instance=pipeline.instance,
        resources=pipeline.resources(),
        raise_on_error=False,
        partition_key=f"{pipeline.market.now.date().isoformat()}|{GPS}",
    )
    assert not result.success
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_RESTARTED]
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message
    assert words in failure.strip().splitlines()[-1]
    assert simulator.requests == 1
    assert not keys(pipeline.collection(GPS, "raw_listings"))
