"""Deterministic market data for the simulator: listings that live through time.

Each listing has a seeded timeline of events (listed, price changes, status moves such as
Active -> Pending -> Closed or Active -> Expired -> relisted, photo changes, deletion).
Its state at a clock time is the timeline up to that time, so advancing the clock makes
the market evolve reproducibly: new listings appear, prices and statuses change,
listings vanish. Records are rendered on demand in the shape Spark returns, including the
quirks of real payloads (numbers as strings, padded coordinates, nulls, masked values,
empty lists and objects).
"""

from __future__ import annotations

import random
import time
import zlib
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

GPS_MLS_ID = "20190211172710340762000000"
CRMLS_MLS_ID = "20200218121507636729000000"

# (city, postal codes, latitude, longitude, median price)
_CITIES = {
    GPS_MLS_ID: [
        ("Palm Springs", ("92262", "92264"), 33.8303, -116.5453, 950_000),
        ("Palm Desert", ("92260", "92211"), 33.7222, -116.3745, 720_000),
        ("La Quinta", ("92253",), 33.6634, -116.3100, 880_000),
        ("Indio", ("92201", "92203"), 33.7206, -116.2156, 520_000),
        ("Rancho Mirage", ("92270",), 33.7397, -116.4128, 1_100_000),
        ("Cathedral City", ("92234",), 33.7797, -116.4653, 480_000),
        ("Desert Hot Springs", ("92240",), 33.9611, -116.5017, 380_000),
        ("Indian Wells", ("92210",), 33.7178, -116.3411, 1_400_000),
        ("Coachella", ("92236",), 33.6803, -116.1739, 420_000),
        ("Thousand Palms", ("92276",), 33.8206, -116.3903, 450_000),
    ],
    CRMLS_MLS_ID: [
        ("Riverside", ("92501", "92503"), 33.9533, -117.3962, 620_000),
        ("Temecula", ("92590", "92592"), 33.4936, -117.1484, 780_000),
        ("Irvine", ("92602", "92618"), 33.6846, -117.8265, 1_450_000),
        ("Newport Beach", ("92660", "92663"), 33.6189, -117.9298, 3_200_000),
        ("Anaheim", ("92801", "92805"), 33.8366, -117.9143, 850_000),
        ("Pasadena", ("91101", "91106"), 34.1478, -118.1445, 1_300_000),
        ("Long Beach", ("90802", "90815"), 33.7701, -118.1937, 900_000),
        ("Corona", ("92879", "92882"), 33.8753, -117.5664, 760_000),
        ("Murrieta", ("92562", "92563"), 33.5539, -117.2139, 690_000),
        ("Santa Ana", ("92701", "92705"), 33.7455, -117.8677, 820_000),
    ],
}
# What each city's listings say about where they are: its county, its subdivisions, and the
# schools (elementary, middle, high) and unified district that serve it. Stable per listing;
# rendered with the quirks of real payloads (casing and spacing variants, masked, empty).
_COUNTIES = {
    "Riverside": "Riverside",
    "Temecula": "Riverside",
    "Corona": "Riverside",
    "Murrieta": "Riverside",
    "Irvine": "Orange",
    "Newport Beach": "Orange",
    "Anaheim": "Orange",
    "Santa Ana": "Orange",
    "Pasadena": "Los Angeles",
    "Long Beach": "Los Angeles",
}
_DISTRICTS = {
    "Palm Springs": "Palm Springs Unified",
    "Cathedral City": "Palm Springs Unified",
    "Desert Hot Springs": "Palm Springs Unified",
    "Rancho Mirage": "Palm Springs Unified",
    "Thousand Palms": "Palm Springs Unified",
    "Coachella": "Coachella Valley Unified",
    "Palm Desert": "Desert Sands Unified",
    "La Quinta": "Desert Sands Unified",
    "Indio": "Desert Sands Unified",
    "Indian Wells": "Desert Sands Unified",
}
_SUBDIVISION_WORDS = (
    "Country Club",
    "Estates",
    "Villas",
    "Ranch",
    "Mesa",
    "Cove",
    "Greens",
    "Heights",
    "Palms",
    "Vista",
)
_SCHOOL_NAMES = (
    "Lincoln",
    "Washington",
    "Jefferson",
    "Roosevelt",
    "Madison",
    "Kennedy",
    "Cielo Vista",
    "Sunrise",
    "Desert View",
    "Mountain View",
    "Valley",
    "Sierra",
)


