"""Property test: hostile records always come out flattened or rejected with a reason."""

import json
from datetime import UTC, datetime

import bson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mls_assets.lib.tenants import FeedConfig
from mls_assets.lib.transform import transform_records
from mls_assets.lib.transform.fields import NUMERIC_FIELDS, REQUIRED_FIELDS, TEMPORAL_FIELDS

FEED = FeedConfig(tenant_id="jpsrealtor", mls="crmls", mls_id="20200218121507636729000000")
NOW = datetime(2026, 11, 23, tzinfo=UTC)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.integers(min_value=60_000, max_value=200_000).map(lambda n: "x" * n),  # huge strings
    st.just("********"),
    st.just(" -116.3237"),
    st.just("50000.0"),
    st.just("2026-13-45"),
    st.just("2026-11-20T25:61:00Z"),
    st.just("0001-01-01T00:00:00+14:00"),
    st.just("NaN"),
    st.just("\ud800"),
    st.just("ключ 🏠"),
)
nested = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=25,
)
field_names = st.sampled_from(
    sorted(REQUIRED_FIELDS)
    + sorted(NUMERIC_FIELDS)[:12]
    + sorted(TEMPORAL_FIELDS)[:8]
    + ["Photos", "PoolFeatures", "UnparsedAddress", "$where", "", "a.b", "Ünïcødé"]
) | st.text(max_size=12)
valid_base = {
    "ListingKey": "K1",
    "ListingId": "L1",
    "StandardStatus": "Active",
    "ModificationTimestamp": "2026-11-20T00:00:00Z",
}


def deep(depth: int):
    value = {"ListPrice": 1}
    for _ in range(depth):
        value = {"Nested": value}
    return value


standard_fields = st.one_of(
    st.dictionaries(field_names, nested, max_size=12),
    st.dictionaries(field_names, nested, max_size=8).map(lambda extra: {**valid_base, **extra}),
    st.integers(min_value=20, max_value=400).map(lambda d: {**valid_base, "Rooms": deep(d)}),
)
records = st.one_of(
    standard_fields.map(lambda fields: {"Id": "X", "StandardFields": fields}),
    standard_fields,
    nested,
)


# derandomize: CI sees the same 1,200 examples every run (explore with --hypothesis-seed locally)
@settings(max_examples=1200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, min_size=1, max_size=3))
def test_every_hostile_record_is_flattened_or_rejected_with_a_reason(batch):
    results = list(transform_records(iter(batch), FEED, NOW))
    assert len(results) == len(batch)
    for result in results:
        assert (result.listing is None) != (result.reject is None)
        if result.reject is not None:
            reason = result.reject["reason"]
            assert reason and not reason.startswith("internal error"), reason
            json.dumps(result.reject, default=str)
            bson.encode(result.reject)  # always storable in the rejects collection
        else:
            assert result.listing["listingKey"] and result.listing["contentHash"]
            bson.encode(result.listing)  # storable as it is
            for photo in result.photos:
                bson.encode(photo)
