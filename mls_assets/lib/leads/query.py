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
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from cachetools import TTLCache
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
CSV_COLUMNS = (
    "mls",
    "listingKey",
    "listingId",
    "standardStatus",
    "statusChangeDate",
    "unparsedAddress",
    "city",
    "postalCode",
    "listPrice",
    "bedsTotal",
    "totalDaysOnMarket",
    "leadStatus",
    "skipTraced",
    "skipTraceDate",
    "voicemailSent",
    "voicemailSentDate",
    "emailSent",
    "emailSentDate",
    "ownerName",
    "ownerPhone",
    "ownerEmail",
)


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

    def match(
        self, lower: datetime | None = None, upper: datetime | None = None, upper_inclusive: bool = False
    ) -> dict[str, Any]:
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
        return (
            (self.leadStatus is None or doc.get("leadStatus") == self.leadStatus)
            and (self.city is None or doc.get("city") == self.city)
            and (self.status is None or doc.get("standardStatus") in STATUS_SPELLINGS[self.status])
        )


# A tenant's feeds, kept for a second (a request reads them once; a round trip is ~10% of a
# one-lead request): a feed added to a tenant lists its leads a second later at most.
FEEDS_KEPT_SECONDS = 1.0
_feeds_cache: TTLCache = TTLCache(maxsize=4096, ttl=FEEDS_KEPT_SECONDS)
_feeds_lock = threading.Lock()


def tenant_feeds(database: Database, tenant: str) -> list[FeedKey]:
    """The tenant's MLS feeds, as configured (enabled or not: their leads stay theirs)."""
    validate_id(tenant, "tenant")
    key = (id(database.client), database.name, tenant)
    with _feeds_lock:
        feeds = _feeds_cache.get(key)
    if feeds is None:
        feeds = _configured_feeds(database, tenant)
        with _feeds_lock:
            _feeds_cache[key] = feeds
    return list(feeds)


def _configured_feeds(database: Database, tenant: str) -> tuple[FeedKey, ...]:
    doc = database[CONFIGS_COLLECTION].find_one({"tenantId": tenant}, {"_id": 0, "mlsConfigs.provider": 1}) or {}
    feeds = []
    for config in doc.get("mlsConfigs") or []:
        try:
            feeds.append(FeedKey(tenant, config.get("provider")))
        except (InvalidIdentifier, AttributeError):
            continue  # a config the feed loader refuses too
    return tuple(sorted(set(feeds), key=str))


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
        return [
            {"$match": match},
            {"$project": {"_id": 0, "listingKey": 1, "statusChangeDate": 1}},
            {"$addFields": {"mls": feed.mls}},
        ]

    first, *rest = feeds
    stages = branch(first)
    stages += [{"$unionWith": {"coll": EXPIRED.collection_name(f), "pipeline": branch(f)}} for f in rest]
    stages += [{"$group": {"_id": "$listingKey"}}]
    return stages


LIST_ORDER = [("statusChangeDate", -1), ("listingKey", 1)]
RANK_FIELDS = {"_id": 0, "listingKey": 1, "statusChangeDate": 1, "leadStatus": 1, "city": 1, "standardStatus": 1}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _newest_first(changed: datetime) -> int:
    """A sort key that puts later status changes first, exact to the microsecond."""
    return -((changed - _EPOCH) // timedelta(microseconds=1))


# A lead as the list reads it: (status change, ListingKey, MLS, the document as shown).
Row = tuple[datetime, str, str, dict[str, Any]]


def _rank(changed: datetime, mls: str) -> tuple[int, str]:
    """Which of two copies of one ListingKey the list shows: the lower rank (the newest status
    change, then the MLS id in order)."""
    return (_newest_first(_aware(changed)), mls)


def _order_key(row: Row) -> tuple[int, str, str]:
    return (_newest_first(row[0]), row[1], row[2])


FIRST_WINDOW, MIN_WINDOW = timedelta(hours=1), timedelta(milliseconds=1)
_HINTS_KEPT = 4096


@dataclass(frozen=True)
class _Hint:
    """What the last walk over a collection under a filter learnt: its newest match, how wide a
    window of one match is there, and the oldest match (nothing lay below it)."""

    newest: datetime | None = None
    span: timedelta | None = None
    oldest: datetime | None = None


class _WindowHints:
    """`_Hint`s per collection and filter (per process, least recently used dropped).

    Only hints: they place and size the date windows, never decide what a page holds (every
    window is still read). Without them a first page walks down from now doubling empty
    windows, and the first window that reaches the leads may hold thousands of them (a lead
    set 15 days old: 300 ms); a last page walks on down to 1900. A filter without hints of its
    own starts from the whole list's: its newest match is no later, its oldest no earlier."""

    def __init__(self) -> None:
        self._hints: OrderedDict[tuple[str, LeadFilter], _Hint] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, LeadFilter]) -> _Hint:
        with self._lock:
            for known in (key, (key[0], LeadFilter())):
                if known in self._hints:
                    self._hints.move_to_end(known)
                    return self._hints[known]
        return _Hint()

    def learn(self, key: tuple[str, LeadFilter], **learnt: Any) -> None:
        with self._lock:
            self._hints[key] = replace(self._hints.get(key, _Hint()), **learnt)
            self._hints.move_to_end(key)
            while len(self._hints) > _HINTS_KEPT:
                self._hints.popitem(last=False)


