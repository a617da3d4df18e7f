"""Each check passes on good data and fails on data broken in exactly its way: the checks
that run with the chain on what the run wrote, the audits on whole collections; blocking
checks stop what is downstream; the alert sensor raises one alert per failure."""

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from mls_assets.defs.partitions import feed_day_key
from mls_assets.defs.quality.checks import AUDIT_CHECKS, collection_audit
from mls_assets.defs.quality.sensors import failure_alert_sensor
from mls_assets.lib.store.cursors import CURSORS_COLLECTION
from mls_assets.simulator import Market
from mls_assets_tests.support.chain import ANCHOR, CHAIN, FEEDS, Pipeline
from mls_assets_tests.support.servers import free_port

GPS = "jpsrealtor.gps"
IN_RUN = {
    "raw_listings:pull_duration_within_limit",
    "flattened_listings:reject_rate_below_threshold",
    *(
        f"{a}:{c}"
        for a in ("active_listings", "closed_listings", "expired_listings")
        for c in ("unique_listing_key", "required_fields")
    ),
    "active_listings:one_status_collection",
    "active_listings:within_listing_quota",
    "expired_listings:expires_at_is_a_date_within_retention",
    "listing_photos:no_orphan_or_wiped_photos",
    "crm_linked_properties:crm_links_consistent",
}


@pytest.fixture
def market():
    """A clean feed: no unparseable records (the reject-rate check is tested on its own)."""
    return Market(listings=70, seed=21, anchor=ANCHOR, bad_record_rate=0.0)


def run_chain(pipeline, **spark) -> tuple[dg.ExecuteInProcessResult, dict]:
    """The chain with its own checks, for today's partition."""
    result = dg.materialize(
        CHAIN,
        instance=pipeline.instance,
        resources=pipeline.resources(**spark),
        partition_key=str(feed_day_key(GPS, pipeline.market.now.date().isoformat())),
        tags={"mls/feed": GPS},
        raise_on_error=False,
    )
    return result, evaluations_of(result)


def run_audits(pipeline) -> tuple[dg.ExecuteInProcessResult, dict]:
    """What `quality_audit_job` runs: `collection_audit` with its checks (the audits)."""
    result = dg.materialize(
        [*CHAIN, collection_audit, *AUDIT_CHECKS],
        instance=pipeline.instance,
        resources=pipeline.resources(),
        selection=dg.AssetSelection.assets(collection_audit),
        raise_on_error=False,
    )
    return result, evaluations_of(result)


def evaluations_of(result) -> dict:
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e for e in result.get_asset_check_evaluations()}


def sample(evaluation) -> str:
    meta = evaluation.metadata
    return " ".join(meta["first_offending_keys"].value) if "first_offending_keys" in meta else ""


def test_every_check_passes_on_good_data(pipeline):
    for feed in ("jpsrealtor.crmls", "otheragent.gps"):  # the audits cover every enabled feed
        pipeline.sync(feed)
    result, evaluations = run_chain(pipeline)
    assert set(evaluations) == IN_RUN
    assert evaluations["raw_listings:pull_duration_within_limit"].metadata["pull_seconds"].value > 0
    assert {name: e.description for name, e in evaluations.items() if not e.passed} == {}
    assert result.success
    _, audits = run_audits(pipeline)
    assert len(audits) == len(AUDIT_CHECKS)
    assert {name: e.description for name, e in audits.items() if not e.passed} == {}


def change(market, states, **moves) -> None:
    """New versions of these listings, a minute from now (a price cut, or a status move)."""
    for state in states:
        state.timeline.times.append(market._clock + 60)
        state.timeline.events.append(("status", moves["status"]) if "status" in moves else ("price", 99_000))
    market._state_cache = None
    market.set_clock(market.now + timedelta(minutes=5))


def gps_active(market) -> list:
    return [s for s in market.states() if s.status == "Active" and s.timeline.mls_id.startswith("2019")]


