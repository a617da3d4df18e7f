"""`city_market_daily`: per city and day, the market as the listings known now tell it.

For day D: `new` listed on D; `closed` closed on D; `expired` expired, canceled or
withdrawn on D; `pending` under contract since D or before; `active` listed by D and not
yet pending, closed or off the market by then. A listing counts in the status it holds now
from the day it took it, as active before (a closed listing's pending weeks count as active:
the source keeps no earlier statuses). Medians: list price and days on market of the active
listings, close price of the day's closings.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from statistics import median
from typing import Any

from pymongo import UpdateOne
from pymongo.database import Database

from mls_assets.lib.catalogue import CITY_MARKET_DAILY
from mls_assets.lib.reference.listings import ListingFacts
from mls_assets.lib.reference.places import CITIES
from mls_assets.lib.store.indexes import ensure_indexes
from mls_assets.lib.store.writes import LOOKUP_CHUNK, batched

MARKET_DAILY = CITY_MARKET_DAILY.name
COUNTS = ("active", "pending", "new", "closed", "expired")


def day_stats(listings: Iterable[ListingFacts], day: date) -> dict[str, Any]:
    """One city's figures for `day`."""
    counts = dict.fromkeys(COUNTS, 0)
    list_prices, close_prices, days_on_market = [], [], []
    for f in listings:
        if f.listed == day:
            counts["new"] += 1
        since = f.status_changed or f.listed
        if f.status == "closed" and f.closed == day:
            counts["closed"] += 1
            if f.close_price is not None:
                close_prices.append(f.close_price)
        if f.status == "expired" and since == day:
            counts["expired"] += 1
        if f.status == "pending" and since is not None and since <= day:
            counts["pending"] += 1
            continue
        ended = f.status in ("pending", "closed", "expired") and since is not None and since <= day
        if f.listed is not None and f.listed <= day and not ended:
            counts["active"] += 1
            if f.list_price is not None:
                list_prices.append(f.list_price)
            days_on_market.append((day - f.listed).days)
    return {
        **counts,
        "medianListPrice": median(list_prices) if list_prices else None,
        "medianClosePrice": median(close_prices) if close_prices else None,
        "medianDaysOnMarket": median(days_on_market) if days_on_market else None,
    }


def day_start(day: date) -> datetime:
    """How a day is stored (`day` of `city_market_daily`): its first instant, UTC."""
    return datetime.combine(day, time(), UTC)


def day_rows(database: Database, day: date) -> dict[str, dict[str, Any]]:
    """The day's stored figures by city id."""
    return {d["cityId"]: d for d in database[MARKET_DAILY].find({"day": day_start(day)})}


def write_day(
    database: Database,
    by_city: dict[str, list[ListingFacts]],
    cities: Iterable[str],
    day: date,
    now: datetime,
    stored: dict[str, dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Write `day`'s figures of `cities` (a city without listings now: zeros) where they
    differ from `stored` (the day's rows, `day_rows`); returns the day's rows after it."""
    collection = database[MARKET_DAILY]
    ensure_indexes(collection, CITY_MARKET_DAILY.indexes)
    wanted = sorted(set(cities))
    names = {
        d["_id"]: d
        for ids in batched(wanted, LOOKUP_CHUNK)
        for d in database[CITIES].find({"_id": {"$in": ids}}, {"name": 1, "state": 1})
    }
    at, rows, writes = day_start(day), dict(stored), []
    for cid in wanted:
        stats = day_stats(by_city.get(cid, []), day)
        if cid in stored and all(stored[cid].get(k) == v for k, v in stats.items()):
            continue
        place = names.get(cid, {})
        row = {
            **stats,
            "day": at,
            "cityId": cid,
            "city": place.get("name"),
            "state": place.get("state"),
            "updatedAt": now,
        }
        writes.append(UpdateOne({"_id": f"{day.isoformat()}|{cid}"}, {"$set": row}, upsert=True))
        rows[cid] = {**stored.get(cid, {}), **row}
    if writes:
        collection.bulk_write(writes, ordered=False)
    return rows
