"""The real sensors and schedules, evaluated with build_sensor_context/build_schedule_context."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import dagster as dg
import yaml

from mls_assets.defs.automation.schedules import intraday_status_sync
from mls_assets.defs.automation.sensors import nightly_requests, nightly_sync_sensor
from mls_assets.defs.crm.schedules import crm_active_rescrape
from mls_assets.defs.feeds.sensors import feed_discovery_sensor
from mls_assets.defs.maintenance.schedules import weekly_deletion_sweep
from mls_assets.lib.tenants import CONFIGS_COLLECTION, load_feeds, read_configs, sync_configs

GPS_ID, CRMLS_ID = "20190211172710340762000000", "20200218121507636729000000"


def write_tenants(path, feeds):
    path.write_text(yaml.safe_dump({"tenants": [{"tenant_id": "jpsrealtor", "feeds": feeds}]}))


def gps(**extra):
    return {"mls": "gps", "mls_id": GPS_ID, "sync_schedule": "0 2 * * *", **extra}


def crmls(**extra):
    return {"mls": "crmls", "mls_id": CRMLS_ID, "sync_schedule": "0 3 * * *", **extra}


def test_feed_discovery_adds_and_removes_partitions_and_writes_only_what_changed(
    tmp_path, monkeypatch, mongo_resources, mongo_db
):
    """A tick registers partitions only: no collection is created (a feed's first load does
    that), and only the tenant documents that changed are written."""
    tenants = tmp_path / "tenants.yaml"
    monkeypatch.setenv("MLS_TENANTS_FILE", str(tenants))
    write_tenants(tenants, [gps(), crmls()])
    with dg.DagsterInstance.ephemeral() as instance:
        with dg.build_sensor_context(instance=instance, resources=mongo_resources) as context:
            result = feed_discovery_sensor(context)
        (request,) = result.dynamic_partitions_requests
        assert isinstance(request, dg.AddDynamicPartitionsRequest)
        assert (request.partitions_def_name, sorted(request.partition_keys)) == (
            "feeds",
            ["jpsrealtor.crmls", "jpsrealtor.gps"],
        )
        assert [n for n in mongo_db.list_collection_names() if n.startswith("jpsrealtor_")] == []
        written = mongo_db[CONFIGS_COLLECTION].find_one({"tenantId": "jpsrealtor"})["updatedAt"]
        instance.add_dynamic_partitions("feeds", ["jpsrealtor.crmls", "jpsrealtor.gps"])
        tenants.write_text(
            yaml.safe_dump(
                {
                    "tenants": [
                        {"tenant_id": "jpsrealtor", "feeds": [gps(), crmls()]},
                        {"tenant_id": "newagent", "feeds": [gps()]},
                    ]
                }
            )
        )  # one added
        with dg.build_sensor_context(instance=instance, resources=mongo_resources, cursor=context.cursor) as context:
            result = feed_discovery_sensor(context)
        assert [list(r.partition_keys) for r in result.dynamic_partitions_requests] == [["newagent.gps"]]
        assert mongo_db[CONFIGS_COLLECTION].find_one({"tenantId": "jpsrealtor"})["updatedAt"] == written
        instance.add_dynamic_partitions("feeds", ["newagent.gps"])

        write_tenants(tenants, [gps(enabled=False)])  # crmls removed, gps disabled
        with dg.build_sensor_context(instance=instance, resources=mongo_resources) as context:
            result = feed_discovery_sensor(context)
        (request,) = result.dynamic_partitions_requests
        assert isinstance(request, dg.DeleteDynamicPartitionsRequest)
        assert sorted(request.partition_keys) == [
            "jpsrealtor.crmls",
            "newagent.gps",
        ]  # the disabled feed keeps its partition
        configs = {str(f.key): f.enabled for f in read_configs(mongo_db)}
        assert configs == {"jpsrealtor.gps": False}  # newagent left the file: its feed is gone too


def test_nightly_sync_fires_each_feed_at_its_own_cron(tmp_path, monkeypatch):
    tenants = tmp_path / "tenants.yaml"
    write_tenants(tenants, [gps(), crmls(), {**gps(mls="gpsold", enabled=False)}])
    feeds = load_feeds(tenants)
    instance = dg.DagsterInstance.ephemeral()
    requests = nightly_requests(
        instance, feeds, datetime(2026, 11, 20, 1, 30, tzinfo=UTC), datetime(2026, 11, 20, 2, 30, tzinfo=UTC)
    )
    assert [(r.partition_key, r.run_key, r.tags["mls/feed"]) for r in requests] == [
        ("2026-11-19|jpsrealtor.gps", "nightly|jpsrealtor.gps|2026-11-20T02:00:00+00:00", "jpsrealtor.gps")
    ]
    later = nightly_requests(
        instance, feeds, datetime(2026, 11, 20, 2, 30, tzinfo=UTC), datetime(2026, 11, 20, 3, 5, tzinfo=UTC)
    )
    assert [r.partition_key for r in later] == ["2026-11-19|jpsrealtor.crmls"]
    assert (
        nightly_requests(
            instance, feeds, datetime(2026, 11, 20, 3, 5, tzinfo=UTC), datetime(2026, 11, 20, 3, 6, tzinfo=UTC)
        )
        == []
    )
    # a config change (new cron) takes effect without code: the next tick follows it
    changed = [f.model_copy(update={"sync_schedule": "30 3 * * *"}) for f in feeds]
    moved = nightly_requests(
        instance, changed, datetime(2026, 11, 20, 3, 5, tzinfo=UTC), datetime(2026, 11, 20, 3, 40, tzinfo=UTC)
    )
    assert sorted(r.partition_key for r in moved) == ["2026-11-19|jpsrealtor.crmls", "2026-11-19|jpsrealtor.gps"]


def test_feeds_without_a_cron_spread_over_four_night_hours_the_same_on_every_load(tmp_path, mongo_db):
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text(
        yaml.safe_dump(
            {
                "tenants": [  # 200 sources (tokens) of 10 tenants each
                    {
                        "tenant_id": f"agent{n:04d}",
                        "feeds": [{"mls": "gps", "mls_id": GPS_ID, "token_env": f"TOKEN_{n % 200}"}],
                    }
                    for n in range(2000)
                ]
            }
        )
    )
    feeds = load_feeds(tenants)
    night = datetime(2026, 11, 20, 0, 30, tzinfo=UTC)
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("feeds", [str(f.key) for f in sorted(feeds, key=lambda f: f.source)])
        asked = nightly_requests(instance, feeds, night, night + timedelta(hours=5))  # 00:30-05:30: each feed once
    served = [key.removeprefix("mls-feed/") for r in asked for key in r.tags if key.startswith("mls-feed/")]
    assert sorted(served) == sorted(str(f.key) for f in feeds)
    assert len(asked) == 2000 // 50  # feeds due on one day share runs of 50 (a sensor tick: a minute's sources)
    with dg.DagsterInstance.ephemeral() as instance:  # tick by tick, as the sensor asks: about one run per source
        instance.add_dynamic_partitions("feeds", [str(f.key) for f in sorted(feeds, key=lambda f: f.source)])
        per_minute = [
            len(nightly_requests(instance, feeds, night + timedelta(minutes=m), night + timedelta(minutes=m + 1)))
            for m in range(300)
        ]
    assert sum(per_minute) <= 200 and max(per_minute) <= 6
    minutes = Counter(f.sync_schedule for f in feeds)
    assert all(1 <= int(cron.split()[1]) <= 4 for cron in minutes)  # 01:00-04:59
    assert {f.sync_schedule for f in feeds if f.token_env == "TOKEN_7"} == {feeds[7].sync_schedule}
    sources = Counter(cron for cron, _ in {(f.sync_schedule, f.source) for f in feeds})
    assert len(minutes) > 100 and max(sources.values()) <= 8  # (one fixed 02:00 asked 2,000 runs in one tick)
    sync_configs(mongo_db, feeds)
    assert {f.key: f.sync_schedule for f in read_configs(mongo_db)} == {f.key: f.sync_schedule for f in feeds}
    assert load_feeds(tenants)[0].sync_schedule == feeds[0].sync_schedule
    tenants.write_text(yaml.safe_dump({"tenants": [{"tenant_id": "agent0000", "feeds": [gps()]}]}))
    assert load_feeds(tenants)[0].sync_schedule == "0 2 * * *"  # a cron given is kept


def test_nightly_sensor_keeps_a_cursor_and_names_each_tick_once(tmp_path, monkeypatch, mongo_resources, mongo_db):
    tenants = tmp_path / "tenants.yaml"
    write_tenants(tenants, [gps(sync_schedule="* * * * *")])
    sync_configs(mongo_db, load_feeds(tenants))
    with dg.DagsterInstance.ephemeral() as instance:
        with dg.build_sensor_context(instance=instance, resources=mongo_resources) as context:
            first = nightly_sync_sensor(context)
        assert not first.run_requests and first.cursor
        with dg.build_sensor_context(
            instance=instance, resources=mongo_resources, cursor="2026-01-01T00:00:00+00:00"
        ) as context:
            result = nightly_sync_sensor(context)
        (request,) = result.run_requests
        tick = datetime.fromisoformat(request.run_key.split("|")[2])
        assert request.partition_key == f"{(tick - timedelta(days=1)).date().isoformat()}|jpsrealtor.gps"
        assert request.tags == {"mls/feed": "jpsrealtor.gps", "mls/trigger": "nightly"}
        assert datetime.fromisoformat(result.cursor) >= tick


def test_the_safety_net_syncs_each_enabled_feed_once_per_period_in_its_own_slot(tmp_path, mongo_resources, mongo_db):
    """Every 15 minutes a slice of the feeds, each once every 4 hours (not every feed every
    tick: 8,000 runs an hour at 2,000 feeds); a feed synced since the last tick is skipped."""
    from mls_assets.defs.automation.schedules import rotation
    from mls_assets.lib.store.cursors import CURSORS_COLLECTION

    tenants = tmp_path / "tenants.yaml"
    tenants.write_text(
        yaml.safe_dump(
            {
                "tenants": [
                    {
                        "tenant_id": f"agent{n:02d}",
                        "feeds": [
                            gps(token_env=f"TOKEN_{n % 10}"),
                            crmls(enabled=n % 5 != 0, token_env=f"TOKEN_{n % 10}"),
                        ],
                    }
                    for n in range(20)
                ]
            }
        )
    )  # 20 sources of two feeds each (a brokerage's key); the slots are the sources'
    sync_configs(mongo_db, load_feeds(tenants))
    enabled = sorted(str(f.key) for f in read_configs(mongo_db) if f.enabled)
    start = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    _, slots, _ = rotation(start)
    assert slots == 16  # 4 hours of 15-minute ticks
    requested = []
    with dg.instance_for_test() as instance:
        for tick in range(slots):
            when = start + timedelta(minutes=15 * tick)
            with dg.build_schedule_context(
                instance=instance, scheduled_execution_time=when, resources=mongo_resources
            ) as context:
                result = intraday_status_sync(context)
            requests = [] if isinstance(result, dg.SkipReason) else list(result)
            assert all(r.partition_key == f"2026-11-20|{r.tags['mls/feed']}" for r in requests)
            assert all(r.run_key == f"intraday|{r.tags['mls/feed']}|{when.isoformat()}" for r in requests)
            requested += [r.tags["mls/feed"] for r in requests]
            assert len(requests) <= len(enabled) // 4  # a slice, never the fleet
        assert sorted(requested) == enabled  # each enabled feed once in the period, no disabled one

        when = start + timedelta(minutes=15 * slots)  # the next period: the same slots again
        with dg.build_schedule_context(
            instance=instance, scheduled_execution_time=when, resources=mongo_resources
        ) as context:
            first = [r.tags["mls/feed"] for r in intraday_status_sync(context)]
        assert first
        mongo_db[CURSORS_COLLECTION].insert_one(
            {"_id": first[0], "cursor": when, "updatedAt": when - timedelta(minutes=5)}
        )
        with dg.build_schedule_context(
            instance=instance, scheduled_execution_time=when, resources=mongo_resources
        ) as context:
            result = intraday_status_sync(context)
        again = [] if isinstance(result, dg.SkipReason) else [r.tags["mls/feed"] for r in result]
        assert again == first[1:]  # synced since the last tick (the probe's run): skipped


def test_crm_rescrape_says_it_has_nothing_to_do_until_properties_are_linked(tmp_path, mongo_resources, mongo_db):
    tenants = tmp_path / "tenants.yaml"
    write_tenants(tenants, [gps()])
    sync_configs(mongo_db, load_feeds(tenants))
    when = datetime(2026, 11, 20, 9, tzinfo=UTC)
    with dg.instance_for_test() as instance:
        with dg.build_schedule_context(
            instance=instance, scheduled_execution_time=when, resources=mongo_resources
        ) as context:
            skipped = crm_active_rescrape(context)
            assert isinstance(skipped, dg.SkipReason) and "nothing to re-scrape" in skipped.skip_message
            mongo_db["jpsrealtor_crm_properties"].insert_one(
                {"_id": "crm-1", "crm_status": "active", "mls_property_id": "K1", "mls_feed": "gps"}
            )
            (request,) = crm_active_rescrape(context)
    assert request.partition_key == "2026-11-20|jpsrealtor.gps" and request.tags["mls/trigger"] == "crm-rescrape"
    # exactly the linked listings are re-pulled
    assert request.run_config == {"ops": {"raw_listings": {"config": {"listing_keys": ["K1"]}}}}


def test_weekly_sweep_requests_one_run_per_enabled_feed(tmp_path, mongo_resources, mongo_db):
    tenants = tmp_path / "tenants.yaml"
    write_tenants(tenants, [gps(), crmls()])
    sync_configs(mongo_db, load_feeds(tenants))
    when = datetime(2026, 11, 22, 4, tzinfo=UTC)
    with dg.instance_for_test() as instance:
        with dg.build_schedule_context(
            instance=instance, scheduled_execution_time=when, resources=mongo_resources
        ) as context:
            requests = list(weekly_deletion_sweep(context))
    assert sorted(r.partition_key for r in requests) == ["jpsrealtor.crmls", "jpsrealtor.gps"]
    assert all(r.run_key.startswith("sweep|") and r.tags["mls/feed"] == r.partition_key for r in requests)


def test_runs_of_one_feed_are_queued_not_run_together():
    """The instance config limits runs per `mls/feed` value to one; every request carries it."""
    from mls_assets.lib.paths import project_root

    config = yaml.safe_load((project_root() / "instance" / "dagster.yaml").read_text())
    with dg.instance_for_test(overrides={"concurrency": config["concurrency"]}) as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert {"key": "mls/feed", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits


def test_a_cron_tick_is_never_taken_before_it_comes():
    """A sensor evaluated within a second before a tick took that tick early (its cursor then
    lay before the tick it had requested)."""
    from mls_assets.defs.automation.sensors import latest_tick

    start = datetime(2026, 12, 5, 21, 0, tzinfo=UTC)
    assert latest_tick("* * * * *", start, datetime(2026, 12, 5, 21, 50, 59, 754281, tzinfo=UTC)) == datetime(
        2026, 12, 5, 21, 50, tzinfo=UTC
    )
    assert latest_tick("* * * * *", start, datetime(2026, 12, 5, 21, 51, tzinfo=UTC)) == datetime(
        2026, 12, 5, 21, 51, tzinfo=UTC
    )
    assert latest_tick("0 2 * * *", start, datetime(2026, 12, 5, 21, 51, tzinfo=UTC)) is None
