"""Feeds that run alone: a feed whose pull failed inside a shared run (a run over several
feeds) gets its own runs until one of them pulls it successfully, so that its failures,
retries and slowness cost only itself. The sensors read this set once per tick."""

from __future__ import annotations

from datetime import datetime

from pymongo.database import Database

ALONE_COLLECTION = "feeds_alone"


def mark_alone(database: Database, reasons: dict[str, str], run_id: str, now: datetime) -> None:
    """Each feed of `reasons` runs alone from now on (the reason and the run are kept)."""
    for feed, reason in reasons.items():
        database[ALONE_COLLECTION].replace_one(
            {"_id": feed}, {"_id": feed, "reason": reason[:500], "runId": run_id, "since": now}, upsert=True
        )


def release(database: Database, feeds: list[str]) -> None:
    """These feeds pulled successfully: they may share runs again."""
    if feeds:
        database[ALONE_COLLECTION].delete_many({"_id": {"$in": feeds}})


def why_alone(database: Database, feed: str) -> dict | None:
    """Why one feed runs alone (its reason, run and since when), or None: it shares runs."""
    return database[ALONE_COLLECTION].find_one({"_id": feed})


def feeds_alone(database: Database) -> dict[str, dict]:
    """Every feed that runs alone, with why and since which run."""
    return {doc["_id"]: doc for doc in database[ALONE_COLLECTION].find()}
