"""The alert sensor: Dagster OSS has no built-in alert on asset-check failures, so this
sensor reads failed check evaluations and failed runs of the runs updated since its cursor
and raises one alert for each (an `alerts` document, the webhook, the sensor's log).

The cursor is a run update time, not an event id: sqlite instances shard the event log per
run, so event ids are not ordered across runs. Alert ids make a failure seen twice (a run
updated again) raise one alert."""

import os
from datetime import datetime

import dagster as dg

from mls_assets.defs.resources import MongoResource
from mls_assets.lib.quality.alerts import raise_alert, redeliver

WATCHED = (dg.DagsterEventType.ASSET_CHECK_EVALUATION, dg.DagsterEventType.RUN_FAILURE)
UI_URL = os.environ.get("MLS_UI_URL", "http://127.0.0.1:3000")


def alert_for(entry: dg.EventLogEntry) -> dict | None:
    event = entry.dagster_event
    run_id = entry.run_id
    if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
        evaluation = event.event_specific_data
        if evaluation.passed:
            return None
        metadata = {k: getattr(v, "value", v) for k, v in (evaluation.metadata or {}).items()}
        return {
            "_id": f"check|{run_id}|{evaluation.asset_check_key.to_user_string()}",
            "kind": "asset_check",
            "asset": evaluation.asset_key.to_user_string(),
            "check": evaluation.check_name,
            "partition": evaluation.partition or metadata.get("partition"),
            "severity": evaluation.severity.value,
            "message": evaluation.description or f"check {evaluation.check_name} failed",
            "offending": metadata.get("offending"),
            "firstOffendingKeys": metadata.get("first_offending_keys"),
            "runId": run_id,
            "link": f"{UI_URL}/runs/{run_id}",
        }
    return {
        "_id": f"run|{run_id}",
        "kind": "run_failure",
        "asset": None,
        "check": None,
        "partition": None,
        "severity": "ERROR",
        "message": event.message or "run failed",
        "runId": run_id,
        "link": f"{UI_URL}/runs/{run_id}",
    }


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def failure_alert_sensor(context: dg.SensorEvaluationContext, mongo: MongoResource) -> dg.SensorResult:
    """One alert per failed asset check and per failed run, never two for the same one."""
    database = mongo.get_database()
    webhook = os.environ.get("ALERT_WEBHOOK_URL") or None
    after = datetime.fromisoformat(context.cursor) if context.cursor else None
    runs = context.instance.get_run_records(filters=dg.RunsFilter(updated_after=after), limit=200,
                                            order_by="update_timestamp", ascending=True)  # fmt: skip
    raised, last = 0, after
    for run in runs:
        last = max(last, run.update_timestamp) if last else run.update_timestamp
        for entry in context.instance.all_logs(run.dagster_run.run_id, of_type=set(WATCHED)):
            alert = alert_for(entry)
            if alert and raise_alert(database, alert, webhook):
                raised += 1
                context.log.warning(f"ALERT {alert['severity']} {alert['asset'] or 'run'} {alert['check'] or ''}: "
                                    f"{alert['message']} ({alert['link']})")  # fmt: skip
    redelivered = redeliver(database, webhook)
    cursor = last.isoformat() if last is not None else context.cursor
    if not raised:
        return dg.SensorResult(skip_reason=f"no new failures (redelivered {redelivered})", cursor=cursor)
    return dg.SensorResult(cursor=cursor)