def test_a_written_listing_without_a_required_field_fails_its_check(pipeline, market, monkeypatch):
    import mls_assets.defs.listings.assets as listings

    target = gps_active(market)[0]  # written for the first time by this run
    breaking(listings, monkeypatch, target.timeline.key, listingId=None)
    _, evaluations = run_chain(pipeline)
    required = evaluations["active_listings:required_fields"]
    assert not required.passed and target.timeline.key in sample(required)
    assert evaluations["closed_listings:required_fields"].passed


def test_a_listing_left_in_two_collections_fails_the_blocking_check_and_stops_the_photos(pipeline, market, monkeypatch):
    from mls_assets.lib.store import writes

    pipeline.sync(GPS)
    target = gps_active(market)[0]
    change(market, [target], status="Closed")
    monkeypatch.setattr(
        writes.CollectionWriter, "live_siblings", property(lambda self: [], lambda self, v: None), raising=False
    )
    result, evaluations = run_chain(pipeline)  # the move writes closed but never leaves active
    twins = evaluations["active_listings:one_status_collection"]
    assert not twins.passed and target.timeline.key in sample(twins)
    ran = {e.step_key for e in result.get_step_success_events()}
    assert "photo_collections" not in ran and "crm_linked_properties" not in ran


def breaking(listings_module, monkeypatch, key: str, **changes) -> None:
    """The flattened listing `key` comes out of the transform with these fields changed."""
    transform = listings_module.transform_record

    def broken(record, *args, **kwargs):
        result = transform(record, *args, **kwargs)
        if result.listing and result.listing["listingKey"] == key:
            result.listing.update(changes)
        return result

    monkeypatch.setattr(listings_module, "transform_record", broken)


def test_an_expired_listing_written_without_a_date_fails_its_check(pipeline, market, monkeypatch):
    import mls_assets.defs.listings.assets as listings

    pipeline.sync(GPS)
    target = gps_active(market)[0]
    change(market, [target], status="Expired")
    breaking(listings, monkeypatch, target.timeline.key, expiresAt="in 90 days")
    _, evaluations = run_chain(pipeline)
    expiry = evaluations["expired_listings:expires_at_is_a_date_within_retention"]
    assert not expiry.passed and target.timeline.key in sample(expiry)


def test_photos_lost_by_a_run_fail_its_check(pipeline, monkeypatch):
    import mls_assets.lib.replication.photos as photos

    monkeypatch.setattr(photos, "extract_photos", lambda *args: ([], []))
    _, evaluations = run_chain(pipeline)
    wiped = evaluations["listing_photos:no_orphan_or_wiped_photos"]
    assert not wiped.passed and wiped.metadata["listings_missing_photos_in_photos"].value > 0


def test_a_link_the_run_finds_one_sided_fails_its_check(pipeline, market):
    pipeline.sync(GPS)
    target = gps_active(market)[0]
    pipeline.database["jpsrealtor_crm_properties"].insert_one(
        {"_id": "P9", "mls_feed": "gps", "mls_property_id": target.timeline.key, "mls_content_hash": "old"}
    )
    change(market, [target])
    _, evaluations = run_chain(pipeline)
    links = evaluations["crm_linked_properties:crm_links_consistent"]
    assert not links.passed and "P9" in sample(links)


