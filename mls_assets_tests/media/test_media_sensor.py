"""`photo_media_sensor` evaluated as the daemon would (`build_sensor_context` on the real
sensor): feeds whose runs succeeded and feeds with due retries get media runs, neighbours
sharing one; a feed whose media run is in progress waits; media runs never take a feed's
place in the run queue (`automation/test_run_queue.py`)."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from mls_assets.defs.media.assets import MEDIA_BACKLOG
from mls_assets.defs.media.sensors import MEDIA_MEMBER_PREFIX, media_spans, photo_media_sensor
from mls_assets.defs.resources import ClockResource, MongoResource

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
FEEDS = ["a.gps", "b.gps", "c.gps", "d.crmls"]


def finished_run(instance: dg.DagsterInstance, job_name: str, tags: dict[str, str]) -> None:
    @dg.op
    def nothing() -> None: ...

    @dg.job(name=job_name)
    def job() -> None:
        nothing()

    assert job.execute_in_process(instance=instance, tags=tags).success


def tick(instance, mongo_uri, mongo_db, cursor=None):
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={
            "mongo": MongoResource(uri=mongo_uri, database=mongo_db.name),
            "clock": ClockResource(fixed_now=NOW.isoformat()),
        },
    )
    return photo_media_sensor(context)


def members(request: dg.RunRequest) -> set[str]:
    return {key.removeprefix(MEDIA_MEMBER_PREFIX) for key in request.tags if key.startswith(MEDIA_MEMBER_PREFIX)}


def test_feeds_that_synced_or_wait_for_a_retry_get_media_runs_and_busy_feeds_wait(mongo_uri, mongo_db):
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("feeds", FEEDS)
        finished_run(instance, "replication_job", {"mls/feed": "a.gps"})
        finished_run(instance, "replication_job", {"mls-feed/c.gps": "1", "mls-feed/d.crmls": "1"})  # a shared run
        finished_run(instance, "some_other_job", {"mls/feed": "c.gps"})
        mongo_db[MEDIA_BACKLOG].insert_many(
            [
                {"_id": "b.gps", "dueAt": NOW - timedelta(minutes=1)},
                {"_id": "gone.gps", "dueAt": NOW - timedelta(minutes=1)},  # no longer registered: ignored
                {"_id": "zz.gps", "dueAt": NOW + timedelta(hours=1)},  # not due yet
            ]
        )
        result = tick(instance, mongo_uri, mongo_db)
        (request,) = result.run_requests  # four neighbours in the feeds' order: one run
        assert members(request) == set(FEEDS)
        assert request.tags["dagster/asset_partition_range_start"] == "2026-06-01|a.gps"
        assert request.tags["dagster/asset_partition_range_end"] == "2026-06-01|d.crmls"
        assert "mls/feed" not in request.tags and not any(k.startswith("mls-feed/") for k in request.tags)

        # Next tick: the runs were seen (cursor); b.gps still waits, but its media run is in progress.
        busy = instance.create_run_for_job(
            dg.JobDefinition(graph_def=dg.GraphDefinition(name="media_job", node_defs=[])),
            tags={f"{MEDIA_MEMBER_PREFIX}b.gps": "1"},
            status=dg.DagsterRunStatus.STARTED,
        )
        again = tick(instance, mongo_uri, mongo_db, cursor=result.cursor)
        assert not again.run_requests and "1 with a media run in progress" in again.skip_reason.skip_message
        instance.report_run_canceled(busy)
        last = tick(instance, mongo_uri, mongo_db, cursor=result.cursor)
        assert [members(r) for r in last.run_requests] == [{"b.gps"}]
        assert last.run_requests[0].partition_key == "2026-06-01|b.gps"


def test_a_tick_asks_one_run_per_block_however_scattered_the_waiting_feeds():
    order = [f"t{n:03d}.gps" for n in range(120)]
    scattered = set(order[::3])  # 40 feeds, none next to another
    spans = media_spans(order, scattered, set(), 50)
    assert [len(s) for s in spans] == [49, 49, 16]  # blocks of 50: first to last waiting feed in each
    assert set().union(*spans) >= scattered
    around = media_spans(order[:50], {order[0], order[10]}, {order[5]}, 50)  # a busy feed inside: not in a run
    assert around == [[order[0]], [order[10]]]
