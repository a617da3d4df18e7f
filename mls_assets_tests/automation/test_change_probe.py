"""The change probe against the simulator over HTTP: one request per source and cursor, a run
only when the source changed, never a second run of a busy feed, and a failing probe backs off."""

import json
from datetime import timedelta

import dagster as dg
import pytest
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteRepositoryOrigin
from dagster._core.test_utils import create_run_for_test
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from mls_assets.defs.automation.probe import change_probe_sensor
from mls_assets.defs.automation.run_requests import FEED_TAG, feeds_of_run
from mls_assets.defs.partitions import FIRST_DAY
from mls_assets.lib.store.cursors import read_cursors
from mls_assets.lib.tenants import read_configs
from mls_assets_tests.support.chain import FEEDS

GPS = "jpsrealtor.gps"


def of_changes(result: dg.SensorResult) -> list[dg.RunRequest]:
    """The runs requested for changes (not the first loads of feeds this test never synced)."""
    return [r for r in result.run_requests if r.tags["mls/trigger"] == "probe"]


def job_origin(job: str):
    location = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="mls_assets.definitions"))
    return RemoteRepositoryOrigin(location, "__repository__").get_job_origin(job)


def probe(pipeline, cursor=None) -> dg.SensorResult:
    with dg.build_sensor_context(instance=pipeline.instance, resources=pipeline.resources(), cursor=cursor) as context:
        return change_probe_sensor(context)


def served(requests) -> list[str]:
    """The feeds the requested runs serve, shared or not."""
    return sorted(feed for r in requests for feed in feeds_of_run(r.tags))


def test_feeds_never_pulled_get_their_first_load_as_one_range_run(pipeline, simulator):
    before = simulator.requests
    (first,) = probe(pipeline).run_requests  # the three feeds lie next to each other: one run serves them
    assert served([first]) == sorted(FEEDS) and simulator.requests == before
    order = pipeline.instance.get_dynamic_partitions("feeds")
    assert first.tags["dagster/asset_partition_range_start"] == f"{FIRST_DAY.isoformat()}|{order[0]}"
    assert first.tags["dagster/asset_partition_range_end"].endswith(f"|{order[-1]}") and FEED_TAG not in first.tags
    assert first.run_key.startswith("first_load|") and probe(pipeline).run_requests[0].run_key == first.run_key
    create_run_for_test(
        pipeline.instance,
        job_name="replication_job",
        status=dg.DagsterRunStatus.FAILURE,
        tags={FEED_TAG: GPS, "mls/trigger": "first_load"},
    )
    retried = probe(pipeline)  # the first load failed: again (a new key), then not before the backoff
    assert GPS in served(retried.run_requests) and first.run_key not in {r.run_key for r in retried.run_requests}
    assert GPS not in served(probe(pipeline, cursor=retried.cursor).run_requests)


def test_at_most_first_loads_per_tick_feeds_start_their_first_load_in_a_tick_the_others_next(
    pipeline, simulator, monkeypatch, capsys
):
    """Creating a first load's run writes a planned event per asset and day: a tick starts a
    bounded number of them, and the feeds left start in the next ticks, once each."""
    from mls_assets.defs.automation import probe as probe_module

    monkeypatch.setattr(probe_module, "FIRST_LOADS_PER_TICK", 2)
    first = probe(pipeline)
    started = served(first.run_requests)
    assert len(started) == 2 and "first loads left for the next ticks: 1" in capsys.readouterr().err
    for request in first.run_requests:  # the daemon creates the requested runs: their feeds are busy
        create_run_for_test(
            pipeline.instance,
            job_name="replication_job",
            tags=request.tags,
            status=dg.DagsterRunStatus.QUEUED,
            remote_job_origin=job_origin("replication_job"),
        )
    second = probe(pipeline, cursor=first.cursor)
    assert served(second.run_requests) == sorted(set(FEEDS) - set(started))
    assert "left for the next ticks" not in capsys.readouterr().err