def test_each_audit_fails_on_data_broken_its_way(pipeline):
    for feed in (GPS, "jpsrealtor.crmls", "otheragent.gps"):  # the audits cover every enabled feed
        pipeline.sync(feed)
    col = lambda name: pipeline.collection(GPS, name)
    expired = col("expired_listings").find_one()
    col("expired_listings").update_one({"_id": expired["_id"]}, {"$set": {"expiresAt": "2026-09-01T00:00:00Z"}})
    col("photos").insert_one({"listingKey": "NO-SUCH-LISTING", "photoId": "orphan-1", "order": 0})
    wiped = col("listings").find_one({"photoCount": {"$gt": 0}})["listingKey"]
    col("photos").delete_many({"listingKey": wiped})  # photos gone for a listing that has some
    twin = col("listings").find_one({"listingKey": {"$ne": wiped}}, {"_id": 0})
    col("closed_listings").insert_one(dict(twin))  # one listing in two collections
    col("closed_listings").update_one({"listingKey": twin["listingKey"]}, {"$unset": {"listingId": ""}})
    dup = col("expired_listings").find_one({"listingKey": {"$ne": expired["listingKey"]}}, {"_id": 0})
    col("expired_listings").drop_index("listingKey_1")
    col("expired_listings").insert_one(dict(dup))  # a duplicate key
    pipeline.database["jpsrealtor_crm_properties"].insert_one(
        {"_id": "P1", "mls_feed": "gps", "mls_property_id": twin["listingKey"]}
    )  # linked one way only
    pipeline.database[CURSORS_COLLECTION].update_one(
        {"_id": GPS}, {"$set": {"cursor": datetime(2020, 1, 1, tzinfo=UTC)}}
    )

    _, audits = run_audits(pipeline)
    failed = {name for name, e in audits.items() if not e.passed}
    assert failed == {
        "collection_audit:expires_at_within_retention",
        "collection_audit:orphan_or_wiped_photos",
        "collection_audit:one_status_collection",
        "collection_audit:closed_required_fields",
        "collection_audit:expired_unique_listing_key",
        "collection_audit:crm_links_consistent",
        "collection_audit:feed_is_fresh",
    }
    assert expired["listingKey"] in sample(audits["collection_audit:expires_at_within_retention"])
    assert wiped in sample(audits["collection_audit:orphan_or_wiped_photos"])
    assert "NO-SUCH-LISTING" in sample(audits["collection_audit:orphan_or_wiped_photos"])
    assert twin["listingKey"] in sample(audits["collection_audit:one_status_collection"])
    assert twin["listingKey"] in sample(audits["collection_audit:closed_required_fields"])
    assert dup["listingKey"] in sample(audits["collection_audit:expired_unique_listing_key"])
    assert "P1" in sample(audits["collection_audit:crm_links_consistent"])
    assert not audits["collection_audit:feed_is_fresh"].passed


def test_a_high_reject_rate_fails_its_check(pipeline, market):
    market.bad_record_rate = 0.2
    _, evaluations = run_chain(pipeline)
    rate = evaluations["flattened_listings:reject_rate_below_threshold"]
    assert not rate.passed and rate.metadata["reject_rate"].value >= 0.1


def test_the_reject_rate_counts_the_records_quarantined_at_the_pull(pipeline, market):
    """Hostile records (unusable keys, NaN, invalid text, deep nesting, implausible dates) are
    quarantined by the pull's screen and never reach raw: the rate is over every record read."""
    market.hostile_rate = 0.2
    result, evaluations = run_chain(pipeline)
    rate = evaluations["flattened_listings:reject_rate_below_threshold"]
    meta = {name: value.value for name, value in rate.metadata.items()}
    held = pipeline.database["jpsrealtor_gps_rejects"].count_documents({"runId": result.run_id, "stage": "raw"})
    assert meta["pull_rejects"] == held > 0
    assert meta["rejects"] == meta["pull_rejects"] + meta["flatten_rejects"]
    assert meta["records_read"] == meta["rejects"] + pipeline.collection(GPS, "flattened_listings").count_documents({})
    assert not rate.passed and meta["reject_rate"] == round(held / meta["records_read"], 4) > 0.05


def test_a_source_count_far_from_the_stored_one_fails_its_check(pipeline, market):
    pipeline.sync(GPS)
    stored = pipeline.collection(GPS, "listings")
    stored.delete_many({"listingKey": {"$in": [d["listingKey"] for d in stored.find().limit(10)]}})
    _, audits = run_audits(pipeline)
    count = audits["collection_audit:count_matches_source"]
    assert (
        not count.passed
        and count.metadata["counts"].value[GPS]["source"] > count.metadata["counts"].value[GPS]["stored"]
    )


def test_a_slow_pull_fails_its_check(pipeline, monkeypatch):
    import mls_assets.defs.listings.assets as listings

    monkeypatch.setattr(listings, "MAX_PULL_MINUTES", 0.0)
    _, evaluations = run_chain(pipeline)
    assert not evaluations["raw_listings:pull_duration_within_limit"].passed


