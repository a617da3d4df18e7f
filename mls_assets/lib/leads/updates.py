"""The CRM's writes to a lead: only the lead fields, never two users over each other.

Each lead carries `leadVersion` (a CRM-owned field: the sync never writes it and moves it
with the listing). A PATCH names the version it read (`If-Match`); the update matches that
version and increments it in one operation, so a stale write changes nothing and is told so.
Every accepted change is an event in `{tenant}_lead_events`: who, when, before, after.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from pymongo.database import Database

from mls_assets.lib.catalogue import EXPIRED, LEAD_EVENTS
from mls_assets.lib.leads.query import find_lead
from mls_assets.lib.store.naming import FeedKey


class StaleLead(Exception):
    """The lead changed since the version the writer read."""


class LeadGone(LookupError):
    """No such lead (any more) for this tenant."""


class LeadPatch(BaseModel):
    """The lead fields a CRM may write. Status and flags cannot be cleared (null is refused);
    dates and owner details can."""

    model_config = ConfigDict(extra="forbid")

    leadStatus: Literal["new", "contacted", "skipped", "converted"] = None  # type: ignore[assignment]
    skipTraced: StrictBool = None  # type: ignore[assignment]
    skipTraceDate: datetime | None = None
    voicemailSent: StrictBool = None  # type: ignore[assignment]
    voicemailSentDate: datetime | None = None
    emailSent: StrictBool = None  # type: ignore[assignment]
    emailSentDate: datetime | None = None
    ownerName: str | None = Field(default=None, max_length=200)
    ownerPhone: str | None = Field(default=None, max_length=40)
    ownerEmail: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    @field_validator("skipTraceDate", "voicemailSentDate", "emailSentDate")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


LEAD_FIELDS = tuple(LeadPatch.model_fields)


def parse_etag(value: str) -> int | None:
    """The version an `If-Match` value names (None if it names none; `*` is the caller's):
    `"<version>.<digest>"` as handed out, or a bare `"<version>"` (which names the lead's CRM
    fields only, whatever a re-sync changed in the listing since)."""
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    version = value.strip('"').split(".", 1)[0]
    return int(version) if version.isdigit() else None


def _tag(value: str | None) -> str | None:
    """The full entity tag an `If-Match` names, if it names one with a digest."""
    if value is None or "." not in value:
        return None
    value = value.strip()
    return value[2:] if value.startswith("W/") else value


def patch_lead(
    database: Database,
    tenant: str,
    listing_key: str,
    patch: LeadPatch,
    version: int | None,
    actor: str,
    now: datetime | None = None,
    if_match: str | None = None,
) -> dict[str, Any]:
    """Apply `patch` to the lead if it is still at `version` (None: `If-Match: *`, whatever
    version is current when it is applied) and, if `if_match` is a whole entity tag, still
    shows what it named; the lead as stored after it. Raises `LeadGone` or `StaleLead`."""
    changes = patch.changes()
    for _ in range(3 if version is None else 1):  # `*`: another writer in between is no conflict
        lead = find_lead(database, tenant, listing_key)
        if lead is None:
            raise LeadGone(listing_key)
        found = int(lead.get("leadVersion") or 0)
        if version is not None and (found != version or _tag(if_match) not in (None, lead["etag"])):
            raise StaleLead(lead["etag"])
        feed = FeedKey(tenant, lead["mls"])
        collection = database[EXPIRED.collection_name(feed)]
        current = {"$in": [0, None]} if found == 0 else found
        result = collection.update_one(
            {"listingKey": listing_key, "leadVersion": current}, {"$set": changes, "$inc": {"leadVersion": 1}}
        )
        if result.matched_count:
            break
    else:  # another writer got there first, or the listing moved
        latest = find_lead(database, tenant, listing_key)
        if latest is None:
            raise LeadGone(listing_key)
        raise StaleLead(latest["etag"])
    version = found
    at = now or datetime.now(UTC)
    database[LEAD_EVENTS.collection_name(feed)].insert_one(
        {
            "listingKey": listing_key,
            "mls": feed.mls,
            "at": at,
            "actor": actor,
            "version": version + 1,
            "before": {name: lead.get(name) for name in changes},
            "after": changes,
        }
    )
    updated = find_lead(database, tenant, listing_key)
    if updated is None:
        raise LeadGone(listing_key)
    return updated