def test_a_feed_without_changes_costs_one_request_and_requests_no_run(pipeline, simulator):
    for feed in FEEDS:
        pipeline.sync(feed)
    cursors = read_cursors(pipeline.database, FEEDS)
    configs = {str(f.key): f for f in read_configs(pipeline.database)}
    questions = {(configs[feed].source, cursors[feed]) for feed in FEEDS}
    assert len(questions) == 2  # the two gps feeds share a source and, synced at one moment, a cursor
    before = simulator.requests
    result = probe(pipeline)
    assert result.run_requests == [] and f"unchanged: {len(FEEDS)}" in result.skip_reason.skip_message
    assert simulator.requests - before == len(questions)  # one question per source and cursor


def test_a_change_in_the_source_requests_todays_partition_once_per_cursor(pipeline, market):
    pipeline.sync(GPS)
    market.advance(timedelta(hours=48))  # listings move on in the source
    (request,) = of_changes(probe(pipeline))
    assert request.tags[FEED_TAG] == GPS and request.partition_key.endswith(f"|{GPS}")
    assert request.partition_key.startswith(market.now.date().isoformat())
    (again,) = of_changes(probe(pipeline))  # a later tick before that run moved the cursor
    assert again.run_key == request.run_key  # the same key: Dagster launches it once
    pipeline.sync(GPS)  # the run: stores the changes and moves the cursor
    assert of_changes(probe(pipeline)) == []


@pytest.mark.parametrize("status", [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTED])
def test_no_run_is_requested_for_a_feed_whose_run_is_queued_or_running(pipeline, market, simulator, status):
    pipeline.sync(GPS)
    market.advance(timedelta(hours=48))
    create_run_for_test(
        pipeline.instance,
        job_name="expired_listings_backfill",
        tags={FEED_TAG: GPS},
        status=status,
        remote_job_origin=job_origin("expired_listings_backfill"),
    )  # a backfill of the feed: any job counts
    before = simulator.requests
    result = probe(pipeline)
    assert GPS not in served(result.run_requests)
    assert simulator.requests == before  # the busy feed is not even asked (the others have no cursor)


def test_every_queued_run_is_seen_however_many_there_are(pipeline, market, simulator, monkeypatch):
    """The busy feeds come from every in-progress run, a page at a time (there was a 1,000-run
    cap: with 2,000 queued, half the busy feeds were asked again)."""
    from mls_assets.defs.automation import run_requests

    monkeypatch.setattr(run_requests, "RUNS_PAGE", 3)
    pipeline.sync(GPS)
    market.advance(timedelta(hours=48))
    for feed in [GPS, *(f"other{n}.gps" for n in range(8))]:  # GPS's run the oldest: on the last page
        create_run_for_test(
            pipeline.instance,
            job_name="replication_job",
            tags={FEED_TAG: feed},
            status=dg.DagsterRunStatus.QUEUED,
            remote_job_origin=job_origin("replication_job"),
        )
    assert run_requests.feeds_with_runs(pipeline.instance) == {GPS, *(f"other{n}.gps" for n in range(8))}
    before = simulator.requests
    assert GPS not in served(probe(pipeline).run_requests) and simulator.requests == before


