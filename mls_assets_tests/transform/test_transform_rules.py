"""Every transform rule on realistic Spark-shaped records (spark_api fixture shapes)."""

from datetime import UTC, datetime, timedelta

import pytest

from mls_assets.lib.tenants import FeedConfig
from mls_assets.lib.transform import clean, source_content_hash, status_class, transform_record
from mls_assets.lib.transform.derive import geo_point, land_details, listing_slug, slug_address
from mls_assets.lib.transform.naming import camel_case

GPS = FeedConfig(tenant_id="jpsrealtor", mls="gps", mls_id="20190211172710340762000000")
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def spark_record(**overrides) -> dict:
    """Shaped like the spark_api client's listing fixtures: Id + StandardFields."""
    fields = {
        "ListingKey": "20060412165917817933000000",
        "ListingId": "06-1234",
        "MlsId": "20190211172710340762000000",
        "StandardStatus": "Active",
        "MlsStatus": "Active",
        "PropertyType": "A",
        "PropertySubType": "Single Family Residence",
        "ModificationTimestamp": "2026-11-20T18:23:41.123456Z",
        "ListPrice": "50000.0",
        "Latitude": "33.7222",
        "Longitude": " -116.3237",
        "BedsTotal": "3",
        "BathroomsTotalInteger": 2,
        "City": "Palm Desert",
        "StateOrProvince": "CA",
        "UnparsedAddress": "73-450 Country Club Dr, Palm Desert, CA 92260",
        "PublicRemarks": "********",
        "ListAgentName": None,
        "Rooms": [],
        "OpenHouses": {},
        "PoolFeatures": {"Pool": True, "Spa": True, "Sauna": False},
        "MLSAreaMajor": "324 - Palm Desert East",
        "ListingURL": "https://example.test/l/06-1234",
        "Photos": [
            {
                "Id": "2006041216591781",
                "Name": "Front",
                "Caption": "Front elevation",
                "Primary": False,
                "UriThumb": "https://cdn.test/1-t.jpg",
                "Uri300": "https://cdn.test/1-300.jpg",
                "Uri640": "https://cdn.test/1-640.jpg",
                "Uri800": "https://cdn.test/1-800.jpg",
                "Uri1024": "https://cdn.test/1-1024.jpg",
                "Uri1280": "https://cdn.test/1-1280.jpg",
                "Uri1600": "https://cdn.test/1-1600.jpg",
                "Uri2048": "https://cdn.test/1-2048.jpg",
                "UriLarge": "https://cdn.test/1-large.jpg",
            },
            {
                "Id": "2006041216591782",
                "Primary": True,
                "Uri640": "https://cdn.test/2-640.jpg",
                "Uri1024": "https://cdn.test/2-1024.jpg",
                "Caption": None,
            },
        ],
    }
    fields.update(overrides)
    return {"ResourceUri": f"/v1/listings/{fields['ListingKey']}", "Id": fields["ListingKey"], "StandardFields": fields}


def ok(record: dict):
    result = transform_record(record, GPS, NOW)
    assert result.reject is None, result.reject
    return result.listing, result.photos


def rejected(record) -> dict:
    result = transform_record(record, GPS, NOW)
    assert result.listing is None and result.reject is not None
    return result.reject


# -- clean -----------------------------------------------------------------------------


def test_clean_drops_nulls_masks_and_empties_recursively():
    raw = {
        "a": None,
        "b": "********",
        "c": [],
        "d": {},
        "e": {"x": None, "y": [{}]},
        "f": 0,
        "g": False,
        "h": "",
        "i": [1, None, "********", {"k": "v"}],
    }
    assert clean(raw) == {"f": 0, "g": False, "h": "", "i": [1, {"k": "v"}]}


def test_clean_of_an_all_empty_record_is_empty():
    assert clean({"a": None, "b": {"c": []}}) == {}


# -- names and values ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("UnparsedAddress", "unparsedAddress"),
        ("ListingKey", "listingKey"),
        ("MLSAreaMajor", "mlsAreaMajor"),
        ("ListingURL", "listingUrl"),
        ("ID", "id"),
        ("Uri300", "uri300"),
        ("UriThumb", "uriThumb"),
        ("BathroomsTotalInteger", "bathroomsTotalInteger"),
        ("HOAFee", "hoaFee"),
        ("Lot Size", "lotSize"),
    ],
)
def test_camel_case(source, expected):
    assert camel_case(source) == expected


