"""Alerts: one document per failure in `alerts`, POSTed to `ALERT_WEBHOOK_URL` when set.

The alert's `_id` is derived from the failure (run + check + evaluation), so the same
failure never raises two alerts; a webhook that is down never fails the sensor: the alert
is stored with `delivered: false` and the error, and delivery is tried again next tick.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import httpx
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

ALERTS_COLLECTION = "alerts"
log = logging.getLogger("mls_assets.alerts")


def raise_alert(database: Database, alert: dict[str, Any], webhook_url: str | None) -> bool:
    """Store the alert (once) and deliver it; True when it was new."""
    document = {**alert, "createdAt": datetime.now(UTC), "delivered": webhook_url is None}
    try:
        database[ALERTS_COLLECTION].insert_one(document)
    except DuplicateKeyError:
        return False
    if webhook_url:
        deliver(database, document, webhook_url)
    return True


def deliver(database: Database, alert: dict[str, Any], webhook_url: str) -> bool:
    payload = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in alert.items()
               if k not in ("delivered", "deliveryError")}  # fmt: skip
    payload["id"] = payload.pop("_id")
    try:
        response = httpx.post(webhook_url, json=payload, timeout=5.0)
        response.raise_for_status()
    except httpx.HTTPError as error:
        reason = f"{type(error).__name__}: {error}"
        log.warning("alert %s not delivered: %s", alert["_id"], reason)
        database[ALERTS_COLLECTION].update_one({"_id": alert["_id"]}, {"$set": {"deliveryError": reason}})
        return False
    database[ALERTS_COLLECTION].update_one({"_id": alert["_id"]}, {"$set": {"delivered": True},
                                                                  "$unset": {"deliveryError": ""}})  # fmt: skip
    return True


def redeliver(database: Database, webhook_url: str | None, limit: int = 50) -> int:
    """Try again the alerts a down webhook missed."""
    if not webhook_url:
        return 0
    pending = list(database[ALERTS_COLLECTION].find({"delivered": False}).limit(limit))
    return sum(deliver(database, alert, webhook_url) for alert in pending)
