"""One feed model: the tenants file's entry (field names) and the stored `mlsConfigs` entry
(serialization aliases) are the same `FeedConfig`, whatever its settings."""

from hypothesis import given
from hypothesis import strategies as st

from mls_assets.lib.tenants import STORED_NAMES, FeedConfig, config_document, from_document

ids = st.from_regex(r"[a-z][a-z0-9]{0,11}", fullmatch=True)
feeds = st.builds(
    FeedConfig,
    tenant_id=ids,
    mls=ids,
    provider=st.just("spark"),
    mls_id=st.from_regex(r"\d{26}", fullmatch=True),
    region=st.none() | st.text(max_size=20),
    base_url=st.none() | st.just("https://replication.sparkapi.com/v1"),
    token_env=st.from_regex(r"[A-Z][A-Z0-9_]{0,20}", fullmatch=True),
    property_types=st.lists(st.sampled_from("ABCDE"), min_size=1, max_size=3, unique=True).map(tuple),
    enabled=st.booleans(),
    sync_schedule=st.none() | st.just("15 3 * * *"),
    max_listings=st.none() | st.integers(0, 10**6),
    enforce_quota=st.booleans(),
    token_ciphertext=st.none() | st.text(alphabet="abcdef0123456789", min_size=8, max_size=16),
    managed_by=st.sampled_from(["file", "command"]),
)


@given(feeds, st.integers(0, 10**6))
def test_a_feed_is_stored_and_read_back_unchanged(feed, listings):
    stored = config_document(feed)
    stored |= {"currentListings": listings, "lastSyncedAt": "2026-12-01"}  # the pipeline's own keys
    assert from_document(feed.tenant_id, stored) == feed
    assert stored.get("tokenCiphertext") == feed.token_ciphertext
    assert (stored["provider"], stored["apiProvider"], stored["syncEnabled"]) == (feed.mls, "spark", feed.enabled)


def test_every_setting_has_one_stored_name():
    assert len(set(STORED_NAMES)) == len(FeedConfig.model_fields)
    assert STORED_NAMES["provider"] == "mls" and STORED_NAMES["apiProvider"] == "provider"


def test_a_feed_stored_before_sync_enabled_existed_follows_active():
    stored = config_document(FeedConfig(tenant_id="t", mls="gps", mls_id="2" * 26))
    del stored["syncEnabled"]
    stored["active"] = False
    assert from_document("t", stored).enabled is False