def test_flatten_camel_cases_parses_numbers_and_joins_boolean_dicts():
    listing, _ = ok(spark_record())
    assert listing["listingKey"] == "20060412165917817933000000"
    assert listing["unparsedAddress"].startswith("73-450")
    assert listing["mlsAreaMajor"] == "324 - Palm Desert East"
    assert listing["listingUrl"].startswith("https://")
    assert listing["listPrice"] == 50000.0 and isinstance(listing["listPrice"], float)
    assert listing["longitude"] == -116.3237
    assert listing["bedsTotal"] == 3 and isinstance(listing["bedsTotal"], int)
    assert listing["poolFeatures"] == "Pool, Spa"
    for dropped in ("publicRemarks", "listAgentName", "rooms", "openHouses", "photos"):
        assert dropped not in listing


def test_timestamps_become_aware_utc_datetimes_truncated_to_milliseconds():
    listing, _ = ok(spark_record(ListDate="2026-06-01", StatusChangeTimestamp="2026-11-20T10:00:00-08:00"))
    assert listing["modificationTimestamp"] == datetime(2026, 11, 20, 18, 23, 41, 123000, tzinfo=UTC)
    assert listing["listDate"] == datetime(2026, 6, 1, tzinfo=UTC)
    assert listing["statusChangeTimestamp"] == datetime(2026, 11, 20, 18, tzinfo=UTC)


def test_an_unreadable_optional_date_is_dropped_with_a_warning():
    listing, _ = ok(spark_record(CloseDate="sometime soon"))
    assert "closeDate" not in listing
    assert any("CloseDate" in w for w in listing["dataWarnings"])


# -- derived fields --------------------------------------------------------------------


def test_feed_identity_and_sync_time_are_stamped():
    listing, _ = ok(spark_record())
    assert (listing["tenantId"], listing["mlsProvider"], listing["mlsId"]) == (
        "jpsrealtor",
        "gps",
        "20190211172710340762000000",
    )
    assert listing["lastSyncedAt"] == NOW


def test_slugs_are_url_safe_stable_and_unique_per_listing():
    listing, _ = ok(spark_record())
    assert listing["slugAddress"] == "73-450-country-club-dr-palm-desert-ca-92260"
    assert listing["slug"] == "73-450-country-club-dr-palm-desert-ca-92260-06-1234"
    same_address, _ = ok(spark_record(ListingKey="20060412165917817933000001", ListingId="06-9999"))
    assert same_address["slugAddress"] == listing["slugAddress"]
    assert same_address["slug"] != listing["slug"]
    assert slug_address("Café Ñandú #5, Indio") == "cafe-nandu-5-indio"
    assert listing_slug(None, "A/B 1", "K") == "a-b-1"


def test_primary_photo_url_prefers_the_primary_photo():
    listing, photos = ok(spark_record())
    assert listing["primaryPhotoUrl"] == "https://cdn.test/2-1024.jpg"
    assert listing["photoCount"] == 2 and len(photos) == 2


def test_geojson_location_only_for_valid_coordinates():
    listing, _ = ok(spark_record())
    assert listing["location"] == {"type": "Point", "coordinates": [-116.3237, 33.7222]}
    assert geo_point(91.0, 10.0) is None
    assert geo_point(33.0, -181.0) is None
    assert geo_point(0, 0) is None
    assert geo_point("33", "-116") is None
    without, _ = ok(spark_record(Latitude=None))
    assert "location" not in without


def test_land_details_fee_and_lease():
    assert land_details({}, NOW) == {"landType": "Fee"}
    lease = land_details(
        {
            "LandLeaseYN": True,
            "LandLeaseAmount": "350.00",
            "LandLeaseAmountFrequency": "Monthly",
            "LandLeaseExpirationDate": "2046-11-23",
        },
        NOW,
    )
    assert lease["landType"] == "Lease"
    assert lease["landLeaseAmount"] == 350.0 and lease["landLeasePer"] == "Month"
    assert lease["landLeaseExpirationDate"] == datetime(2046, 11, 23, tzinfo=UTC)
    assert lease["landLeaseYearsRemaining"] == 20.0
    yearly = land_details({"LandType": "Lease", "LandLeaseAmountFrequency": "Annually"}, NOW)
    assert yearly == {"landType": "Lease", "landLeasePer": "Year"}
    expired = land_details({"LandLeaseYN": "Yes", "LandLeaseExpirationDate": "2020-01-01"}, NOW)
    assert expired["landLeaseYearsRemaining"] == 0.0


# -- status ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "klass"),
    [
        ("Active", "active"),
        ("Active Under Contract", "active"),
        ("Coming Soon", "active"),
        ("Pending", "active"),
        ("Closed", "closed"),
        ("Expired", "expired"),
        ("Canceled", "expired"),
        ("Cancelled", "expired"),
        ("Withdrawn", "expired"),
        ("Deleted", "deleted"),
        ("Bogus", None),
    ],
)
def test_status_classes(status, klass):
    assert status_class(status) == klass