def test_many_feeds_are_asked_at_once_once_per_source_and_cursor_through_one_pooled_client(
    pipeline, market, simulator, monkeypatch
):
    """60 agents on 3 keys: each key's feeds ask one question (two, where their cursors differ),
    and every feed still gets its own answer and its run."""
    from mls_assets.lib.sources import pool
    from mls_assets.lib.store.cursors import CURSORS_COLLECTION
    from mls_assets.lib.tenants import FeedConfig, sync_configs
    from mls_assets.simulator import DEMO_TOKEN, GPS_MLS_ID

    for key in ("KEY_A", "KEY_B", "KEY_C"):
        monkeypatch.setenv(key, DEMO_TOKEN)
    feeds = [
        FeedConfig(
            tenant_id=f"agent{n:03d}",
            mls="gps",
            mls_id=GPS_MLS_ID,
            base_url=simulator.url,
            token_env=("KEY_A", "KEY_B", "KEY_C")[n % 3],
        )
        for n in range(60)
    ]
    sync_configs(pipeline.database, feeds)
    earlier = market.now - timedelta(minutes=5)  # one of KEY_A's feeds was synced at another moment
    pipeline.database[CURSORS_COLLECTION].insert_many(
        [{"_id": str(f.key), "cursor": earlier if n == 0 else market.now} for n, f in enumerate(feeds)]
    )
    clients = []
    original = pool.ClientPool.for_url
    monkeypatch.setattr(
        pool.ClientPool, "for_url", lambda self, url: clients.append(original(self, url)) or clients[-1]
    )
    before = simulator.requests
    result = probe(pipeline)
    assert simulator.requests - before == 4  # KEY_A twice (two cursors), KEY_B and KEY_C once
    assert f"unchanged: {len(feeds)}" in result.skip_reason.skip_message
    assert len(clients) == 4 and len({id(c) for c in clients}) == 1  # one client for the host
    market.advance(timedelta(hours=48))
    changed = of_changes(probe(pipeline, cursor=None))
    assert served(changed) == sorted(str(f.key) for f in feeds)  # every feed gets its key's answer


def test_a_failed_question_backs_off_every_feed_that_shares_it(pipeline, market, simulator, monkeypatch):
    from mls_assets.lib.store.cursors import CURSORS_COLLECTION
    from mls_assets.lib.tenants import FeedConfig, sync_configs
    from mls_assets.simulator import GPS_MLS_ID

    feeds = [
        FeedConfig(tenant_id=f"agent{n:03d}", mls="gps", mls_id=GPS_MLS_ID, base_url=simulator.url) for n in range(3)
    ]
    sync_configs(pipeline.database, feeds)
    pipeline.database[CURSORS_COLLECTION].insert_many([{"_id": str(f.key), "cursor": market.now} for f in feeds])
    market.advance(timedelta(hours=48))
    simulator.faults.enqueue("429")  # the one question of their source is refused
    result = probe(pipeline)
    states = json.loads(result.cursor)
    assert all(states[str(f.key)]["failures"] == 1 for f in feeds)
    assert not {str(f.key) for f in feeds} & set(served(result.run_requests))


def test_a_failing_probe_backs_off_reports_and_spares_the_other_feeds(pipeline, market, simulator):
    for feed in FEEDS[:2]:
        pipeline.sync(feed)
    market.advance(timedelta(hours=48))
    simulator.faults.enqueue("429")  # the first feed's probe is refused
    first = probe(pipeline)
    assert len(of_changes(first)) == 1  # the other feed is probed and synced as usual
    states = json.loads(first.cursor)
    failed = next(feed for feed, state in states.items() if state["failures"] == 1)
    assert failed not in served(of_changes(first))
    before = simulator.requests
    second = probe(pipeline, cursor=first.cursor)  # the next tick: the failed feed is still backing off
    assert simulator.requests - before == 1 and failed not in served(of_changes(second))
    assert json.loads(second.cursor)[failed]["failures"] == 1


def test_backoff_doubles_up_to_a_cap_and_retry_after_wins():
    from datetime import UTC, datetime

    from mls_assets.lib.replication.probe import MAX_BACKOFF_S, ProbeState

    now, state = datetime(2026, 11, 26, tzinfo=UTC), ProbeState()
    assert [state.failed(now, None, interval_s=60) for _ in range(6)] == [
        60,
        120,
        240,
        480,
        MAX_BACKOFF_S,
        MAX_BACKOFF_S,
    ]
    assert not state.due(now) and state.due(now + timedelta(seconds=MAX_BACKOFF_S))
    assert ProbeState().failed(now, 300.0, interval_s=60) == 300.0  # the source said when
    quick = ProbeState()  # a probe every 30 s still backs off from a minute, not from 30 s
    assert [quick.failed(now, None, interval_s=30) for _ in range(3)] == [60, 120, 240]
    state.succeeded()
    assert state.due(now) and state.failures == 0