def test_a_lost_unique_index_fails_the_blocking_check_and_stops_the_assets_downstream(pipeline):
    pipeline.sync(GPS)
    pipeline.collection(GPS, "listings").drop_index("listingKey_1")
    import mls_assets.lib.store.writes as writes

    original = writes.ensure_indexes
    writes.ensure_indexes = lambda collection, specs: None  # as if the index could not be rebuilt
    try:
        result, evaluations = run_chain(pipeline)
    finally:
        writes.ensure_indexes = original
    unique = evaluations["active_listings:unique_listing_key"]
    assert not unique.passed and unique.severity == dg.AssetCheckSeverity.ERROR
    assert "listings" in sample(unique)
    ran = {e.step_key for e in result.get_step_success_events()}
    assert "photo_collections" not in ran and "crm_linked_properties" not in ran
    assert not result.success


class Webhook:
    """A local webhook that records what it is sent."""

    def __init__(self):
        self.received: list[dict] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def evaluate_sensor(pipeline, cursor=None) -> dg.SensorResult:
    with dg.build_sensor_context(instance=pipeline.instance, resources=pipeline.resources(), cursor=cursor) as context:
        return failure_alert_sensor(context)


def test_the_alert_sensor_raises_one_alert_per_failure_and_survives_a_dead_webhook(pipeline, monkeypatch):
    pipeline.sync(GPS)
    twin = pipeline.collection(GPS, "listings").find_one({}, {"_id": 0})
    pipeline.collection(GPS, "closed_listings").insert_one(twin)
    result, evaluations = run_audits(pipeline)
    failures = [name for name, e in evaluations.items() if not e.passed]
    assert failures

    monkeypatch.setenv("ALERT_WEBHOOK_URL", f"http://127.0.0.1:{free_port()}/down")  # nobody listens
    first = evaluate_sensor(pipeline)
    alerts = pipeline.database["alerts"]
    check_alerts = list(alerts.find({"kind": "asset_check"}))
    # one alert per audit and feed at fault: the two feeds never synced are stale and far from the source
    at_fault = sorted(
        f"collection_audit:{c}|{f}"
        for c in ("count_matches_source", "feed_is_fresh")
        for f in ("jpsrealtor.crmls", "otheragent.gps")
    ) + ["collection_audit:one_status_collection|" + GPS]
    assert sorted(f"{a['asset']}:{a['check']}|{a['feed']}" for a in check_alerts) == at_fault
    assert sorted(failures) == sorted({name.split("|")[0] for name in at_fault})
    assert all(a["delivered"] is False and "ConnectError" in a["deliveryError"] for a in check_alerts)

    webhook = Webhook()
    try:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", webhook.url)
        evaluate_sensor(pipeline, cursor=first.cursor)  # redelivers what the dead webhook missed
        evaluate_sensor(pipeline)  # from scratch: the same failures are not alerted twice
    finally:
        webhook.close()
    assert alerts.count_documents({}) == len(at_fault)
    assert len(webhook.received) == len(at_fault)
    posted = next(p for p in webhook.received if p["check"] == "one_status_collection")
    assert posted["asset"] == "collection_audit" and posted["severity"] == "ERROR" and posted["runId"] == result.run_id
    assert posted["feed"] == GPS and posted["partition"] is None  # the feed whose data fails, not a run's
    assert posted["link"].endswith(f"/runs/{result.run_id}") and posted["message"]
    assert posted["event"] == "opened" and datetime.fromisoformat(posted["openedAt"]) <= datetime.now(UTC)

    # fixed: the audits pass again, and each open alert is resolved with one notice
    pipeline.collection(GPS, "closed_listings").delete_one({"listingKey": twin["listingKey"]})
    again, evaluations = run_audits(pipeline)
    assert evaluations["collection_audit:one_status_collection"].passed
    webhook = Webhook()
    try:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", webhook.url)
        evaluate_sensor(pipeline, cursor=first.cursor)
    finally:
        webhook.close()
    notice = next(p for p in webhook.received if p["check"] == "one_status_collection")
    assert notice["event"] == "resolved" and notice["resolvedByRunId"] == again.run_id
    assert alerts.count_documents({"state": "open", "check": "one_status_collection"}) == 0


