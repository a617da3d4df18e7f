"""Operators onboard, pause, re-schedule, re-key and remove agents' feeds with commands, on
the real MongoDB, a real Dagster instance and the simulator: a tenant added by command is
found by the discovery sensor and synced with its stored token, which appears nowhere."""

import io
import json
import logging

import bson
import dagster as dg
import pytest

from mls_assets.cli import main
from mls_assets.defs.feeds.sensors import feed_discovery_sensor
from mls_assets.lib import credentials
from mls_assets.lib.catalogue import ACTIVE, CLOSED, EXPIRED, EXPIRED_PHOTOS, FLATTENED, PHOTOS, QUOTA_HELD, RAW
from mls_assets.lib.replication.routing import home_of_listing
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.tenants import CONFIGS_COLLECTION, load_feeds, sync_configs
from mls_assets.simulator import GPS_MLS_ID
from mls_assets_tests.support.chain import CHAIN

TOKEN = "tok-onboarded-AGENT-90210-secret"
FEED = "newagent.gps"


def cli(capsys, *argv, stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def operator(pipeline, simulator, monkeypatch, tmp_path):
    """Commands on the pipeline's database, a token key, a Dagster home of their own."""
    monkeypatch.setenv("MONGODB_DATABASE", pipeline.database.name)
    monkeypatch.setenv("MLS_TOKEN_KEY", credentials.new_key())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    simulator.add_token(TOKEN)
    return pipeline


def run_feed(pipeline, instance, feed=FEED) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        CHAIN,
        instance=instance,
        resources=pipeline.resources(),
        raise_on_error=False,
        partition_key=f"{pipeline.market.now.date().isoformat()}|{feed}",
        tags={"mls/feed": feed},
    )


def stored_in_status_collections(pipeline, key: FeedKey) -> int:
    return sum(pipeline.database[s.collection_name(key)].count_documents({}) for s in (ACTIVE, CLOSED, EXPIRED))


def add_agent(capsys, monkeypatch, simulator, *extra) -> tuple[int, str, str]:
    return cli(
        capsys,
        "tenants",
        "add",
        "newagent",
        "--mls",
        "gps",
        "--mls-id",
        GPS_MLS_ID,
        "--base-url",
        simulator.url,
        "--token-stdin",
        *extra,
        stdin=TOKEN + "\n",
        monkeypatch=monkeypatch,
    )