def fleet_mls_ids(count: int) -> tuple[str, ...]:
    """`count` MLS ids for a fleet: the two named MLSs, then generated ones (`2021...01`,
    `2021...02`, ...), whose listings lie in the named MLSs' cities in turn."""
    extra = tuple(f"2021{n:022d}" for n in range(1, max(0, count - 2) + 1))
    return ((GPS_MLS_ID, CRMLS_MLS_ID) + extra)[:count]


def mls_number(mls_id: str) -> int:
    """n of a generated MLS id `2021...n` (`fleet_mls_ids`)."""
    return int(mls_id[4:])


def _cities(mls_id: str) -> list:
    named = (GPS_MLS_ID, CRMLS_MLS_ID)
    return _CITIES.get(mls_id) or _CITIES[named[mls_number(mls_id) % 2]]


def _area(city: str) -> dict[str, Any]:
    """A city's subdivisions and schools (the same for every seed: geography, not market)."""
    rng = random.Random(zlib.crc32(f"area|{city}".encode()))
    first = city.split()[0]
    subdivisions = sorted({f"{rng.choice((first, *_STREETS[:8]))} {rng.choice(_SUBDIVISION_WORDS)}" for _ in range(6)})
    names = rng.sample(_SCHOOL_NAMES, 5)
    return {
        "subdivisions": subdivisions,
        "elementary": [f"{names[0]} Elementary", f"{names[1]} Elementary"],
        "middle": [f"{names[2]} Middle"],
        "high": [f"{city} High", f"{names[3]} High"] if len(city) % 2 else [f"{city} High"],
        "district": _DISTRICTS.get(city, f"{city} Unified"),
        "county": _COUNTIES.get(city, "Riverside"),
    }


_AREAS: dict[str, dict[str, Any]] = {}


def area_of(city: str) -> dict[str, Any]:
    if city not in _AREAS:
        _AREAS[city] = _area(city)
    return _AREAS[city]


def _variant(value: str, rng: random.Random) -> str | None:
    """How a source spells a name: mostly as is; sometimes upper or lower case, padded, with
    doubled spaces, masked or empty; None when it sends nothing."""
    roll = rng.random()
    if roll < 0.06:
        return value.upper()
    if roll < 0.10:
        return value.lower()
    if roll < 0.14:
        return f" {value.replace(' ', '  ')} "
    if roll < 0.16:
        return "********"
    if roll < 0.18:
        return ""
    if roll < 0.22:
        return None
    return value