def test_a_failed_run_alerts_once_with_its_feed_partition_and_cause_until_the_feed_succeeds(
    pipeline, simulator, monkeypatch
):
    monkeypatch.setenv("MLS_UI_URL", "http://dagster.example.internal:3300/")
    webhook = Webhook()
    monkeypatch.setenv("ALERT_WEBHOOK_URL", webhook.url)
    try:
        failed = []
        for _ in range(2):  # the same failure twice: one alert
            simulator.faults.enqueue("wrong_host")
            result, _ = run_chain(pipeline)
            assert not result.success
            failed.append(result.run_id)
        first = evaluate_sensor(pipeline)
        ok, _ = run_chain(pipeline)
        assert ok.success
        evaluate_sensor(pipeline, cursor=first.cursor)
    finally:
        webhook.close()
    (opened,) = [p for p in webhook.received if p["kind"] == "run_failure" and p["event"] == "opened"]
    partition = str(feed_day_key(GPS, pipeline.market.now.date().isoformat()))
    assert (opened["feed"], opened["partition"], opened["step"]) == (GPS, partition, "raw_listings")
    assert "1021" in opened["cause"] and GPS in opened["message"] and "raw_listings" in opened["message"]
    assert opened["link"] == f"http://dagster.example.internal:3300/runs/{failed[0]}"
    stored = pipeline.database["alerts"].find_one({"_id": opened["id"]})
    assert stored["occurrences"] == 2 and stored["state"] == "resolved" and stored["resolvedByRunId"] == ok.run_id
    (resolved,) = [p for p in webhook.received if p["kind"] == "run_failure" and p["event"] == "resolved"]
    assert resolved["id"] == opened["id"]


def test_the_alert_sensor_reads_every_run_since_its_cursor_a_page_at_a_time(pipeline, monkeypatch):
    """More failed runs than a page (there was a 200-run cap per tick, and runs sharing the
    last update time across two pages could be skipped): each alerts, none twice."""
    from dagster._core.test_utils import create_run_for_test

    from mls_assets.defs.quality import sensors

    monkeypatch.setattr(sensors, "ALERT_RUNS_PAGE", 2)
    feeds = [f"agent{n}.gps" for n in range(7)]
    for feed in feeds:
        run = create_run_for_test(
            pipeline.instance,
            job_name="replication_job",
            tags={"dagster/partition/feed": feed},
            status=dg.DagsterRunStatus.STARTED,
        )
        pipeline.instance.report_run_failed(run, message="boom")
    first = evaluate_sensor(pipeline)
    alerts = pipeline.database["alerts"]
    assert sorted(a["feed"] for a in alerts.find({"kind": "run_failure"})) == sorted(feeds)
    evaluate_sensor(pipeline, cursor=first.cursor)
    assert [a["occurrences"] for a in alerts.find({"kind": "run_failure"})] == [1] * len(feeds)


def test_a_run_check_alert_names_the_run_s_feed_and_partition(pipeline, monkeypatch):
    """Run checks are not partitioned (Dagster records a range run's partitioned check under no
    partition and shows every day "skipped"): their alert carries the run's feed and days."""
    target = pipeline.collection(GPS, "listings")
    result, evaluations = run_chain(pipeline)
    assert {e.partition for e in evaluations.values()} == {None} and result.success
    monkeypatch.setattr("mls_assets.defs.listings.assets.REJECT_RATE_THRESHOLD", -1.0)  # every run "fails" it
    failed, _ = run_chain(pipeline)
    evaluate_sensor(pipeline)
    (alert,) = pipeline.database["alerts"].find({"kind": "asset_check"})
    partition = str(feed_day_key(GPS, pipeline.market.now.date().isoformat()))
    assert (alert["feed"], alert["partition"], alert["check"], alert["runId"]) == (
        GPS,
        partition,
        "reject_rate_below_threshold",
        failed.run_id,
    )
    assert target.count_documents({}) > 0


