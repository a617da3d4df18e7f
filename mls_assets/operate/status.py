"""What an operator reads about a feed: its configs and counts from MongoDB, its runs from
the Dagster instance (in progress, recent, failed and why), its recent rejects and alerts;
and cancelling its runs. Nothing shown carries a token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dagster as dg
from pymongo.database import Database

from mls_assets.defs.automation.run_requests import FEED_TAG, IN_PROGRESS, feeds_of_run, member_tags
from mls_assets.defs.partitions import partition_of_run
from mls_assets.lib.catalogue import EVERY_FEED_COLLECTION, REJECTS
from mls_assets.lib.quality.alerts import ALERTS_COLLECTION
from mls_assets.lib.store.alone import why_alone
from mls_assets.lib.store.cursors import read_cursor
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.tenant_admin import entry as stored_entry
from mls_assets.lib.tenant_admin import shown

COUNTED = ("pulled_in_window", "inserted", "updated", "unchanged", "removed", "stale")


def _time(value: float | None) -> str | None:
    return datetime.fromtimestamp(value, UTC).isoformat() if value else None


def _runs(instance: dg.DagsterInstance, key: FeedKey, statuses=None, limit: int = 10) -> list[dg.RunRecord]:
    """The feed's runs, newest first: its own and the shared runs that served it."""
    found = [
        record
        for tags in ({FEED_TAG: str(key)}, member_tags([str(key)]))
        for record in instance.get_run_records(dg.RunsFilter(tags=tags, statuses=statuses or []), limit=limit)
    ]
    return sorted(found, key=lambda record: record.create_timestamp, reverse=True)[:limit]


def failure_cause(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The first failed step's error (class and message), else the run failure's message."""
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE, limit=1).records:
        error = record.event_log_entry.dagster_event.event_specific_data.error
        if error is not None:
            return f"{record.event_log_entry.dagster_event.step_key}: {error.cls_name}: {error.message.strip()[:500]}"
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE, limit=1).records:
        return record.event_log_entry.dagster_event.message
    return None


def _run_line(instance: dg.DagsterInstance, record: dg.RunRecord, counts: bool = False) -> dict[str, Any]:
    run = record.dagster_run
    line = {
        "runId": run.run_id,
        "status": run.status.value,
        "partition": partition_of_run(run.tags),
        "feedsServed": len(feeds_of_run(run.tags)) or 1,
        "trigger": run.tags.get("mls/trigger"),
        "started": _time(record.start_time),
        "ended": _time(record.end_time),
    }
    if counts:
        totals: dict[str, int] = {}
        for event in instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records:
            materialization = event.event_log_entry.dagster_event.event_specific_data.materialization
            asset = materialization.asset_key.to_user_string()
            for name in COUNTED:
                if f"run_{name}" in materialization.metadata:  # a range run: the same total on each day
                    totals[f"{asset}.{name}"] = int(materialization.metadata[f"run_{name}"].value)
                elif name in materialization.metadata:
                    totals[f"{asset}.{name}"] = totals.get(f"{asset}.{name}", 0) + int(
                        materialization.metadata[name].value
                    )
        line["counts"] = totals
    if run.status == dg.DagsterRunStatus.FAILURE:
        line["cause"] = failure_cause(instance, run.run_id)
    return line


def _alone_line(database: Database, key: FeedKey) -> dict[str, Any] | None:
    """Why the feed runs alone (it failed in a shared run), or None: it shares runs."""
    doc = why_alone(database, str(key))
    return (
        None
        if doc is None
        else {
            "reason": doc.get("reason"),
            "runId": doc.get("runId"),
            "since": doc["since"].isoformat() if doc.get("since") else None,
        }
    )


def feed_status(instance: dg.DagsterInstance, database: Database, key: FeedKey) -> dict[str, Any]:
    """One feed at a glance: config, cursor, counts per collection, runs in progress, the
    last success, the last failure and its cause, open check alerts."""
    stored = stored_entry(database, key)  # a configured feed, or a clear error
    succeeded = _runs(instance, key, [dg.DagsterRunStatus.SUCCESS], limit=1)
    failed = _runs(instance, key, [dg.DagsterRunStatus.FAILURE], limit=1)
    cursor = read_cursor(database, str(key))
    failing = list(
        database[ALERTS_COLLECTION]
        .find(
            {"state": "open", "feed": str(key)},
            {"kind": 1, "check": 1, "asset": 1, "partition": 1, "message": 1, "openedAt": 1},
        )
        .sort("openedAt", -1)
        .limit(10)
    )
    return {
        "feed": str(key),
        "config": shown(stored),  # as stored: with what the pipeline wrote (currentListings, ...)
        "cursor": cursor.isoformat() if cursor else None,
        "runsAlone": _alone_line(database, key),
        "lastSuccess": _run_line(instance, succeeded[0]) if succeeded else None,
        "lastFailure": _run_line(instance, failed[0]) if failed else None,
        "inProgress": [_run_line(instance, r) for r in _runs(instance, key, IN_PROGRESS, limit=20)],
        "collections": {
            spec.name: database[spec.collection_name(key)].estimated_document_count() for spec in EVERY_FEED_COLLECTION
        },
        "openAlerts": [
            {
                "kind": a.get("kind"),
                "check": a.get("check"),
                "asset": a.get("asset"),
                "partition": a.get("partition"),
                "message": a.get("message"),
                "at": a["openedAt"].isoformat(),
            }
            for a in failing
        ],
    }


def feed_history(instance: dg.DagsterInstance, key: FeedKey, limit: int = 10) -> list[dict[str, Any]]:
    """The feed's recent runs, newest first, with what each pulled and wrote."""
    return [_run_line(instance, record, counts=True) for record in _runs(instance, key, limit=limit)]


def feed_errors(instance: dg.DagsterInstance, database: Database, key: FeedKey, limit: int = 20) -> dict[str, Any]:
    """The feed's recent quarantined records (reason, field, key) and failed runs (cause)."""
    rejects = (
        database[REJECTS.collection_name(key)]
        .find({}, {"_id": 0, "listingKey": 1, "reason": 1, "field": 1, "runId": 1, "rejectedAt": 1})
        .sort("_id", -1)
        .limit(limit)
    )
    failures = _runs(instance, key, [dg.DagsterRunStatus.FAILURE], limit=limit)
    return {"feed": str(key), "rejects": list(rejects), "failedRuns": [_run_line(instance, r) for r in failures]}


def cancel_feed_runs(instance: dg.DagsterInstance, key: FeedKey) -> list[str]:
    """Cancel the feed's queued and running runs (the queue drops queued ones, the
    launcher terminates running ones); their ids."""
    cancelled = []
    for record in _runs(instance, key, IN_PROGRESS, limit=100):
        run = record.dagster_run
        if run.status == dg.DagsterRunStatus.QUEUED:
            instance.report_run_canceled(run, message="cancelled by an operator (mls-assets feeds cancel)")
        elif run.status != dg.DagsterRunStatus.CANCELING:
            instance.run_launcher.terminate(run.run_id)
        cancelled.append(run.run_id)
    return cancelled
