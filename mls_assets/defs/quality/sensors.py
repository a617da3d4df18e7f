"""The alert sensor: Dagster OSS has no built-in alert on asset-check failures, so this
sensor reads the check evaluations and run outcomes of the runs updated since its cursor
and keeps the `alerts` collection true (`lib/quality/alerts.py`): one alert per distinct
failure, opened once and delivered to `ALERT_WEBHOOK_URL`, resolved with a notice when the
check passes again for that partition or the feed's job succeeds again.

Every alert says what on-call needs first: the feed and the partition (from the run's own
partition tags), the failing step and its cause (the exception's class and message, secrets
redacted) or the check, its rule and the first offending keys, and a link built from the
UI's base URL (`MLS_UI_URL`; `make dev` sets it to the port it serves).

The cursor is a run update time, not an event id: sqlite instances shard the event log per
run, so event ids are not ordered across runs."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import dagster as dg

from mls_assets.defs.instigators import described
from mls_assets.defs.partitions import feed_of_run, partition_of_run
from mls_assets.defs.quality.results import FEEDS_AT_FAULT
from mls_assets.defs.resources import MongoResource
from mls_assets.lib.quality.alerts import alert_id, raise_alert, redeliver, resolve_alerts
from mls_assets.lib.redact import redact

WATCHED = {
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
}
CHECK_METADATA = ("offending", "first_offending_keys", FEEDS_AT_FAULT)


def ui_url() -> str:
    """The Dagster UI's base URL: `MLS_UI_URL`, else the local port `make dev` serves."""
    return (os.environ.get("MLS_UI_URL") or f"http://127.0.0.1:{os.environ.get('DAGSTER_PORT', '3000')}").rstrip("/")


def check_alert(
    evaluation: Any,
    run: dg.DagsterRun,
    metadata: dict[str, Any],
    feed: str | None,
    partition: str | None,
    found: dict[str, Any],
) -> dict[str, Any]:
    """The alert of one failed check, filed under `feed` and `partition`; `found` holds its
    offending count and first keys (the check's own, or one feed's share of an audit)."""
    keys = sorted(str(k) for k in (found.get("first_offending_keys") or []))
    asset, check = evaluation.asset_key.to_user_string(), evaluation.check_name
    return {
        "_id": alert_id("asset_check", asset, check, feed, partition, keys),
        "kind": "asset_check",
        "feed": feed,
        "partition": partition,
        "job": run.job_name,
        "asset": asset,
        "check": check,
        "severity": evaluation.severity.value,
        "message": redact(evaluation.description) or f"check {check} failed",
        "rule": {k: v for k, v in metadata.items() if k not in CHECK_METADATA and isinstance(v, (int, float, str))},
        "offending": found.get("offending"),
        "firstOffendingKeys": keys,
        "runId": run.run_id,
        "link": f"{ui_url()}/runs/{run.run_id}",
    }


def check_outcome(evaluation: Any, run: dg.DagsterRun) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What one check evaluation opens (alerts) and resolves (scopes of open alerts).

    An audit (its result names `feeds_at_fault`) opens one alert per feed at fault, with no
    partition, and resolves the open alerts of the feeds that now pass; it never names the
    run's feed; failing on no feed's data (a shared collection), its alert has no feed. A
    check of a run opens or resolves the alert of the run's feed and partition."""
    asset, check = evaluation.asset_key.to_user_string(), evaluation.check_name
    metadata = {k: getattr(v, "value", v) for k, v in (evaluation.metadata or {}).items()}
    if FEEDS_AT_FAULT not in metadata:
        partition = evaluation.partition or partition_of_run(run.tags)
        if not evaluation.passed:
            return [check_alert(evaluation, run, metadata, feed_of_run(run.tags), partition, metadata)], []
        return [], [{"kind": "asset_check", "asset": asset, "check": check, "partition": partition}]
    at_fault: dict[str, Any] = metadata[FEEDS_AT_FAULT] or {}
    if not evaluation.passed and not at_fault:
        return [check_alert(evaluation, run, metadata, None, None, metadata)], []
    opened = [check_alert(evaluation, run, metadata, feed, None, fault) for feed, fault in at_fault.items()]
    if metadata.get("feeds_at_fault_count", 0) > len(at_fault):  # not every feed at fault named: keep all open
        return opened, []
    return opened, [{"kind": "asset_check", "asset": asset, "check": check, "feed": {"$nin": list(at_fault)}}]