def test_expired_listing_gets_expiry_days_on_market_and_lead_defaults():
    listing, _ = ok(
        spark_record(
            StandardStatus="Canceled",
            StatusChangeTimestamp="2026-11-01T09:30:00Z",
            OnMarketDate="2026-08-03",
            CumulativeDaysOnMarket=None,
        )
    )
    assert listing["statusClass"] == "expired"
    assert listing["statusChangeDate"] == datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    assert listing["expiresAt"] == listing["statusChangeDate"] + timedelta(days=90)
    assert isinstance(listing["expiresAt"], datetime)
    assert listing["totalDaysOnMarket"] == 90
    assert (listing["leadStatus"], listing["skipTraced"], listing["voicemailSent"], listing["emailSent"]) == (
        "new",
        False,
        False,
        False,
    )


def test_active_listing_has_no_lead_fields():
    listing, _ = ok(spark_record())
    assert "leadStatus" not in listing and "expiresAt" not in listing


# -- photos ----------------------------------------------------------------------------


def test_photos_one_document_each_with_every_size_in_order():
    _, photos = ok(spark_record(PhotosChangeTimestamp="2026-11-19T00:00:00Z"))
    first, second = photos
    assert first["order"] == 0 and second["order"] == 1
    assert first["listingKey"] == "20060412165917817933000000" and first["listingId"] == "06-1234"
    assert {k for k in first if k.startswith("uri")} == {
        "uriThumb",
        "uri300",
        "uri640",
        "uri800",
        "uri1024",
        "uri1280",
        "uri1600",
        "uri2048",
        "uriLarge",
    }
    assert first["caption"] == "Front elevation" and "caption" not in second
    assert (first["primary"], second["primary"]) == (False, True)
    assert first["modificationTimestamp"] == datetime(2026, 11, 19, tzinfo=UTC)


def test_a_photo_without_any_uri_is_skipped_with_a_warning():
    listing, photos = ok(spark_record(Photos=[{"Id": "x", "Caption": "no image"}]))
    assert photos == [] and listing["photoCount"] == 0
    assert any("no image URI" in w for w in listing["dataWarnings"])


def test_a_photo_that_breaks_the_photo_schema_rejects_its_listing_naming_the_field():
    photos = spark_record()["StandardFields"]["Photos"]
    reject = rejected(spark_record(Photos=[photos[0], {**photos[1], "Id": "p" * 201}]))
    assert reject["field"] == "1.photoId" and "at most 200 characters" in reject["reason"]


# -- content hash ----------------------------------------------------------------------


def test_content_hash_is_order_independent_and_ignores_volatile_fields():
    a = spark_record(DaysOnMarket=3)
    b = {
        "StandardFields": dict(reversed(list(spark_record(DaysOnMarket=4)["StandardFields"].items()))),
        "Id": a["Id"],
        "ResourceUri": a["ResourceUri"],
    }
    assert source_content_hash(clean(a)) == source_content_hash(clean(b))
    assert source_content_hash(clean(a)) != source_content_hash(clean(spark_record(ListPrice="50001")))
    assert ok(a)[0]["contentHash"] == ok(b)[0]["contentHash"]


# -- rejects ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"ListingKey": None}, "ListingKey"),
        ({"ListingId": None}, "ListingId"),
        ({"ModificationTimestamp": "yesterday"}, "ModificationTimestamp"),
        ({"ModificationTimestamp": None}, "ModificationTimestamp"),
        ({"ListPrice": "call agent"}, "ListPrice"),
        ({"BedsTotal": "2.5"}, "BedsTotal"),
        ({"ListPrice": float("nan")}, "ListPrice"),
        ({"ListPrice": "-5"}, "listPrice"),
        ({"StandardStatus": "Mystery"}, "StandardStatus"),
        ({"YearBuilt": 99999}, "yearBuilt"),
    ],
)
def test_unrecoverable_records_become_rejects_with_a_reason(overrides, field):
    record = spark_record(**overrides)
    if overrides.get("ListingKey", "") is None:
        record.pop("Id")
    reject = rejected(record)
    assert reject["field"] == field
    assert reject["reason"]
    assert '"StandardFields"' in reject["raw"]


def test_a_reject_keeps_the_listing_key_when_there_is_one():
    reject = rejected(spark_record(ListPrice={"amount": 1}))
    assert reject["listingKey"] == "20060412165917817933000000"
    assert reject["rejectedAt"] == NOW


def test_non_object_records_are_rejected_not_raised():
    for junk in (None, 42, "text", [1, 2], {"StandardFields": "nope"}):
        assert rejected(junk)["reason"]
