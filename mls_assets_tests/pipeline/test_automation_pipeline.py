"""Backfills, the deletion sweep and step retries against the real server and simulator."""

from datetime import timedelta

import dagster as dg

from mls_assets.defs.maintenance.assets import deleted_listings_sweep
from mls_assets.lib.transform.status import EXPIRED_RETENTION, status_class
from mls_assets_tests.pipeline.test_replication_chain import GPS, gps_states, is_bad, keys, snapshot
from mls_assets_tests.support.chain import ANCHOR


def expected_expired(market, first, last):
    """What the simulator says: expired listings (in retention) last modified in the window."""
    now = market.now
    result = set()
    for s in gps_states(market):
        modified = s.index_row["ModificationTimestamp"]
        if not (first <= modified.date() <= last) or is_bad(market, s):
            continue
        if status_class(s.status).value == "expired" and s.index_row["StatusChangeTimestamp"] + EXPIRED_RETENTION > now:
            result.add(s.timeline.key)
    return result


def test_a_backfilled_window_of_expired_listings_converges_with_the_source(pipeline, market):
    first, last = (ANCHOR - timedelta(days=14)).date(), (ANCHOR - timedelta(days=10)).date()
    pipeline.backfill(GPS, first.isoformat(), last.isoformat())
    expired = pipeline.collection(GPS, "expired_listings")
    in_window = lambda: {d["listingKey"] for d in expired.find() if first <= d["modificationTimestamp"].date() <= last}
    assert in_window() == expected_expired(market, first, last)
    assert {d["modificationTimestamp"].date() for d in expired.find()} <= {first + timedelta(days=n) for n in range(5)}

    market.advance(timedelta(days=2))  # listings move on; today's sync picks their new versions
    pipeline.sync(GPS)
    pipeline.backfill(GPS, first.isoformat(), last.isoformat())
    assert in_window() == expected_expired(market, first, last)
    assert len(keys(expired)) == expired.count_documents({})  # no duplicates


def test_the_sweep_removes_listings_that_vanished_and_records_it(pipeline, market):
    pipeline.sync(GPS)
    before = keys(pipeline.collection(GPS, "raw_listings"))
    deletions = [
        at
        for s in gps_states(market)
        for at, (kind, _) in zip(s.timeline.times, s.timeline.events)
        if kind == "delete" and at > market._clock
    ]
    assert deletions, "the simulated market should delete some stored listings later"
    market.advance(timedelta(seconds=max(deletions) - market._clock + 60))
    visible = {s.timeline.key for s in gps_states(market)}
    gone = before - visible

    result = dg.materialize(
        [deleted_listings_sweep], instance=pipeline.instance, resources=pipeline.resources(), partition_key=GPS
    )
    assert result.success
    for name in ("raw_listings", "flattened_listings", "listings", "closed_listings", "expired_listings", "photos"):
        assert not keys(pipeline.collection(GPS, name)) & gone, name
    events = list(pipeline.collection(GPS, "status_history").find({"to": "Deleted"}))
    assert events and {e["listingKey"] for e in events} <= gone
    assert all(e["from"] and e["runId"] == result.run_id for e in events)


def test_the_sweep_refuses_a_truncated_key_list(pipeline, market, tenants_file):
    import yaml

    pipeline.sync(GPS)
    stored = keys(pipeline.collection(GPS, "listings"))
    document = yaml.safe_load(tenants_file.read_text())
    document["tenants"][0]["feeds"][0]["property_types"] = ["C"]  # the sweep now sees a sliver
    tenants_file.write_text(yaml.safe_dump(document))
    pipeline.load_configs(tenants_file)
    result = dg.materialize(
        [deleted_listings_sweep],
        instance=pipeline.instance,
        resources=pipeline.resources(),
        partition_key=GPS,
        raise_on_error=False,
    )
    assert not result.success
    failure = [e for e in result.all_events if e.is_step_failure][-1]
    assert "refusing to delete anything" in str(failure.step_failure_data.error)
    assert keys(pipeline.collection(GPS, "listings")) == stored


def test_a_run_that_fails_mid_way_converges_when_retried(pipeline, market, simulator, tenants_file):
    pipeline.sync(GPS, page_size=10)
    reference = snapshot(pipeline, GPS, bookkeeping=True)
    pipeline.database.client.drop_database(pipeline.database.name)
    pipeline.load_configs(tenants_file)

    # the 4th request fails beyond the client's patience (one attempt): the step fails after
    # 3 pages were stored, and the step retry policy runs it again
    calls = {"n": 0}
    original = simulator.dialects[0].answer

    def flaky(simulated, params, fault):
        calls["n"] += 1
        if calls["n"] == 4:
            raise ConnectionAbortedError("simulated outage")
        return original(simulated, params, fault)

    simulator.dialects[0].answer = flaky
    result = pipeline.sync(GPS, page_size=10, retry_attempts=1)
    simulator.dialects[0].answer = original
    restarts = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_RESTARTED]
    assert restarts, "the step should have been retried"
    assert calls["n"] > 4
    assert snapshot(pipeline, GPS, bookkeeping=True) == reference


def _per_day(collection) -> dict:
    found: dict = {}
    for doc in collection.find({}, {"modificationTimestamp": 1}):
        day = doc["modificationTimestamp"].date().isoformat()
        found[day] = found.get(day, 0) + 1
    return found


def test_a_first_load_over_a_range_gives_every_day_partition_its_own_listings(pipeline, market):
    """One range run pulls the feed once; each day's materialization reports that day's
    listings (pulled and stored), not the run's totals, and the cursor is set for today."""
    first, last = (ANCHOR - timedelta(days=6)).date(), ANCHOR.date()
    result = pipeline.backfill(GPS, first.isoformat(), last.isoformat())
    raw_by_day = _per_day(pipeline.collection(GPS, "raw_listings"))
    active_by_day = _per_day(pipeline.collection(GPS, "listings"))
    raw = {
        m.partition.keys_by_dimension["day"]: m.metadata for m in result.asset_materializations_for_node("raw_listings")
    }
    assert sorted(raw) == [(first + timedelta(days=n)).isoformat() for n in range(7)]
    for day, metadata in raw.items():
        assert metadata["pulled"].value == raw_by_day.get(day, 0), day
        assert metadata["dagster/partition_row_count"].value == raw_by_day.get(day, 0), day
        assert metadata["run_pulled_in_window"].value == sum(raw_by_day.values())  # the whole history, once
    assert len({m["pulled"].value for m in raw.values()}) > 1, "the days of this market differ"
    active = {
        e.materialization.partition.keys_by_dimension["day"]: e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("active_listings")
    }
    assert {day: m["dagster/partition_row_count"].value for day, m in active.items()} == {
        day: active_by_day.get(day, 0) for day in raw
    }
    assert any(active_by_day.get(day) for day in raw)
    assert pipeline.database["feed_cursors"].find_one({"_id": GPS}) is not None
