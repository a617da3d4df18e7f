"""`shared_cities`, `shared_neighborhoods`, `shared_schools`: built from the listings of
some cities (those that changed) or of all, written only where something changed.

- A city is (state, city name however spelled): slug, county, centroid of its listings
  (GeoJSON, 2dsphere-indexed), the MLSs that list it, listings per market status, and the
  spellings seen (so its listings are found again by the `city` index).
- A neighborhood is (city, `SubdivisionName` however spelled), with a centroid.
- A school is (level, name, district): the cities it serves, with listings per city.
Names and slugs are set when a place is first seen and never rewritten; a place no listing
mentions any more stays, `active: false`, with zero counts (tenants' pages link to it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.database import Database

from mls_assets.lib.catalogue import SHARED_CITIES, SHARED_NEIGHBORHOODS, SHARED_SCHOOLS
from mls_assets.lib.reference.listings import ListingFacts
from mls_assets.lib.reference.names import display_name, name_key, slug
from mls_assets.lib.store.indexes import ensure_indexes
from mls_assets.lib.store.writes import LOOKUP_CHUNK, batched

CITIES, NEIGHBORHOODS, SCHOOLS = SHARED_CITIES.name, SHARED_NEIGHBORHOODS.name, SHARED_SCHOOLS.name
STATUSES = ("active", "pending", "closed", "expired")


@dataclass
class PlacesWritten:
    cities: int = 0
    neighborhoods: int = 0
    schools: int = 0
    unchanged: int = 0
    inactive: list[str] = field(default_factory=list)


def ensure_place_indexes(database: Database) -> None:
    for shared in (SHARED_CITIES, SHARED_NEIGHBORHOODS, SHARED_SCHOOLS):
        ensure_indexes(database[shared.name], shared.indexes)


def _centroid(points: list[tuple[float, float]]) -> dict[str, Any] | None:
    if not points:
        return None
    lng = round(sum(p[0] for p in points) / len(points), 6)
    lat = round(sum(p[1] for p in points) / len(points), 6)
    return {"type": "Point", "coordinates": [lng, lat]}


def _write(
    collection, docs: dict[str, dict[str, Any]], names: dict[str, dict[str, Any]], now: datetime
) -> tuple[int, int]:
    """Upsert `docs` (id -> fields that follow the data) where they differ from what is
    stored; `names` (id -> name, slug, ...) only on insert. Returns (written, unchanged)."""
    stored = {d["_id"]: d for ids in batched(list(docs), LOOKUP_CHUNK) for d in collection.find({"_id": {"$in": ids}})}
    writes = []
    for doc_id, fields in docs.items():
        before = stored.get(doc_id)
        if before is not None and all(before.get(k) == v for k, v in fields.items()):
            continue
        writes.append(
            UpdateOne(
                {"_id": doc_id},
                {"$set": {**fields, "updatedAt": now}, "$setOnInsert": {**names[doc_id], "firstSeenAt": now}},
                upsert=True,
            )
        )
    if writes:
        collection.bulk_write(writes, ordered=False)
    return len(writes), len(docs) - len(writes)


def write_places(
    database: Database, by_city: dict[str, list[ListingFacts]], affected: Iterable[str] | None, now: datetime
) -> PlacesWritten:
    """Rebuild the places of the cities `affected` (all when None) from their listings."""
    ensure_place_indexes(database)
    scope = set(by_city) if affected is None else set(affected)
    written = PlacesWritten()
    city_docs, city_names, hood_docs, hood_names = {}, {}, {}, {}
    school_counts: dict[str, Counter[str]] = {}  # school id -> listings per city id
    school_names: dict[str, dict[str, Any]] = {}
    school_spellings: dict[str, tuple[Counter[str], Counter[str]]] = {}
    for cid in sorted(scope):
        listings = by_city.get(cid, [])
        if not listings:
            continue
        spellings = Counter(f.city for f in listings)
        statuses = Counter(f.status for f in listings if f.status)
        name = display_name(spellings)
        city_names[cid] = {"name": name, "slug": slug(name_key(name) or name), "state": listings[0].state}
        city_docs[cid] = {
            "county": display_name(Counter(f.county for f in listings if f.county))
            if any(f.county for f in listings)
            else None,
            "location": _centroid([f.point for f in listings if f.point]),
            "mlsIds": sorted({f.mls for f in listings}),
            "listingCounts": {s: statuses.get(s, 0) for s in STATUSES},
            "listings": len(listings),
            "active": True,
            "spellings": sorted({f.stored_city for f in listings}),
        }
        hoods: dict[str, list[ListingFacts]] = {}
        for f in listings:
            if f.subdivision:
                hoods.setdefault(name_key(f.subdivision), []).append(f)
        for key, members in hoods.items():
            hood_id = f"{cid}--{slug(key)}"
            hood_name = display_name(Counter(f.subdivision for f in members))
            hood_names[hood_id] = {"name": hood_name, "slug": slug(key), "cityId": cid, "city": name}
            hood_docs[hood_id] = {
                "location": _centroid([f.point for f in members if f.point]),
                "listings": len(members),
                "active": True,
                "variants": sorted({f.subdivision for f in members}),
            }
        districts_of: dict[tuple[str, str], Counter[str]] = {}  # a listing that omits the district: the one
        for f in listings:  # the city's other listings name for that school
            for level, school in f.schools:
                if f.district:
                    districts_of.setdefault((level, name_key(school)), Counter())[name_key(f.district)] += 1
        for f in listings:
            for level, school in f.schools:
                known = districts_of.get((level, name_key(school)))
                district_key = name_key(f.district) or (
                    min(known, key=lambda d: (-known[d], d)) if known else "unknown"
                )
                school_id = f"{level}--{slug(district_key)}--{slug(name_key(school))}"
                school_counts.setdefault(school_id, Counter())[cid] += 1
                names, districts = school_spellings.setdefault(school_id, (Counter(), Counter()))
                names[school] += 1
                if f.district:
                    districts[f.district] += 1
                school_names[school_id] = {"level": level, "slug": slug(name_key(school))}
    # places of these cities no listing names any more: kept, inactive, counted zero
    for doc in database[CITIES].find({"_id": {"$in": sorted(scope - set(city_docs))}}, {"_id": 1}):
        city_docs[doc["_id"]] = {"active": False, "listings": 0, "listingCounts": dict.fromkeys(STATUSES, 0)}
        city_names[doc["_id"]] = {}
        written.inactive.append(doc["_id"])
    for doc in database[NEIGHBORHOODS].find({"cityId": {"$in": sorted(scope)}}, {"_id": 1}):
        if doc["_id"] not in hood_docs:
            hood_docs[doc["_id"]], hood_names[doc["_id"]] = {"active": False, "listings": 0}, {}
    written.cities, unchanged = _write(database[CITIES], city_docs, city_names, now)
    written.neighborhoods, unchanged_hoods = _write(database[NEIGHBORHOODS], hood_docs, hood_names, now)
    written.schools, unchanged_schools = _write_schools(
        database, scope, school_counts, school_names, school_spellings, now
    )
    written.unchanged = unchanged + unchanged_hoods + unchanged_schools
    return written


def _write_schools(
    database: Database,
    scope: set[str],
    counts: dict[str, Counter[str]],
    names: dict[str, dict[str, Any]],
    spellings: dict[str, tuple[Counter[str], Counter[str]]],
    now: datetime,
) -> tuple[int, int]:
    """A school's listings per city: those of the rebuilt cities replaced, the others kept."""
    stored = {
        d["_id"]: d
        for d in database[SCHOOLS].find({"$or": [{"_id": {"$in": sorted(counts)}}, {"cities": {"$in": sorted(scope)}}]})
    }
    docs, school_names = {}, {}
    for school_id in sorted(set(counts) | set(stored)):
        by_city = {c: n for c, n in (stored.get(school_id, {}).get("byCity") or {}).items() if c not in scope}
        by_city.update(counts.get(school_id, {}))
        by_city = {c: n for c, n in sorted(by_city.items()) if n}
        fields: dict[str, Any] = {
            "byCity": by_city,
            "cities": sorted(by_city),
            "listings": sum(by_city.values()),
            "active": bool(by_city),
        }
        if school_id in spellings:
            name_counts, district_counts = spellings[school_id]
            school_names[school_id] = {
                **names[school_id],
                "name": display_name(name_counts),
                "district": display_name(district_counts) if district_counts else None,
            }
        else:
            school_names[school_id] = {}
        docs[school_id] = fields
    return _write(database[SCHOOLS], docs, school_names, now)
