"""Pure code: OData filter text, RESO records in the raw shape, a RESO feed's config."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from mls_assets.lib.sources import filters
from mls_assets.lib.sources.reso import odata
from mls_assets.lib.sources.reso.records import is_deletion, to_raw
from mls_assets.lib.tenants import FeedConfig, config_document, from_document
from mls_assets.lib.transform.batch import transform_record
from mls_assets.lib.transform.screen import listing_key

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)

values = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
    st.integers(-(10**9), 10**9),
    st.booleans(),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)).map(
        lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
    ),
)
fields = st.sampled_from(["ListingKey", "StandardStatus", "ModificationTimestamp", "City", "MlgCanView"])
ops = st.sampled_from([filters.eq, filters.ne, filters.gt, filters.ge, filters.lt, filters.le])
comparisons = st.builds(lambda op, field, value: op(field, value), ops, fields, values)
trees = st.recursive(
    comparisons,
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(lambda parts: filters.And(tuple(parts))),
        st.lists(inner, min_size=2, max_size=3).map(lambda parts: filters.Or(tuple(parts))),
        inner.map(filters.Not),
    ),
    max_leaves=8,
)


def _flat(node):
    """And/Or nested in the same kind parse back flattened: compare that way."""
    if isinstance(node, filters.And | filters.Or):
        parts = []
        for part in map(_flat, node.parts):
            parts.extend(part.parts if type(part) is type(node) else [part])
        return type(node)(tuple(parts))
    if isinstance(node, filters.Not):
        return filters.Not(_flat(node.part))
    return node


@given(trees)
def test_any_filter_rendered_as_odata_parses_back_to_itself(tree):
    assert _flat(odata.parse(odata.render(tree))) == _flat(tree)


def test_odata_text_is_the_mls_grid_dialect():
    text = odata.render(
        filters.all_of(
            filters.eq("OriginatingSystemName", "o'brien"),
            filters.one_of("PropertyType", ["Residential", "Land"]),
            filters.gt("ModificationTimestamp", datetime(2026, 11, 1, tzinfo=UTC)),
        )
    )
    assert text == (
        "OriginatingSystemName eq 'o''brien' and (PropertyType eq 'Residential' or PropertyType eq "
        "'Land') and ModificationTimestamp gt 2026-11-01T00:00:00.000Z"
    )
    with pytest.raises(odata.ODataSyntaxError):
        odata.parse("City eq")


def test_a_reso_record_becomes_the_raw_shape_that_flattens_like_a_spark_record():
    reso = {
        "@odata.id": "Property('K1')",
        "ListingKey": "K1",
        "ListingId": "L1",
        "StandardStatus": "Active",
        "ModificationTimestamp": "2026-11-20T10:00:00.000Z",
        "ListPrice": 500000,
        "BedroomsTotal": 3,
        "PoolFeatures": ["Pool", "Spa"],
        "MlgCanView": True,
        "MlgCanUse": ["IDX"],
        "Media": [
            {"MediaKey": "M2", "MediaURL": "https://media.example/2.jpg", "Order": 2},
            {"MediaKey": "V", "MediaURL": "https://media.example/v.mp4", "MediaCategory": "Video"},
            {"MediaKey": "M1", "MediaURL": "https://media.example/1.jpg", "Order": 1, "ShortDescription": "Front"},
        ],
    }
    raw = to_raw(reso)
    fields = raw["StandardFields"]
    assert raw["Id"] == "K1" and listing_key(raw) == "K1"
    assert {"@odata.id", "MlgCanView", "MlgCanUse", "Media", "BedroomsTotal"}.isdisjoint(fields)
    assert fields["BedsTotal"] == 3 and fields["PoolFeatures"] == {"Pool": True, "Spa": True}
    assert [(p["Id"], p["Primary"]) for p in fields["Photos"]] == [("M1", True), ("M2", False)]  # photos only, in Order
    result = transform_record(raw, FeedConfig(tenant_id="t", mls="gps", provider="reso", mls_id="gpsmls"), NOW)
    assert result.reject is None
    listing = result.listing
    assert (listing["poolFeatures"], listing["bedsTotal"], listing["photoCount"]) == ("Pool, Spa", 3, 2)
    assert listing["primaryPhotoUrl"] == "https://media.example/1.jpg"
    assert [p["caption"] for p in result.photos if "caption" in p] == ["Front"]


def test_only_mlgcanview_false_is_a_deletion_and_what_is_not_an_object_passes_on_to_the_screen():
    assert is_deletion({"ListingKey": "K", "MlgCanView": False})
    assert not is_deletion({"ListingKey": "K", "MlgCanView": True}) and not is_deletion({"ListingKey": "K"})
    assert to_raw("listing unavailable") == "listing unavailable"
    assert "Id" not in to_raw({"ListingKey": {"$gt": ""}})  # an unusable key never falls back to anything


def test_a_reso_feed_names_its_mls_its_way_and_gets_mls_grids_limits():
    feed = FeedConfig(tenant_id="t", mls="actris", provider="reso", mls_id="actris", rate_limit={"concurrent_pulls": 2})
    limit = feed.rate_limit
    assert (limit.requests, limit.per_seconds, limit.windows(), limit.bytes_per_hour) == (
        2,
        1.0,
        [(7200, 3600.0), (40000, 86400.0)],
        4e9,
    )
    assert limit.concurrent_pulls == 2
    assert from_document("t", config_document(feed)) == feed  # stored and read back unchanged
    spark = FeedConfig(tenant_id="t", mls="gps", mls_id="20190211172710340762000000")
    assert spark.provider == "spark" and (spark.rate_limit.requests, spark.rate_limit.windows()) == (1500, [])
    with pytest.raises(ValidationError, match="not Spark's 26-digit MlsId"):
        FeedConfig(tenant_id="t", mls="gps", mls_id="actris")
    with pytest.raises(ValidationError, match="not the OriginatingSystemName"):
        FeedConfig(tenant_id="t", mls="gps", provider="reso", mls_id="a b")
    with pytest.raises(ValidationError, match="unknown provider 'rets'"):
        FeedConfig(tenant_id="t", mls="gps", provider="rets", mls_id="actris")


def test_status_enumeration_names_read_like_the_spelled_statuses():
    raw = to_raw({"ListingKey": "K", "StandardStatus": "ActiveUnderContract", "MlsStatus": "ComingSoon"})
    assert (raw["StandardFields"]["StandardStatus"], raw["StandardFields"]["MlsStatus"]) == (
        "Active Under Contract",
        "Coming Soon",
    )
    from mls_assets.lib.replication.window import EVERYTHING
    from mls_assets.lib.sources.reso.provider import listings_filter

    feed = FeedConfig(tenant_id="t", mls="gps", provider="reso", mls_id="gpsmls")
    text = odata.render(listings_filter(feed, EVERYTHING, statuses=("Active", "Active Under Contract")))
    assert "StandardStatus eq 'Active Under Contract' or StandardStatus eq 'ActiveUnderContract'" in text