_hints = _WindowHints()


def _newest_first_rows(
    collection, where: LeadFilter, after: tuple[datetime, str] | None, want: Callable[[], int]
) -> Iterator[tuple[datetime, dict[str, Any]]]:
    """(status change, document) of `collection`'s matches after the keyset position, in list
    order, read a window of status change dates at a time, each about `want()` documents wide
    (asked before each window: near the end of a page the next window need not be a whole one).

    Why windows: the embedded server reads everything a query's range holds before it applies
    a sort's `limit` (a page of 101 over 20,000 leads took 300 ms whatever the index), while a
    date range costs what it holds (~50 us a document). Each window's width follows the
    density of the one before (after an empty one, twice as wide); its rows are sorted here.
    Where a walk starts, the density it starts from and where it may jump to the end come from
    `_WindowHints`."""
    key = (collection.full_name, where)
    hint = _hints.get(key)
    span, width = hint.span, FIRST_WINDOW  # (the date span of one row; the next window's width while unknown)

    def window(lower: datetime, upper: datetime, upper_inclusive: bool) -> list[tuple[datetime, dict[str, Any]]]:
        found = collection.find(where.match(lower, upper, upper_inclusive), HIDDEN_FIELDS)
        rows = sorted(
            ((_aware(d["statusChangeDate"]), d) for d in found),
            key=lambda row: (_newest_first(row[0]), row[1]["listingKey"]),
        )
        if after is not None and upper_inclusive:  # the cursor's own instant: only the keys after it
            rows = [r for r in rows if r[0] < after[0] or (r[0] == after[0] and r[1]["listingKey"] > after[1])]
        return rows

    from_top = after is None
    if from_top:  # everything from the newest match seen last time (or now) on first, then down
        top = min(hint.newest or datetime.now(UTC), where.until or LATEST)
        rows, upper, upper_inclusive = window(top, LATEST, True), top, False
    else:
        rows, upper, upper_inclusive = [], after[0], True
    floor, last = where.since or EARLIEST, upper
    while True:
        if rows:
            if from_top:  # the first match of a walk from the top is the newest
                _hints.learn(key, newest=rows[0][0])
                from_top = False
            last = rows[-1][0]
            yield from rows
        if upper <= floor:
            _hints.learn(key, oldest=last)  # (a walk that ends here saw everything down to the floor)
            return
        if hint.oldest is not None and upper <= hint.oldest:
            # nothing was below the oldest match last time: one window for the rest (its width
            # says nothing about the density, so nothing is learnt from it)
            rows, upper, upper_inclusive = window(floor, upper, upper_inclusive), floor, False
            continue
        if span is not None:
            width = min(max(span * want(), MIN_WINDOW), LATEST - EARLIEST)
        lower = upper - width if width < upper - EARLIEST else EARLIEST  # (never below year 1)
        rows = window(lower, upper, upper_inclusive)
        if rows:
            span = width / len(rows)
            _hints.learn(key, span=span)
        else:
            span, width = None, min(width * 2, LATEST - EARLIEST)
        upper, upper_inclusive = lower, False