_STREETS = (
    "Country Club",
    "Fred Waring",
    "Washington",
    "Highway 111",
    "Bob Hope",
    "Monterey",
    "Portola",
    "Cook",
    "Jefferson",
    "Avenue 48",
    "Calle Tampico",
    "Vista Chino",
    "Ramon",
    "Date Palm",
    "Frank Sinatra",
    "Gerald Ford",
    "Dinah Shore",
    "Tahquitz Canyon",
    "Palm Canyon",
    "Sunrise",
    "Mesa Verde",
    "San Pablo",
    "Via Del Rey",
    "Oak Glen",
)
_SUFFIXES = ("Dr", "Rd", "Ave", "Way", "Ln", "Ct", "Cir", "Trl", "Pl", "St")
_SUBTYPES = {
    "A": ("Single Family Residence", "Condominium", "Townhouse", "Manufactured On Land"),
    "B": ("Single Family Residence", "Condominium", "Apartment"),
    "C": ("Duplex", "Triplex", "Quadruplex"),
}
_FEATURES = {
    "PoolFeatures": ("Pool", "Spa", "Heated", "Salt Water", "In Ground", "Community"),
    "View": ("Mountain(s)", "Golf Course", "Pool", "Desert", "Panoramic", "Lake"),
    "Cooling": ("Central Air", "Ceiling Fan(s)", "Evaporative Cooling"),
    "ParkingFeatures": ("Garage", "Golf Cart Garage", "Driveway", "Carport"),
}
MEDIA_HOST = "https://cdn.sparkplatform.test"  # a photo URL's host unless a simulator serves them
_PHOTO_SIZES = ("UriThumb", "Uri300", "Uri640", "Uri800", "Uri1024", "Uri1280", "Uri1600", "Uri2048", "UriLarge")
_CAPTIONS = (
    "Front",
    "Living room",
    "Kitchen",
    "Primary bedroom",
    "Backyard",
    "Pool",
    "View",
    "Bathroom",
    "Dining",
    "Garage",
    None,
)

# What "hostile records" look like (`Market(hostile_rate=...)`, `--hostile`): one kind per
# hostile listing, in every version of it. Each names what the pipeline must do with it.
HOSTILE_KINDS = {
    "key_object": "quarantined: ListingKey is an object",
    "key_list": "quarantined: ListingKey is a list",
    "key_missing": "stored under its Id (Spark repeats the key there)",
    "no_key": "quarantined: no ListingKey and no Id",
    "nan": "quarantined: ListPrice is NaN",
    "infinity": "quarantined: Latitude is Infinity",
    "bad_utf8": "quarantined: PublicRemarks holds a byte that is not UTF-8",
    "ancient": "quarantined: ModificationTimestamp in 1900",
    "future": "quarantined: ModificationTimestamp in 2100",
    "unsafe_names": "stored without its fields named $where, a.b and a<NUL>b",
    "deep": "quarantined: nested 150 levels deep",
    "not_object": "quarantined: the record is a string",
}
# Values JSON cannot carry from Python: the server writes them into the body as sent bytes.
_RAW_VALUES = {b'"__sim_NaN__"': b"NaN", b'"__sim_Infinity__"': b"Infinity", b'"__sim_badutf8__"': b'"caf\xff"'}


def render_hostile_values(body: bytes) -> bytes:
    if b"__sim_" not in body:
        return body
    for sentinel, raw in _RAW_VALUES.items():
        body = body.replace(sentinel, raw)
    return body


# Filterable fields the simulator indexes (Spark's own list is far longer).
FILTER_FIELDS = (
    "ListingKey",
    "ListingId",
    "MlsId",
    "PropertyType",
    "PropertySubType",
    "StandardStatus",
    "MlsStatus",
    "ModificationTimestamp",
    "StatusChangeTimestamp",
    "PhotosChangeTimestamp",
    "ListPrice",
    "City",
    "PostalCode",
    "BedsTotal",
    "ListDate",
    "OnMarketDate",
    "CloseDate",
)


@dataclass
class Timeline:
    """One listing's life: events sorted by time (epoch seconds)."""

    index: int
    mls_id: str
    key: str
    times: list[int] = field(default_factory=list)
    events: list[tuple[str, Any]] = field(default_factory=list)

    def add(self, at: int, kind: str, value: Any = None) -> None:
        self.times.append(at)
        self.events.append((kind, value))


@dataclass
class ListingState:
    """What a listing looks like at one clock time."""

    timeline: Timeline
    status: str
    price: int
    listed_at: int
    modified_at: int
    status_changed_at: int
    photos_changed_at: int
    photo_version: int
    close_price: int | None
    closed_at: int | None
    index_row: dict[str, Any]
    deleted: bool = False  # only a RESO source shows a deleted listing (MlgCanView false)


def _ts(epoch_seconds: int) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)