def test_an_audit_alert_goes_to_the_feed_whose_data_fails_never_to_the_run_s_feed(pipeline):
    """Two feeds synced, one broken: the audit opens one alert, for the broken feed, with its
    own keys; a run of the other feed that carries the audit changes nothing."""
    other = "jpsrealtor.crmls"
    for feed in (GPS, other):
        pipeline.sync(feed)
    twin = pipeline.collection(other, "listings").find_one({}, {"_id": 0})
    pipeline.collection(other, "closed_listings").insert_one(twin)
    # the audit inside a run of GPS's partition (as a job-page backfill or a CLI --select would carry it)
    result = dg.materialize(
        [*CHAIN, collection_audit, *AUDIT_CHECKS],
        instance=pipeline.instance,
        resources=pipeline.resources(),
        selection=dg.AssetSelection.assets(collection_audit),
        tags={"mls/feed": GPS, "dagster/partition/feed": GPS},
        raise_on_error=False,
    )
    audit = evaluations_of(result)["collection_audit:one_status_collection"]
    assert not audit.passed and list(audit.metadata["feeds_at_fault"].value) == [other]
    evaluate_sensor(pipeline)
    (alert,) = pipeline.database["alerts"].find({"kind": "asset_check", "check": "one_status_collection"})
    assert (alert["feed"], alert["partition"]) == (other, None)
    stale = pipeline.database["alerts"].find({"check": "feed_is_fresh"})  # the feed never synced, each its own
    assert sorted(a["feed"] for a in stale) == ["otheragent.gps"]
    assert alert["firstOffendingKeys"] == [twin["listingKey"]] and alert["offending"] == 1


def test_the_ui_shows_each_check_s_own_state_after_a_range_run_and_an_audit(pipeline):
    """The state the UI's asset-graph query shows (`executionForLatestMaterialization`, and
    `partitionStatuses` for partitioned checks): passed checks show passed after a range run,
    a failed audit shows failed, not "skipped" or "not evaluated"."""
    with dg.instance_for_test() as on_disk:  # a workspace, as the webserver's, needs an instance on disk
        on_disk.add_dynamic_partitions("feeds", FEEDS)
        pipeline = Pipeline(pipeline.market, pipeline.database, pipeline.mongo.uri, on_disk)
        shown = _check_states_the_ui_shows(pipeline)
    assert shown["collection_audit:one_status_collection"] == "FAILED"
    assert shown["collection_audit:crm_links_consistent"] == "SUCCEEDED"
    in_run = {name: status for name, status in shown.items() if name in IN_RUN}
    assert in_run and set(in_run.values()) == {"SUCCEEDED"}, in_run


def _check_states_the_ui_shows(pipeline: Pipeline) -> dict:
    """After a range run and an audit: each check's state as the UI's asset-graph query shows it."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import ModuleTarget
    from dagster_graphql.test.utils import execute_dagster_graphql

    today = pipeline.market.now.date()
    pipeline.backfill(GPS, (today - timedelta(days=3)).isoformat(), today.isoformat())
    twin = pipeline.collection(GPS, "listings").find_one({}, {"_id": 0})
    pipeline.collection(GPS, "closed_listings").insert_one(twin)
    run_audits(pipeline)
    query = """query { assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks {
      name partitionStatuses { __typename } executionForLatestMaterialization { status } } } } } }"""
    target = ModuleTarget(
        module_name="mls_assets.definitions", attribute=None, working_directory=None, location_name="mls_assets"
    )
    with WorkspaceProcessContext(pipeline.instance, target) as workspace:
        answer = execute_dagster_graphql(workspace.create_request_context(), query)
    shown = {}
    for node in answer.data["assetNodes"]:
        for check in (node["assetChecksOrError"] or {}).get("checks") or []:
            assert check["partitionStatuses"] is None  # no partitioned check: the UI shows the latest run's
            execution = check["executionForLatestMaterialization"]
            shown[f"{'/'.join(node['assetKey']['path'])}:{check['name']}"] = execution and execution["status"]
    return shown
