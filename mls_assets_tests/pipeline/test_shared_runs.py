"""Runs shared by many feeds: one run over a range of feeds stores each feed's own data, and a
feed that fails in it costs only itself (it runs alone from then on), while the UI never shows
its day as materialized."""

import dagster as dg
import yaml
from dagster._core.test_utils import create_run_for_test

from mls_assets.defs.automation.recovery import shared_run_failure_sensor
from mls_assets.defs.automation.run_requests import FEED_TAG, feeds_of_run, feeds_order, shared_requests
from mls_assets.lib.store.alone import feeds_alone
from mls_assets.lib.store.cursors import read_cursor
from mls_assets.lib.tenants import load_feeds, sync_configs
from mls_assets_tests.support.chain import CHAIN, FEEDS
from mls_assets_tests.support.servers import free_port

BROKEN = "otheragent.gps"  # the last of the feeds partition's order


def break_source(tenants_file) -> str:
    """Point one feed at a port nobody listens on (its source is down); the others unchanged."""
    document = yaml.safe_load(tenants_file.read_text())
    dead = f"http://127.0.0.1:{free_port()}"
    for tenant in document["tenants"]:
        if tenant["tenant_id"] == "otheragent":
            tenant["feeds"][0]["base_url"] = dead
    tenants_file.write_text(yaml.safe_dump(document))
    return dead


def run(pipeline, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """What the daemon would launch for `request`, executed here."""
    tags = dict(request.tags)
    if request.partition_key:
        tags["dagster/partition"] = request.partition_key
    return dg.materialize(
        CHAIN, instance=pipeline.instance, resources=pipeline.resources(), tags=tags, raise_on_error=False
    )


def test_a_feed_failing_in_a_shared_run_runs_alone_and_the_others_are_stored_and_caught_up(
    pipeline, tenants_file, market, mongo_db
):
    assert pipeline.instance.get_dynamic_partitions("feeds") == FEEDS
    break_source(tenants_file)
    sync_configs(mongo_db, load_feeds(tenants_file))
    today = market.now.date()
    (shared,) = shared_requests(feeds_order(pipeline.instance), dict.fromkeys(FEEDS, "t0"), {}, today, today, "probe")
    assert feeds_of_run(shared.tags) == set(FEEDS) and FEED_TAG not in shared.tags

    result = run(pipeline, shared)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert failure.step_key == "raw_listings" and BROKEN in failure.step_failure_data.error.message
    assert "SPARK" not in failure.step_failure_data.error.message  # no token, no secret in the message
    # the others' records are stored and their cursors moved; the broken feed moved nothing
    for feed in FEEDS[:2]:
        assert pipeline.collection(feed, "raw_listings").count_documents({}) > 0
        assert read_cursor(mongo_db, feed) is not None
    assert (
        pipeline.collection(BROKEN, "raw_listings").count_documents({}) == 0 and read_cursor(mongo_db, BROKEN) is None
    )
    # no day of the run is recorded as materialized: the broken feed's day is never shown green
    assert result.get_asset_materialization_events() == []
    assert set(feeds_alone(mongo_db)) == {BROKEN} and feeds_alone(mongo_db)[BROKEN]["runId"] == result.run_id

    # the failure sensor asks each feed's day again: the broken one alone, the others shared
    failed_run = pipeline.instance.get_run_by_id(result.run_id)
    event = pipeline.instance.get_records_for_run(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records[0]
    with dg.build_run_status_sensor_context(
        sensor_name="shared_run_failure_sensor",
        dagster_instance=pipeline.instance,
        dagster_run=failed_run,
        dagster_event=event.event_log_entry.dagster_event,
        resources={"mongo": pipeline.mongo},
    ) as context:
        requests = list(shared_run_failure_sensor(context.for_run_failure()))
    by_feeds = {frozenset(feeds_of_run(r.tags)): r for r in requests}
    assert set(by_feeds) == {frozenset(FEEDS[:2]), frozenset({BROKEN})}
    assert by_feeds[frozenset({BROKEN})].tags[FEED_TAG] == BROKEN  # alone: queued behind its own runs

    # a shared run that failed without naming a feed (a later step, a lost process): one feed per run
    unnamed = create_run_for_test(
        pipeline.instance, job_name="replication_job", tags=dict(shared.tags), status=dg.DagsterRunStatus.FAILURE
    )
    with dg.build_run_status_sensor_context(
        sensor_name="shared_run_failure_sensor",
        dagster_instance=pipeline.instance,
        dagster_run=unnamed,
        dagster_event=event.event_log_entry.dagster_event,
        resources={"mongo": pipeline.mongo},
    ) as context:
        each = list(shared_run_failure_sensor(context.for_run_failure()))
    assert sorted(r.tags[FEED_TAG] for r in each) == sorted(FEEDS)

    caught_up = run(pipeline, by_feeds[frozenset(FEEDS[:2])])
    assert caught_up.success
    materialized = {
        e.partition
        for e in caught_up.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("flattened_listings")
    }
    assert materialized == {f"{today.isoformat()}|{feed}" for feed in FEEDS[:2]}
    for feed in FEEDS[:2]:
        assert pipeline.collection(feed, "flattened_listings").count_documents({}) > 0
    alone_run = run(pipeline, by_feeds[frozenset({BROKEN})])
    assert not alone_run.success  # still down: its own run fails, nobody else's
    assert set(feeds_alone(mongo_db)) == {BROKEN}

    # the source is back: the feed's own run succeeds, and it shares runs again
    document = yaml.safe_load(tenants_file.read_text())
    document["tenants"][1]["feeds"][0]["base_url"] = document["tenants"][0]["feeds"][0]["base_url"]
    tenants_file.write_text(yaml.safe_dump(document))
    sync_configs(mongo_db, load_feeds(tenants_file))
    assert run(pipeline, by_feeds[frozenset({BROKEN})]).success
    assert feeds_alone(mongo_db) == {} and pipeline.collection(BROKEN, "flattened_listings").count_documents({}) > 0
    (together,) = shared_requests(
        feeds_order(pipeline.instance), dict.fromkeys(FEEDS, "t1"), feeds_alone(mongo_db), today, today, "probe"
    )
    assert feeds_of_run(together.tags) == set(FEEDS)


def test_a_shared_run_stores_each_feed_as_its_own_run_would(pipeline, market, mongo_db):
    """Three feeds in one run leave each feed's collections as three runs of one feed do."""
    today = market.now.date()
    (shared,) = shared_requests(feeds_order(pipeline.instance), dict.fromkeys(FEEDS, "t0"), {}, today, today, "probe")
    result = run(pipeline, shared)
    assert result.success
    together = {
        feed: sorted(doc["listingKey"] for doc in pipeline.collection(feed, "flattened_listings").find())
        for feed in FEEDS
    }
    materialized = {
        e.partition for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("raw_listings")
    }
    assert materialized == {f"{today.isoformat()}|{feed}" for feed in FEEDS}
    for feed in FEEDS:
        for name in mongo_db.list_collection_names():
            if name.startswith(feed.split(".")[0]):
                mongo_db.drop_collection(name)
        mongo_db["feed_cursors"].delete_many({})
    for feed in FEEDS:
        pipeline.sync(feed)
    alone = {
        feed: sorted(doc["listingKey"] for doc in pipeline.collection(feed, "flattened_listings").find())
        for feed in FEEDS
    }
    assert together == alone and all(together.values())
