"""Runs of one feed queue behind each other however they were launched: the coordinator
derives the feed from Dagster's own partition tags (UI launches, backfills)."""

from datetime import date

import dagster as dg
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteRepositoryOrigin
from dagster._core.run_coordinator import SubmitRunContext
from dagster._core.test_utils import create_run_for_test
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from mls_assets.defs.automation.run_requests import FEED_TAG, shared_requests
from mls_assets.defs.media.sensors import media_run
from mls_assets.defs.partitions import feed_day_key, feed_of_run

COORDINATOR = {"module": "mls_assets.operate.run_coordinator", "class": "FeedQueuedRunCoordinator"}
FEED = "jpsrealtor.crmls"


def submitted(instance: dg.DagsterInstance, tags: dict, job: str = "replication_job") -> dg.DagsterRun:
    """A run of the chain as the UI or the backfill daemon submits it (origin: our module)."""
    location = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="mls_assets.definitions"))
    origin = RemoteRepositoryOrigin(location, "__repository__").get_job_origin(job)
    run = create_run_for_test(instance, job_name=job, tags=tags, remote_job_origin=origin)
    instance.run_coordinator.submit_run(SubmitRunContext(run, workspace=None))
    return instance.get_run_by_id(run.run_id)


def test_a_backfill_range_and_a_ui_launch_are_queued_under_their_feed_without_a_typed_tag():
    with dg.instance_for_test(overrides={"run_coordinator": COORDINATOR}) as instance:
        backfill = submitted(
            instance,
            {
                "dagster/asset_partition_range_start": str(feed_day_key(FEED, "2026-11-01")),
                "dagster/asset_partition_range_end": str(feed_day_key(FEED, "2026-11-20")),
                "dagster/backfill": "abc",
            },
        )
        ui = submitted(
            instance,
            {
                "dagster/partition": str(feed_day_key(FEED, "2026-11-20")),
                "dagster/partition/day": "2026-11-20",
                "dagster/partition/feed": FEED,
            },
        )
        mistyped = submitted(instance, {"dagster/partition/feed": FEED, FEED_TAG: "jpsrealtor.gps"})
        assert [r.status for r in (backfill, ui, mistyped)] == [dg.DagsterRunStatus.QUEUED] * 3
        assert {r.tags[FEED_TAG] for r in (backfill, ui, mistyped)} == {FEED}  # the partition's feed wins


def test_a_media_run_takes_no_feeds_place_in_the_queue():
    """Its photos must never hold up a feed's listing syncs: media runs hold media leases."""
    tags = {"dagster/partition": str(feed_day_key(FEED, "2026-11-20")), "dagster/partition/feed": FEED}
    with dg.instance_for_test(overrides={"run_coordinator": COORDINATOR}) as instance:
        media, chain = submitted(instance, tags, "media_job"), submitted(instance, tags)
    assert media.status == dg.DagsterRunStatus.QUEUED and FEED_TAG not in media.tags
    assert chain.tags[FEED_TAG] == FEED


def test_runs_over_several_feeds_or_none_get_no_feed_tag():
    assert (
        feed_of_run(
            {
                "dagster/asset_partition_range_start": str(feed_day_key("a.gps", "2026-11-01")),
                "dagster/asset_partition_range_end": str(feed_day_key("b.gps", "2026-11-02")),
            }
        )
        is None
    )
    assert feed_of_run({}) is None
    assert feed_of_run({"dagster/partition": "a.gps"}) == "a.gps"  # the sweep: partitioned by feed only


def test_a_range_over_several_feeds_launched_from_the_ui_names_each_feed_it_serves():
    """No `mls/feed` (one value cannot name three feeds), but a `mls-feed/<feed>` tag per feed
    of the range, as the sensors' shared runs carry: the probe and `feeds status` see it."""
    from mls_assets.defs.automation.run_requests import feeds_of_run

    with dg.instance_for_test(overrides={"run_coordinator": COORDINATOR}) as instance:
        instance.add_dynamic_partitions("feeds", ["a.gps", "b.gps", "c.gps", "d.gps"])
        run = submitted(
            instance,
            {
                "dagster/asset_partition_range_start": str(feed_day_key("b.gps", "2026-11-01")),
                "dagster/asset_partition_range_end": str(feed_day_key("d.gps", "2026-11-02")),
            },
        )
        assert run.status == dg.DagsterRunStatus.QUEUED and FEED_TAG not in run.tags
        assert feeds_of_run(run.tags) == {"b.gps", "c.gps", "d.gps"}


def test_a_change_seen_in_the_source_is_started_before_routine_runs_and_photos_last():
    """Dagster's queue starts the highest `dagster/priority` first: a change the probe saw (or
    the days a failed shared run owes) never waits behind the safety net, the nightly, first
    loads or photos (a fleet's queue holds hundreds of routine runs at 02:00)."""
    feeds = ["a.gps", "b.gps", "c.gps"]
    day = date(2026, 11, 20)

    def priority(request: dg.RunRequest) -> int:
        return int(request.tags.get("dagster/priority", "0"))

    by_trigger = {
        trigger: {priority(r) for r in shared_requests(feeds, dict.fromkeys(feeds, "x"), {"c.gps"}, day, day, trigger)}
        for trigger in ("probe", "catch-up", "intraday", "nightly", "first_load")
    }
    assert all(len(found) == 1 for found in by_trigger.values())  # shared and alone runs alike
    assert by_trigger["probe"] == by_trigger["catch-up"] == {10}
    assert by_trigger["intraday"] == by_trigger["nightly"] == by_trigger["first_load"] == {0}
    assert priority(media_run(feeds, day.isoformat(), "m")) < 0
