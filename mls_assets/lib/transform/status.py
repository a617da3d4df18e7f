"""Status classes: which collection a listing belongs in, and the expired-lead fields."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from mls_assets.lib.transform.fields import LEAD_FIELD_DEFAULTS

EXPIRED_RETENTION = timedelta(days=90)


class StatusClass(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"
    EXPIRED = "expired"
    DELETED = "deleted"


_BY_STATUS = {
    "active": StatusClass.ACTIVE,
    "active under contract": StatusClass.ACTIVE,
    "coming soon": StatusClass.ACTIVE,
    "pending": StatusClass.ACTIVE,
    "closed": StatusClass.CLOSED,
    "expired": StatusClass.EXPIRED,
    "canceled": StatusClass.EXPIRED,
    "cancelled": StatusClass.EXPIRED,
    "withdrawn": StatusClass.EXPIRED,
    "hold": StatusClass.EXPIRED,
    "delete": StatusClass.DELETED,
    "deleted": StatusClass.DELETED,
    "incomplete": StatusClass.DELETED,
}


def status_class(standard_status: Any) -> StatusClass | None:
    """The class of a RESO StandardStatus, or None when the status is unknown."""
    if not isinstance(standard_status, str):
        return None
    return _BY_STATUS.get(" ".join(standard_status.split()).lower())


def expired_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """`statusChangeDate`, `expiresAt` (+90 days, a datetime for the TTL index),
    `totalDaysOnMarket`, and the lead fields' initial values (set on insert only)."""
    changed: datetime = doc.get("statusChangeTimestamp") or doc["modificationTimestamp"]
    fields: dict[str, Any] = {
        "statusChangeDate": changed,
        "expiresAt": changed + EXPIRED_RETENTION,
        **LEAD_FIELD_DEFAULTS,
    }
    days = doc.get("cumulativeDaysOnMarket", doc.get("daysOnMarket"))
    if days is None:
        listed = doc.get("onMarketDate") or doc.get("listDate")
        if listed is not None and listed <= changed:
            days = (changed - listed).days
    if days is not None:
        fields["totalDaysOnMarket"] = days
    return fields