def _ordered(
    database: Database,
    feeds: list[FeedKey],
    where: LeadFilter,
    after: tuple[datetime, str] | None,
    batch: int,
    limit: int | None = None,
) -> Iterator[Row]:
    """The matching leads after the keyset position `after` (at most `limit`), in list order,
    one copy per ListingKey; each feed read about `batch` rows at a time.

    Which copy of a ListingKey the list shows (the newest matching, then the MLS in order) is
    decided in memory for copies the merge has passed in this chunk, and by one lookup per
    other feed for copies above the chunk (before the cursor, or in an earlier chunk): a first
    page asks nothing more. A chunk after the first is only as long as the rows still
    wanted: a page that lost a row or two to copies shown before asks for that many more, not
    for another page (that doubled a page's cost about one page in ten)."""

    taken = 0  # rows the merge has handed on so far

    def share() -> int:
        """Rows each feed's next window should hold: its share (and a quarter) of a chunk, or
        of what the page still lacks, at least 10."""
        lacking = batch if limit is None else min(batch, limit - taken)
        return max(10, lacking * 5 // (4 * len(feeds)) + 1)

    def stream(feed: FeedKey) -> Iterator[Row]:
        for changed, doc in _newest_first_rows(database[EXPIRED.collection_name(feed)], where, after, share):
            yield changed, doc["listingKey"], feed.mls, doc

    def counted(rows: Iterator[Row]) -> Iterator[Row]:
        nonlocal taken
        for row in rows:
            taken += 1
            yield row

    merged = counted(heapq.merge(*(stream(f) for f in feeds), key=_order_key))
    above = after[0] if after else None  # rows at or after this instant were passed before this chunk
    wanted = limit
    while wanted is None or wanted > 0:
        chunk = list(itertools.islice(merged, batch if wanted is None else min(batch, wanted)))
        if not chunk:
            return
        seen: set[str] = set()
        firsts = [row for row in chunk if not (row[1] in seen or seen.add(row[1]))]
        if len(feeds) > 1 and above is not None:
            newer = _newer_above(database, feeds, where, above, firsts)
            firsts = [row for row in firsts if (row[1], row[2]) not in newer]
        yield from firsts
        above = chunk[-1][0]
        wanted = None if wanted is None else wanted - len(firsts)


# The embedded server's `$in` costs more per value as the list grows (at 100,000 leads: 3.6 ms
# for 25 values, 6.3 for 50, 9.1 for 70, 14.4 for 100): lists of at most 64, of equal length.
_IN_VALUES = 64


def _newer_above(
    database: Database, feeds: list[FeedKey], where: LeadFilter, above: datetime, rows: list[Row]
) -> set[tuple[str, str]]:
    """The (ListingKey, MLS) of `rows` that another feed holds in a newer matching copy (or one
    as new from an MLS id earlier in order) dated at or after `above`: the list showed that one."""
    newer: set[tuple[str, str]] = set()
    for feed in feeds:
        theirs = {row[1]: row for row in rows if row[2] != feed.mls}
        keys = sorted(theirs)
        lists = -(-len(keys) // _IN_VALUES)
        for part in (keys[i::lists] for i in range(lists)):
            found = database[EXPIRED.collection_name(feed)].find(
                {"listingKey": {"$in": part}, "statusChangeDate": {"$gte": above}}, RANK_FIELDS
            )
            for doc in (d for d in found if where.accepts(d)):
                changed, key, mls, _ = theirs[doc["listingKey"]]
                if _rank(doc["statusChangeDate"], feed.mls) < _rank(changed, mls):
                    newer.add((key, mls))
    return newer


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


def list_leads(
    database: Database, tenant: str, where: LeadFilter, limit: int = 50, cursor: str | None = None, count: bool = False
) -> dict[str, Any]:
    """One page of the tenant's leads, newest status change first: `leads`, `next_cursor`
    (None on the last page) and, with `count`, `total` (all that match, across pages; it
    reads every match, so only on request: else None)."""
    feeds = _filtered_feeds(database, tenant, where)
    limit = max(1, min(limit, MAX_PAGE))
    after = decode_cursor(cursor) if cursor else None  # a bad cursor is refused even for a tenant without feeds
    if not feeds:
        return {"leads": [], "total": 0 if count else None, "next_cursor": None}
    page = list(_ordered(database, feeds, where, after, limit + 1, limit=limit + 1))
    more = len(page) > limit
    page = page[:limit]
    last = page[-1] if more else None
    total = None
    if count:
        counted = list(
            database[EXPIRED.collection_name(feeds[0])].aggregate([*_union(feeds, where.match()), {"$count": "n"}])
        )
        total = counted[0]["n"] if counted else 0
    return {
        "leads": [_shown(doc, mls) for _, _, mls, doc in page],
        "total": total,
        "next_cursor": encode_cursor(last[0], last[1]) if last else None,
    }


def iter_leads(database: Database, tenant: str, where: LeadFilter, batch: int = 500) -> Iterator[dict[str, Any]]:
    """Every matching lead in list order, `batch` at a time (memory stays flat however many
    there are)."""
    feeds = _filtered_feeds(database, tenant, where)
    for _, _, mls, doc in _ordered(database, feeds, where, None, batch) if feeds else ():
        yield _shown(doc, mls)


def find_lead(database: Database, tenant: str, listing_key: str) -> dict[str, Any] | None:
    """The tenant's lead for a ListingKey (the same copy the list shows), or None."""

    def copy(feed: FeedKey) -> tuple[FeedKey, dict[str, Any]] | None:
        found = database[EXPIRED.collection_name(feed)].find({"listingKey": listing_key}, HIDDEN_FIELDS).limit(1)
        doc = next(iter(found), None)
        return (feed, doc) if doc is not None and isinstance(doc.get("statusChangeDate"), datetime) else None

    copies = [c for c in map(copy, tenant_feeds(database, tenant)) if c is not None]
    if not copies:
        return None
    feed, doc = min(copies, key=lambda c: _rank(c[1]["statusChangeDate"], c[0].mls))
    return _shown(doc, feed.mls)


def lead_photos(database: Database, tenant: str, lead: dict[str, Any]) -> list[dict[str, Any]]:
    """The lead's photos, in order."""
    photos = database[EXPIRED_PHOTOS.collection_name(FeedKey(tenant, lead["mls"]))]
    return sorted(photos.find({"listingKey": lead["listingKey"]}, HIDDEN_FIELDS), key=lambda p: p.get("order") or 0)
