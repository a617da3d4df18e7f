"""Each check passes on good data and fails on data broken in exactly its way; blocking
checks stop what is downstream; the alert sensor raises one alert per failure."""

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from mls_assets.defs.partitions import feed_day_key
from mls_assets.defs.quality.checks import CHECKS
from mls_assets.defs.quality.sensors import failure_alert_sensor
from mls_assets.lib.spark.simulator import Market
from mls_assets_tests.conftest import free_port
from mls_assets_tests.pipeline.conftest import ANCHOR, CHAIN

GPS = "jpsrealtor.gps"


@pytest.fixture
def market():
    """A clean feed: no unparseable records (the reject-rate check is tested on its own)."""
    return Market(listings=70, seed=21, anchor=ANCHOR, bad_record_rate=0.0)


def run_with_checks(pipeline, checks_only=False) -> tuple[dg.ExecuteInProcessResult, dict]:
    """The chain and its checks for today's partition (or the checks alone, on the data as is)."""
    selection = dg.AssetSelection.all_asset_checks() if checks_only else None
    partition = None if checks_only else str(feed_day_key(GPS, pipeline.market.now.date().isoformat()))
    result = dg.materialize([*CHAIN, *CHECKS], instance=pipeline.instance, resources=pipeline.resources(),
                            partition_key=partition, tags={"mls/feed": GPS}, raise_on_error=False,
                            selection=selection)  # fmt: skip
    evaluations = {}
    for event in result.get_asset_check_evaluations():
        evaluations[f"{event.asset_key.to_user_string()}:{event.check_name}"] = event
    return result, evaluations


def sample(evaluation) -> list[str]:
    return evaluation.metadata["first_offending_keys"].value if "first_offending_keys" in evaluation.metadata else []


def test_every_check_passes_on_good_data(pipeline):
    pipeline.sync(GPS)
    result, evaluations = run_with_checks(pipeline)
    assert len(evaluations) == 14
    assert evaluations["raw_listings:pull_duration_within_limit"].metadata["pull_seconds"].value > 0
    failed = {name: e.description for name, e in evaluations.items() if not e.passed}
    assert failed == {}
    assert result.success


def test_each_check_fails_on_data_broken_its_way(pipeline):
    pipeline.sync(GPS)
    col = lambda name: pipeline.collection(GPS, name)
    active = list(col("listings").find({}, {"_id": 0}))
    gone = active[: max(2, len(active) // 10)]
    expired = col("expired_listings").find_one()
    col("expired_listings").update_one({"_id": expired["_id"]}, {"$set": {"expiresAt": "2026-09-01T00:00:00Z"}})
    col("photos").insert_one({"listingKey": "NO-SUCH-LISTING", "photoId": "orphan-1", "order": 0})
    gone_keys = [d["listingKey"] for d in gone]
    wiped = col("listings").find_one({"photoCount": {"$gt": 0}, "listingKey": {"$nin": gone_keys}})["listingKey"]
    col("photos").delete_many({"listingKey": wiped})  # photos gone for a listing that has some
    col("listings").delete_many({"listingKey": {"$in": [d["listingKey"] for d in gone]}})  # truncated vs source
    partition = str(feed_day_key(GPS, pipeline.market.now.date().isoformat()))
    flattened = col("flattened_listings").count_documents({"_partitionKey": partition})
    col("rejects").insert_many([{"rejectKey": f"raw:{n}", "listingKey": f"BAD{n}", "reason": "bad", "field": "x",
                                 "raw": "{}", "partition": partition} for n in range(int(flattened * 0.05) + 1)])  # fmt: skip

    result, evaluations = run_with_checks(pipeline, checks_only=True)  # the photo sync would mend photos
    failed = {name for name, e in evaluations.items() if not e.passed}
    assert wiped in " ".join(sample(evaluations["listing_photos:no_orphan_or_wiped_photos"]))
    assert expired["listingKey"] in " ".join(sample(evaluations["expired_listings:expires_at_is_a_date_within_retention"]))
    assert "NO-SUCH-LISTING" in " ".join(sample(evaluations["listing_photos:no_orphan_or_wiped_photos"]))
    assert "active_listings:count_matches_source" in failed
    assert evaluations["flattened_listings:reject_rate_below_threshold"].metadata["reject_rate"].value >= 0.04
    assert "flattened_listings:reject_rate_below_threshold" in failed
    assert {"active_listings:unique_listing_key", "expired_listings:required_fields"}.isdisjoint(failed)


def test_blocking_checks_fail_on_duplicates_and_twins_and_stop_the_assets_downstream(pipeline):
    pipeline.sync(GPS)
    col = lambda name: pipeline.collection(GPS, name)
    dup, twin = list(col("listings").find({}, {"_id": 0}).limit(2))
    col("listings").drop_index("listingKey_1")
    col("listings").insert_one(dict(dup))  # a duplicate key
    col("closed_listings").insert_one(dict(twin))  # one listing in two collections
    result, evaluations = run_with_checks(pipeline)
    assert dup["listingKey"] in " ".join(sample(evaluations["active_listings:unique_listing_key"]))
    assert twin["listingKey"] in " ".join(sample(evaluations["active_listings:one_status_collection"]))
    assert evaluations["active_listings:unique_listing_key"].severity == dg.AssetCheckSeverity.ERROR
    ran = {e.step_key for e in result.get_step_success_events()}
    assert "status_collections" in ran and "photo_collections" not in ran
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
    result, evaluations = run_with_checks(pipeline)
    failures = [name for name, e in evaluations.items() if not e.passed]
    assert failures

    monkeypatch.setenv("ALERT_WEBHOOK_URL", f"http://127.0.0.1:{free_port()}/down")  # nobody listens
    first = evaluate_sensor(pipeline)
    alerts = pipeline.database["alerts"]
    check_alerts = list(alerts.find({"kind": "asset_check"}))
    assert sorted(f"{a['asset']}:{a['check']}" for a in check_alerts) == sorted(failures)
    assert all(a["delivered"] is False and "ConnectError" in a["deliveryError"] for a in check_alerts)
    assert alerts.count_documents({"kind": "run_failure", "runId": result.run_id}) == 1

    webhook = Webhook()
    try:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", webhook.url)
        evaluate_sensor(pipeline, cursor=first.cursor)  # redelivers what the dead webhook missed
        evaluate_sensor(pipeline)  # from scratch: the same failures are not alerted twice
    finally:
        webhook.close()
    assert alerts.count_documents({}) == len(failures) + 1
    assert len(webhook.received) == len(failures) + 1
    posted = next(p for p in webhook.received if p["check"] == "one_status_collection")
    assert posted["asset"] == "active_listings" and posted["severity"] == "ERROR" and posted["runId"] == result.run_id
    assert posted["link"].endswith(f"/runs/{result.run_id}") and posted["message"]
    assert posted["partition"] is None or GPS in posted["partition"]
    assert datetime.fromisoformat(posted["createdAt"]) <= datetime.now(UTC)