def iso_time(epoch_seconds: int) -> str:
    return _ts(epoch_seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


class Market:
    """All listings of the simulated MLSs and their state at the current clock."""

    def __init__(
        self,
        listings: int = 2000,
        seed: int = 7,
        anchor: datetime | None = None,
        mls_ids: tuple[str, ...] = (GPS_MLS_ID, CRMLS_MLS_ID),
        quirk_rate: float = 0.15,
        bad_record_rate: float = 0.002,
        follow_wall_clock: bool = False,
        hostile_rate: float = 0.0,
        max_photos: int | None = None,
    ) -> None:
        """`listings` per MLS; `anchor` is the clock's start (default: today 00:00 UTC);
        `max_photos`: at most this many photos a listing (a small demo), else 0-40.

        With `follow_wall_clock` the market's "now" moves with real time (plus any offset
        the clock controls add), as a live source does; else it stands still at the anchor
        until moved, which is what tests want."""
        self.media_base = MEDIA_HOST  # where its photo URLs point (the simulator serves them when asked)
        self.max_photos = max_photos
        anchor = anchor or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.seed = seed
        self.anchor = anchor if anchor.tzinfo else anchor.replace(tzinfo=UTC)
        self.quirk_rate = quirk_rate
        self.bad_record_rate = bad_record_rate
        self.hostile_rate = hostile_rate
        self.mls_ids = mls_ids
        self.follow_wall_clock = follow_wall_clock
        self._fixed = int(self.anchor.timestamp())
        self._offset = 0
        self.timelines: list[Timeline] = []
        self._static: list[dict[str, Any]] = []
        for mls_number, mls_id in enumerate(mls_ids):
            for i in range(listings):
                timeline, static = self._generate(mls_number, mls_id, i)
                self.timelines.append(timeline)
                self._static.append(static)
        self._state_cache: tuple[int, list[ListingState]] | None = None

    # -- the clock ----------------------------------------------------------------------

    @property
    def _clock(self) -> int:
        """Epoch seconds of the market's now (10 s steps when following the wall clock)."""
        if self.follow_wall_clock:
            return int(time.time()) // 10 * 10 + self._offset
        return self._fixed

    @property
    def now(self) -> datetime:
        return _ts(self._clock)

    def set_clock(self, when: datetime) -> None:
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        if self.follow_wall_clock:
            self._offset = int(when.timestamp()) - int(time.time()) // 10 * 10
        else:
            self._fixed = int(when.timestamp())

    def advance(self, delta: timedelta) -> datetime:
        if self.follow_wall_clock:
            self._offset += int(delta.total_seconds())
        else:
            self._fixed += int(delta.total_seconds())
        return self.now

    def change(
        self, key: str, status: str | None = None, price: int | None = None, delete: bool = False, photos: bool = False
    ) -> datetime:
        """A listing changes now (its status, its price, its photos), or is deleted, as an
        agent's edit in the MLS would: the change is visible from now on with
        ModificationTimestamp = now. Used to measure freshness against a live market."""
        timeline = next((t for t in self.timelines if t.key == key), None)
        if timeline is None:
            raise KeyError(f"no listing {key!r}")
        at = self._clock
        if not timeline.times or at < timeline.times[0]:  # its first event is its listing
            raise ValueError(f"listing {key!r} is not on the market yet")
        edits = (
            ("status", status),
            ("price", price),
            ("photos", True if photos else None),
            ("delete", True if delete else None),
        )
        for kind, value in edits:
            if value is not None:
                position = bisect_right(timeline.times, at)
                timeline.times.insert(position, at)
                timeline.events.insert(position, (kind, value))
        self._state_cache = None
        return _ts(at)

    # -- generation ---------------------------------------------------------------------

    def _rng(self, *parts: Any) -> random.Random:
        return random.Random(zlib.crc32(repr((self.seed, *parts)).encode()))

    def _generate(self, mls_number: int, mls_id: str, i: int) -> tuple[Timeline, dict]:
        rng = self._rng(mls_id, i)
        anchor = int(self.anchor.timestamp())
        day = 86_400
        # 90% listed in the 150 days before the anchor, 10% appear over the next 30 days
        if rng.random() < 0.9:
            listed = anchor - rng.randint(1, 150 * day)
        else:
            listed = anchor + rng.randint(60, 30 * day)
        key = f"{_ts(listed):%Y%m%d%H%M%S}{mls_number:02d}{i:010d}"
        timeline = Timeline(i, mls_id, key)
        city = rng.choice(_cities(mls_id))
        property_type = rng.choices("ABC", weights=(80, 15, 5))[0]
        base_price = city[4] * rng.uniform(0.45, 2.2)
        if property_type == "B":
            base_price = base_price / 250
        price = int(round(base_price, -3 if property_type != "B" else 1))
        start_status = "Coming Soon" if rng.random() < 0.05 else "Active"
        timeline.add(listed, "list", (start_status, price))
        at = listed
        if start_status == "Coming Soon":
            at += rng.randint(3, 14) * day
            timeline.add(at, "status", "Active")
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            at += rng.randint(2, 30) * day + rng.randint(0, day)
            price = int(round(price * rng.uniform(0.93, 0.99), -3 if property_type != "B" else 0))
            timeline.add(at, "price", price)
        if rng.random() < 0.3:
            timeline.add(at + rng.randint(1, 20) * day, "photos", 1)
        outcome = rng.choices(
            ("stay", "closed", "auc_closed", "expired", "canceled", "withdrawn", "deleted"),
            weights=(40, 22, 6, 14, 9, 5, 4),
        )[0]
        at += rng.randint(5, 45) * day + rng.randint(0, day)
        if outcome in ("closed", "auc_closed"):
            timeline.add(at, "status", "Pending" if outcome == "closed" else "Active Under Contract")
            at += rng.randint(10, 40) * day + rng.randint(0, day)
            timeline.add(at, "close", int(price * rng.uniform(0.95, 1.04)))
        elif outcome in ("expired", "canceled", "withdrawn"):
            status = {"expired": "Expired", "canceled": "Canceled", "withdrawn": "Withdrawn"}[outcome]
            timeline.add(at, "status", status)
            if rng.random() < 0.25:  # relisted
                at += rng.randint(5, 30) * day
                timeline.add(at, "relist", int(price * rng.uniform(0.9, 1.0)))
        elif outcome == "deleted":
            timeline.add(at, "delete")
        if rng.random() < 0.02:  # a few share their neighbour's timestamp (page-edge ties)
            timeline.times[-1] = timeline.times[0]
            order = sorted(range(len(timeline.times)), key=lambda n: timeline.times[n])
            timeline.times = [timeline.times[n] for n in order]
            timeline.events = [timeline.events[n] for n in order]

        postal = rng.choice(city[1])
        static = {
            "city": city[0],
            "postal": postal,
            "lat": city[2] + rng.uniform(-0.04, 0.04),
            "lng": city[3] + rng.uniform(-0.05, 0.05),
            "number": rng.randint(100, 89999),
            "street": f"{rng.choice(_STREETS)} {rng.choice(_SUFFIXES)}",
            "unit": f"Unit {rng.randint(1, 300)}" if rng.random() < 0.12 else None,
            "type": property_type,
            "subtype": rng.choice(_SUBTYPES[property_type]),
            "beds": rng.choice((1, 2, 2, 3, 3, 3, 4, 4, 5, 6)),
            "baths": rng.choice((1, 2, 2, 2, 3, 3, 4)),
            "area": rng.randint(650, 5200),
            "lot": rng.randint(2000, 40000),
            "year": rng.randint(1955, 2025),
            "photos": rng.choice((0, 1, 3, 6, 8, 12, 12, 18, 24, 30, 40)),
            "features": {
                name: {v: rng.random() < 0.45 for v in rng.sample(values, k=min(3, len(values)))}
                for name, values in _FEATURES.items()
                if rng.random() < 0.6
            },
            "lease": rng.random() < 0.08 and mls_id == GPS_MLS_ID,
            "agent": f"{rng.choice(('Ana', 'Ben', 'Carla', 'Dev', 'Elena', 'Frank'))} "
            f"{rng.choice(('Lopez', 'Nguyen', 'Smith', 'Patel', 'Garcia', 'Kim'))}",
            "listing_id": f"{'2' if mls_id == GPS_MLS_ID else 'SW'}{_ts(listed):%y}{i:06d}",
        }
        return timeline, static

    # -- state at the clock -------------------------------------------------------------

    def states(self) -> list[ListingState]:
        """Every listing visible at the current clock, in ListingKey order (cached per clock)."""
        if self._state_cache and self._state_cache[0] == self._clock:
            return self._state_cache[1]
        visible = [s for t in self.timelines if (s := self._state(t, self._clock)) is not None]
        visible.sort(key=lambda s: s.timeline.key)
        self._state_cache = (self._clock, visible)
        return visible

    def states_with_deleted(self) -> list[ListingState]:
        """What a RESO source shows: the visible listings and, with `deleted`, those removed
        by now (stamped with the deletion's time), in ListingKey order."""
        visible = self.states()
        known = {s.timeline.key for s in visible}
        gone = [
            s
            for t in self.timelines
            if t.key not in known
            and any(kind == "delete" for kind, _ in t.events)
            and (s := self._state(t, self._clock, keep_deleted=True)) is not None
        ]
        return sorted([*visible, *gone], key=lambda s: s.timeline.key)

    def keys(self) -> list[str]:
        return [s.timeline.key for s in self.states()]

    def _state(self, timeline: Timeline, clock: int, keep_deleted: bool = False) -> ListingState | None:
        upto = bisect_right(timeline.times, clock)
        if upto == 0:
            return None
        deleted = False
        status = price = None
        listed = changed = photos_at = timeline.times[0]
        photo_version = 0
        close_price = closed_at = None
        for n, (at, (kind, value)) in enumerate(zip(timeline.times[:upto], timeline.events[:upto], strict=True)):
            if kind == "list":
                status, price = value
            elif kind == "status":
                status, changed = value, at
            elif kind == "price":
                price = value
            elif kind == "photos":
                photo_version, photos_at = photo_version + 1, at
            elif kind == "close":
                status, changed, close_price, closed_at = "Closed", at, value, at
            elif kind == "relist":
                status, changed, price, listed = "Active", at, value, at
                photo_version, photos_at = photo_version + 1, at
            elif kind == "delete":
                if not keep_deleted:
                    return None
                deleted, upto = True, n + 1  # what follows a deletion is never seen
                break
        static = self._static[self._position(timeline)]
        row = {
            "ListingKey": timeline.key,
            "ListingId": static["listing_id"],
            "MlsId": timeline.mls_id,
            "PropertyType": static["type"],
            "PropertySubType": static["subtype"],
            "StandardStatus": status,
            "MlsStatus": status,
            "ModificationTimestamp": _ts(timeline.times[upto - 1]),
            "StatusChangeTimestamp": _ts(changed),
            "PhotosChangeTimestamp": _ts(photos_at),
            "ListPrice": price,
            "City": static["city"],
            "PostalCode": static["postal"],
            "BedsTotal": static["beds"],
            "ListDate": _ts(listed).date(),
            "OnMarketDate": _ts(listed).date(),
            "CloseDate": _ts(closed_at).date() if closed_at else None,
        }
        return ListingState(
            timeline,
            status,
            price,
            listed,
            timeline.times[upto - 1],
            changed,
            photos_at,
            photo_version,
            close_price,
            closed_at,
            row,
            deleted,
        )

    def _position(self, timeline: Timeline) -> int:
        return self.mls_ids.index(timeline.mls_id) * (len(self.timelines) // len(self.mls_ids)) + timeline.index

    # -- rendering ----------------------------------------------------------------------

    def record(self, state: ListingState, expand_photos: bool) -> dict[str, Any]:
        """The listing as a Spark replication result: `{ResourceUri, Id, StandardFields}`."""
        timeline = state.timeline
        static = self._static[self._position(timeline)]
        rng = self._rng("render", timeline.key, state.modified_at)
        quirky = rng.random() < self.quirk_rate
        address = f"{static['number']} {static['street']}"
        if static["unit"]:
            address += f" {static['unit']}"
        fields: dict[str, Any] = {
            "ListingKey": timeline.key,
            "ListingId": static["listing_id"],
            "MlsId": timeline.mls_id,
            "StandardStatus": state.status,
            "MlsStatus": state.status,
            "PropertyType": static["type"],
            "PropertySubType": static["subtype"],
            "UnparsedAddress": f"{address}, {static['city']}, CA {static['postal']}",
            "StreetNumber": str(static["number"]),
            "StreetName": static["street"],
            "City": static["city"],
            "StateOrProvince": "CA",
            "PostalCode": static["postal"],
            "CountyOrParish": area_of(static["city"])["county"],
            "Latitude": round(static["lat"], 6),
            "Longitude": round(static["lng"], 6),
            "ListPrice": state.price,
            "OriginalListPrice": timeline.events[0][1][1],
            "BedsTotal": static["beds"],
            "BathroomsTotalInteger": static["baths"],
            "LivingArea": static["area"],
            "LotSizeSquareFeet": static["lot"],
            "YearBuilt": static["year"],
            "ListDate": _ts(state.listed_at).date().isoformat(),
            "OnMarketDate": _ts(state.listed_at).date().isoformat(),
            "ModificationTimestamp": iso_time(state.modified_at),
            "StatusChangeTimestamp": iso_time(state.status_changed_at),
            "PhotosChangeTimestamp": iso_time(state.photos_changed_at),
            "OriginalEntryTimestamp": iso_time(timeline.times[0]),
            "DaysOnMarket": max(0, (self._clock - state.listed_at) // 86_400),
            "ListAgentFullName": static["agent"],
            "ListOfficeName": "Desert Realty Group" if timeline.mls_id == GPS_MLS_ID else "Coastal Homes",
            "PublicRemarks": f"{static['beds']} bed, {static['baths']} bath {static['subtype'].lower()} "
            f"in {static['city']}.",
            "PhotosCount": self._photo_count(static["photos"], 0),
            **{name: dict(values) for name, values in static["features"].items()},
        }
        fields.update(self._area_fields(timeline, static["city"], state.modified_at))
        if state.close_price is not None:
            fields["ClosePrice"] = state.close_price
            fields["CloseDate"] = _ts(state.closed_at).date().isoformat()
        if static["lease"]:
            fields.update(
                LandLeaseYN=True,
                LandLeaseAmount=f"{rng.choice((250, 350, 480, 625))}.00",
                LandLeaseAmountFrequency="Monthly",
                LandLeaseExpirationDate=f"{rng.randint(2035, 2079)}-12-31",
            )
        if quirky:  # what real payloads look like
            fields["ListPrice"] = f"{float(state.price)}"
            fields["Longitude"] = f" {fields['Longitude']}"
            fields["Latitude"] = f"{fields['Latitude']}"
            fields["ListAgentEmail"] = "********"
            fields["BuyerAgentFullName"] = None
            fields["Rooms"] = []
            fields["OpenHouses"] = {}
        if self.bad_record_rate and rng.random() < self.bad_record_rate:
            fields["ListPrice"] = "Call listing agent"  # cannot be parsed: lands in rejects
        if expand_photos:
            fields["Photos"] = self.photos(state)
        return {"ResourceUri": f"/v1/listings/{timeline.key}", "Id": timeline.key, "StandardFields": fields}

    def _area_fields(self, timeline: Timeline, city: str, modified_at: int) -> dict[str, Any]:
        """Subdivision and schools: which ones is fixed per listing, how they are spelled
        varies from version to version (as re-keyed MLS data does)."""
        area = area_of(city)
        pick = self._rng("area", timeline.key)
        spell = self._rng("area-render", timeline.key, modified_at)
        chosen = {
            "SubdivisionName": pick.choice(area["subdivisions"]),
            "ElementarySchool": pick.choice(area["elementary"]),
            "MiddleOrJuniorSchool": area["middle"][0],
            "HighSchool": pick.choice(area["high"]),
            "HighSchoolDistrict": area["district"],
        }
        return {name: spelled for name, value in chosen.items() if (spelled := _variant(value, spell)) is not None}

    def hostile_kind(self, state: ListingState) -> str | None:
        """The hostile kind of a listing (one in every 1/hostile_rate listings), or None."""
        if not self.hostile_rate:
            return None
        step = max(1, round(1 / self.hostile_rate))
        index = state.timeline.index
        if index % step != step - 1:
            return None
        kinds = list(HOSTILE_KINDS)
        return kinds[(index // step) % len(kinds)]

    def make_hostile(self, state: ListingState, record: dict[str, Any]) -> Any:
        """The record as a hostile source would send it (unchanged for most listings)."""
        kind = self.hostile_kind(state)
        if kind is None:
            return record
        if kind == "not_object":
            return f"listing {state.timeline.key} unavailable"
        record = {**record, "StandardFields": dict(record["StandardFields"])}
        fields = record["StandardFields"]
        if kind == "key_object":
            fields["ListingKey"] = {"$gt": ""}
        elif kind == "key_list":
            fields["ListingKey"] = [state.timeline.key, "other"]
        elif kind == "key_missing":
            fields.pop("ListingKey", None)
        elif kind == "no_key":
            fields.pop("ListingKey", None)
            record.pop("Id", None)
        elif kind == "nan":
            fields["ListPrice"] = "__sim_NaN__"
        elif kind == "infinity":
            fields["Latitude"] = "__sim_Infinity__"
        elif kind == "bad_utf8":
            fields["PublicRemarks"] = "__sim_badutf8__"
        elif kind == "ancient":
            fields["ModificationTimestamp"] = "1900-01-01T00:00:00Z"
        elif kind == "future":
            fields["ModificationTimestamp"] = "2100-01-01T00:00:00Z"
        elif kind == "unsafe_names":
            fields.update({"$where": "1", "a.b": 1, "a\u0000b": 1})
        elif kind == "deep":
            nested: dict[str, Any] = {"Level": 150}
            for _ in range(150):
                nested = {"Nested": nested}
            fields["Rooms"] = nested
        return record

    def _photo_count(self, base: int, version: int) -> int:
        count = max(0, base + (version % 3) - 1) if version else base  # photo changes add or drop one
        return count if self.max_photos is None else min(count, self.max_photos)

    def photos(self, state: ListingState) -> list[dict[str, Any]]:
        static = self._static[self._position(state.timeline)]
        key, version = state.timeline.key, state.photo_version
        count = self._photo_count(static["photos"], version)
        base = f"{self.media_base}/{state.timeline.mls_id[-6:]}/{key}"
        result = []
        for n in range(count):
            photo_id = f"{key}{version:02d}{n:03d}"
            photo = {
                "ResourceUri": f"/v1/listings/{key}/photos/{photo_id}",
                "Id": photo_id,
                "Name": f"Photo {n + 1}",
                "Caption": _CAPTIONS[(n + version) % len(_CAPTIONS)],
                "Primary": n == 0,
            }
            for size in _PHOTO_SIZES:
                photo[size] = f"{base}/v{version}/{n}-{size[3:].lower()}.jpg"
            result.append(photo)
        return result
