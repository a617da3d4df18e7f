"""The alert sensor: Dagster OSS has no built-in alert on asset-check failures, so this
sensor reads failed check evaluations and failed runs from the event log since its cursor
and raises one alert for each (an `alerts` document, the webhook, the sensor's log)."""

import os

import dagster as dg

from mls_assets.defs.resources import MongoResource
from mls_assets.lib.quality.alerts import raise_alert, redeliver

WATCHED = (dg.DagsterEventType.ASSET_CHECK_EVALUATION, dg.DagsterEventType.RUN_FAILURE)
UI_URL = os.environ.get("MLS_UI_URL", "http://127.0.0.1:3000")


def alert_for(record: dg.EventLogRecord) -> dict | None:
    event = record.event_log_entry.dagster_event
    run_id = record.run_id
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
    after = int(context.cursor) if context.cursor else None
    raised, last = 0, after
    for event_type in WATCHED:
        records = context.instance.get_event_records(
            dg.EventRecordsFilter(event_type=event_type, after_cursor=after), limit=500, ascending=True
        )
        for record in records:
            last = max(last or 0, record.storage_id)
            alert = alert_for(record)
            if alert and raise_alert(database, alert, webhook):
                raised += 1
                context.log.warning(f"ALERT {alert['severity']} {alert['asset'] or 'run'} {alert['check'] or ''}: "
                                    f"{alert['message']} ({alert['link']})")  # fmt: skip
    redelivered = redeliver(database, webhook)
    cursor = str(last) if last is not None else context.cursor
    if not raised:
        return dg.SensorResult(skip_reason=f"no new failures (redelivered {redelivered})", cursor=cursor)
    return dg.SensorResult(cursor=cursor)
