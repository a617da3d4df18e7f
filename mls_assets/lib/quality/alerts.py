"""Alerts: one per distinct failure until it is resolved, with a notice when it is.

A failure's identity is what on-call would call "the same problem": for a check, the asset,
the check, the partition and the offending keys; for a failed run, the job, the feed, the
partition, the failing step and its error class. The `alerts` document of that identity is
opened once (and delivered), counted while it keeps happening (`occurrences`, `lastSeenAt`)
and resolved when the check passes again for that partition, or a run of that job and feed
succeeds; the resolution is delivered as a notice (`event: resolved`). A failure that comes
back after being resolved opens the alert again.

Delivery: `ALERT_WEBHOOK_URL` gets a JSON POST per opened or resolved alert; a webhook that
is down never fails the sensor: the alert keeps `delivered: false` and the error, and
delivery is tried again next tick.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

import httpx
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

ALERTS_COLLECTION = "alerts"
RECENT_RUNS = 20  # run ids kept per alert
log = logging.getLogger("mls_assets.alerts")


def alert_id(*identity: Any) -> str:
    """A stable id for a failure's identity (parts in order; lists sorted by the caller)."""
    return hashlib.blake2b(json.dumps(identity, default=str).encode(), digest_size=12).hexdigest()


def raise_alert(database: Database, alert: dict[str, Any], webhook_url: str | None) -> bool:
    """Open the alert of this failure, or count it if it is already open; True when opened
    (and delivered). The same run seen again counts nothing."""
    now = datetime.now(UTC)
    alerts = database[ALERTS_COLLECTION]
    run_id = alert.get("runId")
    opened = {
        **alert,
        "state": "open",
        "openedAt": now,
        "lastSeenAt": now,
        "occurrences": 1,
        "delivered": webhook_url is None,
        "runIds": [run_id],
    }
    opened.pop("resolvedAt", None)
    try:
        result = alerts.update_one(
            {"_id": alert["_id"], "state": {"$ne": "open"}},
            {
                "$set": {k: v for k, v in opened.items() if k != "_id"},
                "$unset": {"resolvedAt": "", "resolvedByRunId": ""},
            },
            upsert=True,
        )
    except DuplicateKeyError:  # open already: the same failure again
        alerts.update_one(
            {"_id": alert["_id"], "runIds": {"$ne": run_id}},
            {
                "$set": {"lastSeenAt": now, "lastRunId": run_id},
                "$inc": {"occurrences": 1},
                "$push": {"runIds": {"$each": [run_id], "$slice": -RECENT_RUNS}},
            },
        )
        return False
    if not (result.upserted_id or result.modified_count):
        return False
    if webhook_url:
        deliver(database, {**opened, "_id": alert["_id"]}, webhook_url)
    return True


def resolve_alerts(database: Database, scope: dict[str, Any], run_id: str, webhook_url: str | None) -> int:
    """Resolve the open alerts of `scope` (e.g. one check on one partition); each resolution
    is delivered as a notice. The number resolved."""
    resolved = 0
    alerts = database[ALERTS_COLLECTION]
    for alert in list(alerts.find({**scope, "state": "open"})):
        now = datetime.now(UTC)
        changed = alerts.update_one(
            {"_id": alert["_id"], "state": "open"},
            {
                "$set": {
                    "state": "resolved",
                    "resolvedAt": now,
                    "resolvedByRunId": run_id,
                    "delivered": webhook_url is None,
                }
            },
        )
        if not changed.modified_count:
            continue
        resolved += 1
        if webhook_url:
            deliver(database, {**alert, "state": "resolved", "resolvedAt": now, "resolvedByRunId": run_id}, webhook_url)
    return resolved


def payload_of(alert: dict[str, Any]) -> dict[str, Any]:
    payload = {
        k: (v.isoformat() if isinstance(v, datetime) else v)
        for k, v in alert.items()
        if k not in ("delivered", "deliveryError", "runIds")
    }
    payload["id"] = payload.pop("_id")
    payload["event"] = "resolved" if alert.get("state") == "resolved" else "opened"
    return payload


def deliver(database: Database, alert: dict[str, Any], webhook_url: str) -> bool:
    try:
        response = httpx.post(webhook_url, json=payload_of(alert), timeout=5.0)
        response.raise_for_status()
    except httpx.HTTPError as error:
        reason = f"{type(error).__name__}: {error}"
        log.warning("alert %s not delivered: %s", alert["_id"], reason)
        database[ALERTS_COLLECTION].update_one({"_id": alert["_id"]}, {"$set": {"deliveryError": reason}})
        return False
    database[ALERTS_COLLECTION].update_one(
        {"_id": alert["_id"]}, {"$set": {"delivered": True}, "$unset": {"deliveryError": ""}}
    )
    return True


def redeliver(database: Database, webhook_url: str | None, limit: int = 50) -> int:
    """Try again what a down webhook missed (an opening or a resolution, as it now stands)."""
    if not webhook_url:
        return 0
    pending = list(database[ALERTS_COLLECTION].find({"delivered": False}).limit(limit))
    return sum(deliver(database, alert, webhook_url) for alert in pending)