def test_an_agent_added_by_command_is_discovered_and_synced_with_its_stored_token(
    operator, simulator, monkeypatch, tmp_path, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    capsys = capfd  # the commands' output and the run's logs, at the file descriptors
    code, out, err = add_agent(capsys, monkeypatch, simulator, "--json")
    texts = out + err
    assert code == 0, err
    assert json.loads(out)["feeds"][0]["token"] == "stored (encrypted)"
    stored = operator.database[CONFIGS_COLLECTION].find_one({"tenantId": "newagent"})
    assert stored["mlsConfigs"][0]["managedBy"] == "command" and stored["mlsConfigs"][0]["tokenCiphertext"]

    home = tmp_path / "instance"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        instance.add_dynamic_partitions("feeds", ["jpsrealtor.gps", "jpsrealtor.crmls", "otheragent.gps"])
        context = dg.build_sensor_context(instance=instance, resources={"mongo": operator.mongo})
        result = feed_discovery_sensor(context)
        assert [r.partition_keys for r in result.dynamic_partitions_requests] == [[FEED]]
        instance.add_dynamic_partitions("feeds", [FEED])
        synced = run_feed(operator, instance)
        assert synced.success
        assert operator.database[ACTIVE.collection_name(FeedKey.parse(FEED))].estimated_document_count() > 0

        code, out, _ = cli(capsys, "tenants", "show", "newagent", "--json")
        code, status_out, _ = cli(capsys, "feeds", "status", FEED, "--json")
        texts += out + status_out
        shown = json.loads(status_out)["config"]  # in the README's words: the MLS, and where it comes from
        assert (shown["mls"], shown["provider"]) == (FeedKey.parse(FEED).mls, "spark") and "apiProvider" not in shown

    found_in_storage = [str(p) for p in home.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    found_in_mongo = [
        name
        for name in operator.database.list_collection_names()
        for doc in operator.database[name].find()
        if TOKEN.encode() in bson.encode(doc)
    ]
    captured = capfd.readouterr()
    assert not found_in_storage and not found_in_mongo
    assert TOKEN not in texts and TOKEN not in caplog.text and TOKEN not in captured.out + captured.err


def test_a_wrong_key_fails_the_run_clearly_and_rotation_keeps_feeds_working(operator, simulator, capsys, monkeypatch):
    first_key = credentials.new_key()
    monkeypatch.setenv("MLS_TOKEN_KEY", first_key)
    assert add_agent(capsys, monkeypatch, simulator)[0] == 0
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("feeds", [FEED])
        monkeypatch.setenv("MLS_TOKEN_KEY", credentials.new_key())  # not the key it was stored with
        failed = run_feed(operator, instance)
        assert not failed.success
        errors = " ".join(
            e.event_specific_data.error.to_string()
            for e in failed.all_events
            if getattr(e.event_specific_data, "error", None) is not None
        )
        assert f"feed {FEED}: its stored token is unusable" in errors and TOKEN not in errors

        second_key = credentials.new_key()
        monkeypatch.setenv("MLS_TOKEN_KEY", f"{second_key},{first_key}")
        code, out, _ = cli(capsys, "tenants", "rotate-key", "--json")
        assert code == 0 and json.loads(out) == {"reencrypted": 1}
        monkeypatch.setenv("MLS_TOKEN_KEY", second_key)  # the old key dropped
        assert run_feed(operator, instance).success


def test_storing_a_token_without_a_key_is_refused(operator, simulator, capsys, monkeypatch):
    monkeypatch.delenv("MLS_TOKEN_KEY")
    code, _, err = add_agent(capsys, monkeypatch, simulator)
    assert code == 2 and "MLS_TOKEN_KEY is not set" in err and TOKEN not in err
    assert operator.database[CONFIGS_COLLECTION].find_one({"tenantId": "newagent"}) is None


def test_pause_reschedule_quota_and_remove_by_command_and_a_file_sync_keeps_them(
    operator, simulator, capsys, monkeypatch, tenants_file
):
    assert add_agent(capsys, monkeypatch, simulator)[0] == 0
    assert cli(capsys, "feeds", "disable", FEED)[0] == 0
    assert cli(capsys, "feeds", "set-cron", FEED, "30 4 * * *")[0] == 0
    assert cli(capsys, "feeds", "set-quota", FEED, "25", "--enforce")[0] == 0
    code, _, err = cli(capsys, "feeds", "set-cron", FEED, "every day")
    assert code == 2 and "cron" in err
    sync_configs(operator.database, load_feeds(tenants_file))  # the tenants file changed: its tenants rewritten
    code, out, _ = cli(capsys, "tenants", "show", "newagent", "--json")
    (config,) = json.loads(out)["feeds"]
    assert (config["syncEnabled"], config["syncSchedule"], config["maxListings"], config["enforceQuota"]) == (
        False,
        "30 4 * * *",
        25,
        True,
    )
    assert config["token"] == "stored (encrypted)" and "tokenCiphertext" not in out

    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("feeds", [FEED])
        assert run_feed(operator, instance).success  # enforced: no more than 25 listings stored
        key = FeedKey.parse(FEED)
        assert stored_in_status_collections(operator, key) == 25
        code, out, _ = cli(capsys, "tenants", "show", "newagent", "--json")
        assert json.loads(out)["feeds"][0]["currentListings"] == 25

        assert cli(capsys, "feeds", "set-quota", FEED, "10", "--no-enforce")[0] == 0
        over = run_feed(operator, instance)  # not enforced: the held listings come in, and the check warns
        (quota,) = [c for c in over.get_asset_check_evaluations() if c.check_name == "within_listing_quota"]
        assert not quota.passed and quota.severity == dg.AssetCheckSeverity.WARN
        everything = stored_in_status_collections(operator, key)
        assert everything > 25 and quota.metadata["offending"].value == everything - 10

    from mls_assets.lib.media.storage import media_key, storage_from_settings

    storage = storage_from_settings()  # the test session's folder (conftest), never the checkout's
    theirs, others = (
        media_key(FeedKey.parse(FEED), "L1", "P1", "v", "large"),
        media_key(FeedKey.parse("x.gps"), "L1", "P1", "v", "large"),
    )
    for key in (theirs, others):
        storage.put(key, b"webp")
    code, out, _ = cli(capsys, "tenants", "remove", "newagent", "--purge", "--yes", "--json")
    removed = json.loads(out)
    assert removed["removed"] == [FEED] and "newagent_gps_listings" in removed["dropped"]
    assert removed["mediaObjectsDeleted"] == 1 and not storage.exists(theirs) and storage.exists(others)
    assert "newagent_gps_listings" not in operator.database.list_collection_names()
    assert operator.database[CONFIGS_COLLECTION].find_one({"tenantId": "newagent"}) is None


def test_listings_a_quota_held_back_come_in_at_the_next_run_once_it_allows_them(
    operator, simulator, capsys, monkeypatch
):
    """An agent on a 20-listing plan upgrades: raised, the next run brings in as many held
    listings as there is room for (oldest held first); lifted, all of them; nothing re-pulled."""
    assert add_agent(capsys, monkeypatch, simulator)[0] == 0
    assert cli(capsys, "feeds", "set-quota", FEED, "20", "--enforce")[0] == 0
    key = FeedKey.parse(FEED)
    held = operator.database[QUOTA_HELD.collection_name(key)]
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("feeds", [FEED])
        first = run_feed(operator, instance)
        assert first.success and stored_in_status_collections(operator, key) == 20
        flattened = operator.database[FLATTENED.collection_name(key)].count_documents({})
        routable = flattened - sum(
            1
            for d in operator.database[FLATTENED.collection_name(key)].find(
                {}, {"standardStatus": 1, "statusChangeTimestamp": 1, "modificationTimestamp": 1}
            )
            if home_of_listing(d, operator.market.now) is None
        )
        assert held.count_documents({}) == routable - 20 > 20  # every held key is known
        oldest = [d["_id"] for d in held.find().sort([("heldAt", 1), ("_id", 1)]).limit(10)]

        assert cli(capsys, "feeds", "set-quota", FEED, "30", "--enforce")[0] == 0
        raised = run_feed(operator, instance)
        assert raised.success and stored_in_status_collections(operator, key) == 30
        stored_keys = {
            d["listingKey"]
            for s in (ACTIVE, CLOSED, EXPIRED)
            for d in operator.database[s.collection_name(key)].find({}, {"listingKey": 1})
        }
        assert set(oldest) <= stored_keys and not held.count_documents({"_id": {"$in": oldest}})
        (check,) = [c for c in raised.get_asset_check_evaluations() if c.check_name == "within_listing_quota"]
        assert check.passed and check.metadata["readmitted"].value == 10

        assert cli(capsys, "feeds", "set-quota", FEED, "none")[0] == 0
        lifted = run_feed(operator, instance)
        assert lifted.success and stored_in_status_collections(operator, key) == routable
        assert held.count_documents({}) == 0
        (check,) = [c for c in lifted.get_asset_check_evaluations() if c.check_name == "within_listing_quota"]
        assert check.metadata["readmitted"].value == routable - 30 and check.metadata["held_back"].value == 0
        with_photos = {
            d["listingKey"]
            for d in operator.database[RAW.collection_name(key)].find(
                {"record.StandardFields.Photos.0": {"$exists": True}}, {"listingKey": 1}
            )
        }
        photographed = {
            k
            for s in (PHOTOS, EXPIRED_PHOTOS)
            for k in operator.database[s.collection_name(key)].distinct("listingKey")
        }
        stored_keys = {
            d["listingKey"]
            for s in (ACTIVE, CLOSED, EXPIRED)
            for d in operator.database[s.collection_name(key)].find({}, {"listingKey": 1})
        }
        assert with_photos & stored_keys and with_photos & stored_keys <= photographed  # brought in with their photos
        pulled = [m for m in lifted.asset_materializations_for_node("raw_listings")]
        assert all(m.metadata["pulled"].value == 0 for m in pulled)  # brought in from what was stored, not re-pulled
        code, out, _ = cli(capsys, "tenants", "show", "newagent", "--json")
        assert json.loads(out)["feeds"][0]["currentListings"] == routable


def test_feed_history_errors_sync_now_and_cancel(operator, simulator, capsys, monkeypatch, tmp_path):
    assert add_agent(capsys, monkeypatch, simulator)[0] == 0
    (tmp_path / "instance").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "instance")) as instance:
        instance.add_dynamic_partitions("feeds", [FEED])
        assert run_feed(operator, instance).success
        monkeypatch.setenv("DAGSTER_HOME", instance.root_directory)  # the commands read this instance
        code, out, _ = cli(capsys, "feeds", "history", FEED, "--json")
        (run,) = json.loads(out)
        assert run["status"] == "SUCCESS" and run["counts"]["raw_listings.pulled_in_window"] > 0
        code, out, _ = cli(capsys, "feeds", "errors", FEED, "--json")
        assert json.loads(out)["failedRuns"] == []
        code, out, _ = cli(capsys, "feeds", "status", FEED, "--json")
        status = json.loads(out)
        assert status["lastSuccess"]["runId"] == run["runId"] and status["collections"]["listings"] > 0
        assert status["inProgress"] == [] and status["config"]["token"] == "stored (encrypted)"

        code, out, err = cli(capsys, "feeds", "sync-now", FEED, "--day", "2026-05-30", "--json")
        assert code == 0, err
        (queued,) = json.loads(out)["runIds"]
        run = instance.get_run_by_id(queued)
        assert run.status == dg.DagsterRunStatus.QUEUED and run.tags["mls/feed"] == FEED
        assert run.tags["dagster/partition"] == f"2026-05-30|{FEED}"
        code, _, err = cli(capsys, "feeds", "sync-now", FEED, "--workspace", str(tmp_path / "missing.yaml"))
        assert code == 2 and err.startswith("error: dagster job launch failed for 2026-") and "Traceback" not in err
        code, out, _ = cli(capsys, "feeds", "cancel", FEED, "--json")
        assert json.loads(out)["cancelled"] == [queued]
        assert instance.get_run_by_id(queued).status == dg.DagsterRunStatus.CANCELED