def run_failure_alert(run: dg.DagsterRun, step_failures: list[dg.EventLogEntry], message: str | None) -> dict[str, Any]:
    step = cause = error_class = None
    if step_failures:  # the first failed step says why
        entry = step_failures[0]
        error = entry.dagster_event.event_specific_data.error
        step = entry.dagster_event.step_key
        if error is not None:
            error_class, cause = error.cls_name, redact(" ".join(error.message.split())[:1000])
    feed, partition = feed_of_run(run.tags), partition_of_run(run.tags)
    return {
        "_id": alert_id("run_failure", run.job_name, feed, partition, step, error_class),
        "kind": "run_failure",
        "feed": feed,
        "partition": partition,
        "job": run.job_name,
        "asset": None,
        "check": None,
        "step": step,
        "errorClass": error_class,
        "severity": "ERROR",
        "message": f"{run.job_name} failed for {feed or 'its feeds'} ({partition or 'no partition'})"
        + (f" in {step}: {error_class}: {cause}" if step else f": {redact(message) or 'run failed'}"),
        "cause": cause,
        "runId": run.run_id,
        "link": f"{ui_url()}/runs/{run.run_id}",
    }


ALERT_RUNS_PAGE = 200
ALERT_TICK_BUDGET_S = 20.0


@dataclass
class RunPosition:
    """Where the alert sensor is in the run history: the last update time it read and the runs
    updated exactly then (so that runs sharing a timestamp across two pages are all read)."""

    at: datetime | None = None
    seen_at: set[str] = field(default_factory=set)

    @classmethod
    def from_cursor(cls, cursor: str | None) -> RunPosition:
        if not cursor:
            return cls()
        if not cursor.startswith("{"):  # the cursor of earlier versions: a timestamp
            return cls(datetime.fromisoformat(cursor))
        data = json.loads(cursor)
        return cls(datetime.fromisoformat(data["at"]) if data.get("at") else None, set(data.get("seen", [])))

    def to_cursor(self) -> str:
        return json.dumps({"at": self.at.isoformat() if self.at else None, "seen": sorted(self.seen_at)})

    def runs_since(self, instance: dg.DagsterInstance) -> Iterator[Any]:
        """Every run updated since the position, oldest first, a page at a time, until none is
        left or the tick's time budget is spent (the next tick goes on from there)."""
        deadline, limit = time.monotonic() + ALERT_TICK_BUDGET_S, ALERT_RUNS_PAGE
        while time.monotonic() < deadline:
            after = self.at - timedelta(microseconds=1) if self.at else None  # ties at `at` come again
            page = instance.get_run_records(
                filters=dg.RunsFilter(updated_after=after), limit=limit, order_by="update_timestamp", ascending=True
            )
            fresh = [r for r in page if not (r.update_timestamp == self.at and r.dagster_run.run_id in self.seen_at)]
            for record in fresh:
                if record.update_timestamp != self.at:
                    self.at, self.seen_at = record.update_timestamp, set()
                self.seen_at.add(record.dagster_run.run_id)
                yield record
            if len(page) < limit:
                return
            limit = limit * 2 if not fresh else ALERT_RUNS_PAGE  # a full page of runs read already: look further


@described(dg.sensor, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def failure_alert_sensor(context: dg.SensorEvaluationContext, mongo: MongoResource) -> dg.SensorResult:
    """Opens one alert per distinct failed check or run (never twice while it is open) and
    resolves it, with a notice, when the check passes or the feed's job succeeds again."""
    database = mongo.get_database()
    webhook = os.environ.get("ALERT_WEBHOOK_URL") or None
    position = RunPosition.from_cursor(context.cursor)
    opened = resolved = 0
    for record in position.runs_since(context.instance):
        run = record.dagster_run
        entries = context.instance.all_logs(run.run_id, of_type=WATCHED)
        step_failures = [e for e in entries if e.dagster_event.event_type == dg.DagsterEventType.STEP_FAILURE]
        for entry in entries:
            event = entry.dagster_event
            if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
                alerts, scopes = check_outcome(event.event_specific_data, run)
                opened += sum(_open(context, database, alert, webhook) for alert in alerts)
                resolved += sum(resolve_alerts(database, scope, run.run_id, webhook) for scope in scopes)
            elif event.event_type == dg.DagsterEventType.RUN_FAILURE:
                opened += _open(context, database, run_failure_alert(run, step_failures, event.message), webhook)
            elif event.event_type == dg.DagsterEventType.RUN_SUCCESS:
                scope = {"kind": "run_failure", "job": run.job_name, "feed": feed_of_run(run.tags)}
                resolved += resolve_alerts(database, scope, run.run_id, webhook)
    redelivered = redeliver(database, webhook)
    cursor = position.to_cursor()
    summary = f"sent {opened} new alerts and {resolved} resolved notices; redelivered {redelivered}"
    if opened or resolved or redelivered:
        context.log.info(summary)
    return dg.SensorResult(
        skip_reason=summary if not (opened or resolved) else f"{summary} (see the tick's log)", cursor=cursor
    )


def _open(context: dg.SensorEvaluationContext, database, alert: dict, webhook: str | None) -> int:
    if not raise_alert(database, alert, webhook):
        return 0
    where = " ".join(part for part in (alert["feed"], alert["partition"]) if part)
    what = f"{alert['asset']}:{alert['check']}" if alert["check"] else f"run {alert['runId']}"
    context.log.warning(f"ALERT {alert['severity']} {what} [{where}]: {alert['message']} ({alert['link']})")
    return 1
