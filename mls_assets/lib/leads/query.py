"""Reading a tenant's leads: its expired listings across all of its MLSs as one list.

Each of the tenant's expired collections is read in list order (status change date newest
first, then ListingKey), a window of dates at a time after the cursor's keyset position,
only as far as the page needs; the feeds' streams are merged here. One copy per ListingKey (a listing
syndicated to two MLSs is one lead: the copy with the newest status change wins, then the
MLS id in order): a page's candidates are checked against the tenant's other feeds by key.
A page therefore costs about the page, not the tenant's whole lead set (the aggregation
that unioned, grouped and counted every lead took 4.2-6.6 s a page at 16,600 leads); the
exact `total` is computed only when asked for (`count=true`). Paging neither skips nor
repeats a lead while new ones arrive. Every collection name comes from the tenant resolved
from an API key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, field_validator
from pymongo.database import Database

from mls_assets.lib.catalogue import EXPIRED, EXPIRED_PHOTOS
from mls_assets.lib.store.naming import FeedKey, InvalidIdentifier, validate_id
from mls_assets.lib.tenants import CONFIGS_COLLECTION

LEAD_STATUSES = ("new", "contacted", "skipped", "converted")
# The API's status names and the spellings the MLSs use for them.
STATUS_SPELLINGS = {"Expired": ("Expired",), "Canceled": ("Canceled", "Cancelled"), "Withdrawn": ("Withdrawn",)}
HIDDEN_FIELDS = {"_id": 0, "_hash": 0, "_runId": 0, "_seq": 0}
MAX_PAGE = 500
# Columns of the CSV export, in order (what skip-tracing and dialer tools read).
CSV_COLUMNS = ("mls", "listingKey", "listingId", "standardStatus", "statusChangeDate", "unparsedAddress", "city",
               "postalCode", "listPrice", "bedsTotal", "totalDaysOnMarket", "leadStatus", "skipTraced",
               "skipTraceDate", "voicemailSent", "voicemailSentDate", "emailSent", "emailSentDate", "ownerName",
               "ownerPhone", "ownerEmail")  # fmt: skip


class BadCursor(ValueError):
    """A paging cursor that this service did not hand out."""


# The dates a filter or a cursor may name (a year-1 or year-9999 date with an offset overflowed
# on its way to UTC: a 500).
EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)


def in_range(value: datetime) -> datetime:
    """`value` in UTC (naive: taken as UTC), or ValueError if it lies outside 1900-2200."""
    try:
        utc = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError(f"the date must lie between {EARLIEST.date()} and {LATEST.date()}")
    return utc


class LeadFilter(BaseModel):
    """What a list of leads is narrowed to (every field optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    leadStatus: Literal["new", "contacted", "skipped", "converted"] | None = None
    city: str | None = None
    mls: str | None = None
    status: Literal["Expired", "Canceled", "Withdrawn"] | None = None
    since: datetime | None = None  # status change on or after
    until: datetime | None = None  # status change before

    @field_validator("since", "until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return None if value is None else in_range(value)

    @field_validator("mls")
    @classmethod
    def _mls(cls, value: str | None) -> str | None:
        return None if value is None else validate_id(value, "MLS")

    def others(self) -> dict[str, Any]:
        """The conditions on other fields than the status change date."""
        query: dict[str, Any] = {}
        if self.leadStatus is not None:
            query["leadStatus"] = self.leadStatus
        if self.city is not None:
            query["city"] = self.city
        if self.status is not None:
            query["standardStatus"] = {"$in": list(STATUS_SPELLINGS[self.status])}
        return query

    def match(self, lower: datetime | None = None, upper: datetime | None = None,
              upper_inclusive: bool = False) -> dict[str, Any]:  # fmt: skip
        """The query, flat (the embedded server gives up its indexes for `$and` or `$type`):
        a status change date range within [since, until) and, if given, [lower, upper]. A
        date range matches only dates, as `$type: date` did."""
        bound: dict[str, Any] = {"$gte": max(lower or EARLIEST, self.since or EARLIEST)}
        until = self.until or LATEST
        if upper is not None and upper < until:
            bound["$lte" if upper_inclusive else "$lt"] = upper
        else:
            bound["$lt"] = until
        return {"statusChangeDate": bound, **self.others()}

    def accepts(self, doc: dict[str, Any]) -> bool:
        """What `match()` selects, decided here for documents read by key."""
        changed = doc.get("statusChangeDate")
        if not isinstance(changed, datetime):
            return False
        changed = _aware(changed)
        if not (self.since or EARLIEST) <= changed < (self.until or LATEST):
            return False
        return ((self.leadStatus is None or doc.get("leadStatus") == self.leadStatus)
                and (self.city is None or doc.get("city") == self.city)
                and (self.status is None or doc.get("standardStatus") in STATUS_SPELLINGS[self.status]))  # fmt: skip


def tenant_feeds(database: Database, tenant: str) -> list[FeedKey]:
    """The tenant's MLS feeds, as configured (enabled or not: their leads stay theirs)."""
    validate_id(tenant, "tenant")
    doc = database[CONFIGS_COLLECTION].find_one({"tenantId": tenant}, {"_id": 0, "mlsConfigs.provider": 1}) or {}
    feeds = []
    for config in doc.get("mlsConfigs") or []:
        try:
            feeds.append(FeedKey(tenant, config.get("provider")))
        except (InvalidIdentifier, AttributeError):
            continue  # a config the feed loader refuses too
    return sorted(set(feeds), key=str)


def _filtered_feeds(database: Database, tenant: str, where: LeadFilter) -> list[FeedKey]:
    return [f for f in tenant_feeds(database, tenant) if where.mls is None or f.mls == where.mls]


def encode_cursor(changed: datetime, listing_key: str) -> str:
    payload = orjson.dumps([changed.astimezone(UTC).isoformat(), listing_key])
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        changed, key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return in_range(datetime.fromisoformat(changed)), str(key)
    except (binascii.Error, ValueError, TypeError) as error:
        raise BadCursor("cursor is not one this service handed out") from error


def _union(feeds: list[FeedKey], match: dict[str, Any]) -> list[dict[str, Any]]:
    """Stages that read the matching keys of every feed's expired collection, tagged by MLS,
    one copy per ListingKey (for the exact count, on demand)."""

    def branch(feed: FeedKey) -> list[dict[str, Any]]:
        return [{"$match": match}, {"$project": {"_id": 0, "listingKey": 1, "statusChangeDate": 1}},
                {"$addFields": {"mls": feed.mls}}]  # fmt: skip

    first, *rest = feeds
    stages = branch(first)
    stages += [{"$unionWith": {"coll": EXPIRED.collection_name(f), "pipeline": branch(f)}} for f in rest]
    stages += [{"$group": {"_id": "$listingKey"}}]
    return stages


LIST_ORDER = [("statusChangeDate", -1), ("listingKey", 1)]
KEY_FIELDS = {"_id": 0, "listingKey": 1, "statusChangeDate": 1}
FILTERED_FIELDS = {**KEY_FIELDS, "leadStatus": 1, "city": 1, "standardStatus": 1}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _newest_first(changed: datetime) -> int:
    """A sort key that puts later status changes first, exact to the microsecond."""
    return -((changed - _EPOCH) // timedelta(microseconds=1))


def _order_key(row: tuple[datetime, str, str]) -> tuple[int, str, str]:
    changed, key, mls = row
    return (_newest_first(changed), key, mls)


FIRST_WINDOW = timedelta(hours=1)


def _newest_first_rows(collection, where: LeadFilter, after: tuple[datetime, str] | None,
                       want: int) -> Iterator[tuple[datetime, str]]:  # fmt: skip
    """(status change, ListingKey) of `collection`'s matches after the keyset position, in list
    order, read a window of status change dates at a time, each about `want` documents wide.

    Why windows: the embedded server reads a whole index before it applies a sort's `limit`
    (a page of 101 over 20,000 leads took 300 ms whatever the index), while a date range
    costs what it holds (60 documents: 3 ms of 100,000). Each window's width follows the
    density of the one before; its rows are sorted here. Without a cursor the first window
    is everything dated from now on (nothing, unless a source sends future dates)."""

    def window(lower: datetime, upper: datetime, upper_inclusive: bool) -> list[tuple[datetime, str]]:
        found = collection.find(where.match(lower, upper, upper_inclusive), KEY_FIELDS)
        rows = sorted(((_aware(d["statusChangeDate"]), d["listingKey"]) for d in found),
                      key=lambda row: (_newest_first(row[0]), row[1]))  # fmt: skip
        if after is not None and upper_inclusive:  # the cursor's own instant: only the keys after it
            rows = [r for r in rows if r[0] < after[0] or (r[0] == after[0] and r[1] > after[1])]
        return rows

    if after is None:
        upper = min(datetime.now(UTC), LATEST)
        yield from window(upper, LATEST, True)
        upper_inclusive = False
    else:
        upper, upper_inclusive = after[0], True
    width, floor = FIRST_WINDOW, where.since or EARLIEST
    while upper > floor:
        lower = upper - width if width < upper - EARLIEST else EARLIEST  # (never below year 1)
        rows = window(lower, upper, upper_inclusive)
        yield from rows
        upper, upper_inclusive = lower, False
        width *= min(64.0, max(0.25, want / len(rows))) if rows else 2.0  # about `want` rows next time


def _ordered(database: Database, feeds: list[FeedKey], where: LeadFilter, after: tuple[datetime, str] | None,
             batch: int) -> Iterator[tuple[datetime, str, str]]:  # fmt: skip
    """(status change, ListingKey, MLS) of every matching lead after the keyset position
    `after`, in list order, one copy per ListingKey; each feed read about `batch` rows at a time."""

    def stream(feed: FeedKey) -> Iterator[tuple[datetime, str, str]]:
        for changed, key in _newest_first_rows(database[EXPIRED.collection_name(feed)], where, after, batch):
            yield changed, key, feed.mls

    merged = heapq.merge(*(stream(f) for f in feeds), key=_order_key)
    while chunk := list(itertools.islice(merged, batch)):
        newer = _newer_elsewhere(database, feeds, where, chunk) if len(feeds) > 1 else set()
        yield from (row for row in chunk if (row[1], row[2]) not in newer)


def _newer_elsewhere(database: Database, feeds: list[FeedKey], where: LeadFilter,
                     rows: list[tuple[datetime, str, str]]) -> set[tuple[str, str]]:  # fmt: skip
    """The (ListingKey, MLS) of `rows` that another feed holds in a newer matching copy (or
    one as new from an MLS id earlier in order): the list shows that one instead."""
    keys = sorted({key for _, key, _ in rows})
    best: dict[str, tuple[int, str]] = {}
    for feed in feeds:
        found = database[EXPIRED.collection_name(feed)].find({"listingKey": {"$in": keys}}, FILTERED_FIELDS)
        for doc in (d for d in found if where.accepts(d)):
            rank = (_newest_first(_aware(doc["statusChangeDate"])), feed.mls)
            best[doc["listingKey"]] = min(best.get(doc["listingKey"], rank), rank)
    return {(key, mls) for changed, key, mls in rows if key in best and best[key] < (_newest_first(changed), mls)}


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def etag_of(doc: dict[str, Any]) -> str:
    """The lead as an HTTP entity tag: `"<version>.<digest>"`, the version every PATCH bumps
    and a digest of the listing as the API shows it, so that a re-sync that changes what a
    client read changes its tag too."""
    shown = {k: v for k, v in doc.items() if k != "etag"}
    digest = hashlib.blake2b(orjson.dumps(shown, option=orjson.OPT_SORT_KEYS, default=str), digest_size=6).hexdigest()
    return f'"{int(doc.get("leadVersion") or 0)}.{digest}"'


def _shown(doc: dict[str, Any], mls: str) -> dict[str, Any]:
    return {"mls": mls, **doc, "etag": etag_of(doc)}


def _documents(database: Database, tenant: str, picks: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The full documents of `(listingKey, mls)` picks, in the picks' order."""
    by_mls: dict[str, list[str]] = {}
    for key, mls in picks:
        by_mls.setdefault(mls, []).append(key)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for mls, keys in by_mls.items():
        collection = database[EXPIRED.collection_name(FeedKey(tenant, mls))]
        for doc in collection.find({"listingKey": {"$in": keys}}, HIDDEN_FIELDS):
            found[(doc["listingKey"], mls)] = _shown(doc, mls)
    return [found[pick] for pick in picks if pick in found]


def list_leads(database: Database, tenant: str, where: LeadFilter, limit: int = 50,
               cursor: str | None = None, count: bool = False) -> dict[str, Any]:  # fmt: skip
    """One page of the tenant's leads, newest status change first: `leads`, `next_cursor`
    (None on the last page) and, with `count`, `total` (all that match, across pages; it
    reads every match, so only on request: else None)."""
    feeds = _filtered_feeds(database, tenant, where)
    limit = max(1, min(limit, MAX_PAGE))
    after = decode_cursor(cursor) if cursor else None  # a bad cursor is refused even for a tenant without feeds
    if not feeds:
        return {"leads": [], "total": 0 if count else None, "next_cursor": None}
    page = list(itertools.islice(_ordered(database, feeds, where, after, limit + 1), limit + 1))
    more = len(page) > limit
    page = page[:limit]
    leads = _documents(database, tenant, [(key, mls) for _, key, mls in page])
    last = page[-1] if more else None
    total = None
    if count:
        counted = list(database[EXPIRED.collection_name(feeds[0])].aggregate(
            [*_union(feeds, where.match()), {"$count": "n"}]))  # fmt: skip
        total = counted[0]["n"] if counted else 0
    return {"leads": leads, "total": total, "next_cursor": encode_cursor(last[0], last[1]) if last else None}


def iter_leads(database: Database, tenant: str, where: LeadFilter, batch: int = 500) -> Iterator[dict[str, Any]]:
    """Every matching lead in list order, `batch` at a time (memory stays flat however many
    there are)."""
    feeds = _filtered_feeds(database, tenant, where)
    if not feeds:
        return
    rows = _ordered(database, feeds, where, None, batch)
    while picks := [(key, mls) for _, key, mls in itertools.islice(rows, batch)]:
        yield from _documents(database, tenant, picks)


def find_lead(database: Database, tenant: str, listing_key: str) -> dict[str, Any] | None:
    """The tenant's lead for a ListingKey (the same copy the list shows), or None."""
    best: dict[str, Any] | None = None
    for feed in tenant_feeds(database, tenant):
        doc = database[EXPIRED.collection_name(feed)].find_one({"listingKey": listing_key}, HIDDEN_FIELDS)
        if doc is None or not isinstance(doc.get("statusChangeDate"), datetime):
            continue
        if best is None or doc["statusChangeDate"] > best["statusChangeDate"]:
            best = _shown(doc, feed.mls)
    return best


def lead_photos(database: Database, tenant: str, lead: dict[str, Any]) -> list[dict[str, Any]]:
    """The lead's photos, in order."""
    photos = database[EXPIRED_PHOTOS.collection_name(FeedKey(tenant, lead["mls"]))]
    return list(photos.find({"listingKey": lead["listingKey"]}, HIDDEN_FIELDS).sort("order", 1))