def test_an_agent_on_a_reso_mls_is_added_by_command_and_synced_through_the_reso_api(
    operator, simulator, market, monkeypatch, capfd
):
    from mls_assets.simulator.reso import RESO_SYSTEM_NAMES

    code, out, err = cli(
        capfd,
        "tenants",
        "add",
        "gridagent",
        "--mls",
        "gps",
        "--provider",
        "reso",
        "--mls-id",
        RESO_SYSTEM_NAMES[GPS_MLS_ID],
        "--base-url",
        simulator.reso_url,
        "--token-stdin",
        stdin=TOKEN + "\n",
        monkeypatch=monkeypatch,
    )
    assert code == 0, err
    stored = operator.database[CONFIGS_COLLECTION].find_one({"tenantId": "gridagent"})["mlsConfigs"][0]
    assert (stored["apiProvider"], stored["propertyTypes"], stored["rateLimit"]["per_hour"]) == ("reso", [], 7200)
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("feeds", ["gridagent.gps"])
        assert run_feed(operator, instance, "gridagent.gps").success
    assert operator.collection("gridagent.gps", "raw_listings").count_documents({}) == len(
        [s for s in market.states() if s.timeline.mls_id == GPS_MLS_ID]
    )
    code, _, err = cli(
        capfd,
        "tenants",
        "add",
        "badagent",
        "--mls",
        "gps",
        "--provider",
        "reso",
        "--mls-id",
        "a b",
        "--token-env",
        "X_TOKEN",
    )
    assert code == 2 and "OriginatingSystemName" in err
