"""Routing: every listing into exactly one status collection of its feed.

Given a batch of flattened listings and what the status collections hold for them now,
decide where each goes, which ones leave every collection (deleted, or expired beyond
the 90-day window), and which status transitions that makes (status history).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.database import Database

from mls_assets.lib.replication.collections import STATUS_COLLECTIONS
from mls_assets.lib.tenants import FeedConfig
from mls_assets.lib.transform.fields import CRM_OWNED_FIELDS
from mls_assets.lib.transform.status import within_retention


@dataclass
class Routed:
    """The decisions for one batch."""

    by_class: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {k: [] for k in STATUS_COLLECTIONS})
    leaving: list[dict[str, Any]] = field(default_factory=list)  # removed from every collection
    transitions: list[dict[str, Any]] = field(default_factory=list)
    stale: int = 0
    out_of_window: int = 0


def stored_versions(database: Database, feed: FeedConfig, keys: list[str]) -> dict[str, dict]:
    """Where each key is stored now: `{key: {collection class, status, version}}`."""
    found: dict[str, dict] = {}
    if not keys:
        return found
    projection = {"_id": 0, "listingKey": 1, "standardStatus": 1, "modificationTimestamp": 1,
                  **{name: 1 for name in CRM_OWNED_FIELDS}}  # fmt: skip
    for klass, name in STATUS_COLLECTIONS.items():
        for doc in database[feed.collection(name)].find({"listingKey": {"$in": keys}}, projection):
            current = found.get(doc["listingKey"])
            if current is None or doc["modificationTimestamp"] > current["modificationTimestamp"]:
                found[doc["listingKey"]] = {**doc, "class": klass}
    return found


def route(
    listings: Iterable[dict[str, Any]],
    stored: dict[str, dict],
    now: datetime,
    run_id: str,
) -> Routed:
    routed = Routed()
    for doc in listings:
        key = doc["listingKey"]
        previous = stored.get(key)
        if previous is not None and previous["modificationTimestamp"] > doc["modificationTimestamp"]:
            routed.stale += 1  # a newer version is already routed: never go back
            continue
        klass = doc["statusClass"]
        if klass == "expired" and not within_retention(doc, now):
            routed.out_of_window += 1
            klass = None
        if klass not in STATUS_COLLECTIONS:
            routed.leaving.append(doc)
        else:
            if previous is not None and previous["class"] != klass:
                # moving: what the CRM wrote on the listing moves with it
                doc = {**doc, **{name: previous[name] for name in CRM_OWNED_FIELDS if name in previous}}
            routed.by_class[klass].append(doc)
        if previous is not None and previous["standardStatus"] != doc["standardStatus"]:
            routed.transitions.append(
                {
                    "listingKey": key,
                    "listingId": doc.get("listingId"),
                    "from": previous["standardStatus"],
                    "to": doc["standardStatus"],
                    "at": doc.get("statusChangeTimestamp") or doc["modificationTimestamp"],
                    "partition": doc.get("_partitionKey"),
                    "runId": run_id,
                    "_partitionKey": doc.get("_partitionKey"),
                }
            )
    return routed
