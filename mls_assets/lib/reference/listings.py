"""What the reference data reads of a listing, and from where: the facts of each listing
in every feed's flattened listings, one per MLS listing (two tenants of one MLS hold the
same listing: the newer version counts, once)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pymongo.database import Database

from mls_assets.lib.catalogue import FLATTENED
from mls_assets.lib.reference.names import clean_name, name_key, slug
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.store.writes import LOOKUP_CHUNK, batched

# How the market statistics class a listing (the status collections class Pending as active).
MARKET_STATUS = {
    "active": "active",
    "coming soon": "active",
    "pending": "pending",
    "active under contract": "pending",
    "closed": "closed",
    "expired": "expired",
    "canceled": "expired",
    "cancelled": "expired",
    "withdrawn": "expired",
}
SCHOOL_FIELDS = {"elementary": "elementarySchool", "middle": "middleOrJuniorSchool", "high": "highSchool"}
PROJECTION = {
    "_id": 0,
    "listingKey": 1,
    "mlsProvider": 1,
    "city": 1,
    "stateOrProvince": 1,
    "countyOrParish": 1,
    "location": 1,
    "subdivisionName": 1,
    "highSchoolDistrict": 1,
    "standardStatus": 1,
    "listPrice": 1,
    "closePrice": 1,
    "onMarketDate": 1,
    "listDate": 1,
    "closeDate": 1,
    "statusChangeTimestamp": 1,
    "modificationTimestamp": 1,
    **{field: 1 for field in SCHOOL_FIELDS.values()},
}


def city_id(state: str, city: str) -> str:
    """A city's stable id: its state and the slug of its name's identity (`ca-palm-desert`)."""
    return f"{slug(state)}-{slug(name_key(city) or city)}"


@dataclass(frozen=True)
class ListingFacts:
    """The facts of one listing the reference data uses; nothing that names it leaves here."""

    mls: str
    key: str
    city: str  # as spelled (spacing collapsed)
    stored_city: str  # exactly as stored (what the `city` index finds)
    state: str
    county: str | None
    point: tuple[float, float] | None  # (longitude, latitude)
    subdivision: str | None
    schools: tuple[tuple[str, str], ...]  # (level, name)
    district: str | None
    status: str | None  # active, pending, closed, expired
    list_price: float | None
    close_price: float | None
    listed: date | None
    closed: date | None
    status_changed: date | None
    modified: datetime

    @property
    def city_id(self) -> str:
        return city_id(self.state, self.city)


def facts_of(doc: dict[str, Any]) -> ListingFacts | None:
    """The facts of a flattened listing, or None when it names no city (nothing to place)."""
    city = clean_name(doc.get("city"))
    modified = doc.get("modificationTimestamp")
    if city is None or not isinstance(modified, datetime) or not isinstance(doc.get("listingKey"), str):
        return None
    state = (clean_name(doc.get("stateOrProvince")) or "na").upper()
    location = doc.get("location")
    point = None
    if isinstance(location, dict) and isinstance(location.get("coordinates"), list | tuple):
        try:
            lng, lat = (float(v) for v in location["coordinates"][:2])
            point = (lng, lat)
        except (TypeError, ValueError):  # an unreadable point places the listing in its city, not on the map
            point = None
    status = doc.get("standardStatus")
    schools = tuple((level, name) for level, field in SCHOOL_FIELDS.items() if (name := clean_name(doc.get(field))))
    return ListingFacts(
        mls=str(doc.get("mlsProvider") or ""),
        key=doc["listingKey"],
        city=city,
        stored_city=doc["city"],
        state=state,
        county=clean_name(doc.get("countyOrParish")),
        point=point,
        subdivision=clean_name(doc.get("subdivisionName")),
        schools=schools,
        district=clean_name(doc.get("highSchoolDistrict")),
        status=MARKET_STATUS.get(" ".join(status.split()).lower()) if isinstance(status, str) else None,
        list_price=_number(doc.get("listPrice")),
        close_price=_number(doc.get("closePrice")),
        listed=_day(doc.get("onMarketDate") or doc.get("listDate")),
        closed=_day(doc.get("closeDate")),
        status_changed=_day(doc.get("statusChangeTimestamp")),
        modified=_utc(modified),
    )


class ListingsReader:
    """Reads every feed's flattened listings (all of them, or those of some cities) and
    keeps one version per MLS listing; counts what it read."""

    def __init__(self, database: Database, feeds: Iterable[FeedKey]) -> None:
        self.database = database
        self.feeds = list(feeds)
        self.documents_read = 0

    def facts(self, city_spellings: Iterable[str] | None = None) -> dict[str, list[ListingFacts]]:
        """The listings by city id: every listing, or those whose city is spelled one of
        `city_spellings` (the `city` index serves the lookup)."""
        newest: dict[tuple[str, str], ListingFacts] = {}
        queries: list[dict] = (
            [{}]
            if city_spellings is None
            else [{"city": {"$in": chunk}} for chunk in batched(sorted(set(city_spellings)), LOOKUP_CHUNK)]
        )
        for feed in self.feeds:
            collection = self.database[FLATTENED.collection_name(feed)]
            for query in queries:
                for doc in collection.find(query, PROJECTION).batch_size(2000):
                    self.documents_read += 1
                    found = facts_of(doc)
                    if found is None:
                        continue
                    seen = newest.get((found.mls, found.key))
                    if seen is None or found.modified > seen.modified:
                        newest[(found.mls, found.key)] = found
        by_city: dict[str, list[ListingFacts]] = {}
        for found in newest.values():
            by_city.setdefault(found.city_id, []).append(found)
        return by_city


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return _utc(value).date()
    return value if isinstance(value, date) else None


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
