"""Tenant isolation: every name derived from ids maps back to exactly one feed, and a run of
one tenant's feed changes no document of another tenant."""

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mls_assets.lib.catalogue import CRM_PROPERTIES, EVERY_FEED_COLLECTION
from mls_assets.lib.store.changes import SEQUENCES_COLLECTION, WATERMARKS_COLLECTION
from mls_assets.lib.store.cursors import CURSORS_COLLECTION
from mls_assets.lib.store.leases import LEASES_COLLECTION, feed_lease
from mls_assets.lib.store.naming import FeedKey, parse_collection, parse_tenant_collection, tenant_collection
from mls_assets.lib.tenants import CONFIGS_COLLECTION
from mls_assets.simulator import GPS_MLS_ID
from mls_assets_tests.pipeline.test_replication_chain import keys

FEED_NAMES = sorted(spec.name for spec in EVERY_FEED_COLLECTION)  # every per-feed collection the chain creates
GLOBAL = {
    CONFIGS_COLLECTION,
    CURSORS_COLLECTION,
    LEASES_COLLECTION,
    SEQUENCES_COLLECTION,
    WATERMARKS_COLLECTION,
    "alerts",
}

ids = st.one_of(
    st.from_regex(r"[a-z][a-z0-9]{0,3}(_[a-z0-9]{1,3}){0,3}", fullmatch=True),
    st.sampled_from(["a", "b", "c", "a_b", "b_c", "a_b_c", "crm", "raw", "listings", "crm_properties", "x1_2"]),
)
feeds = st.lists(st.tuples(ids, ids), min_size=2, max_size=6, unique=True).map(
    lambda pairs: [FeedKey(*p) for p in pairs]
)


def derived(feed: FeedKey) -> set[str]:
    """Every name built from a feed's ids: collections, partition key, cursor and lease ids."""
    return {
        *(f"collection:{feed.collection(name)}" for name in FEED_NAMES),
        f"partition:{feed}",
        f"cursor:{feed}",
        f"lease:{feed_lease(str(feed))}",
    }


@settings(max_examples=400, deadline=None, derandomize=True)
@given(feeds)
def test_the_names_of_two_feeds_never_meet_and_each_maps_back_to_its_feed(configured):
    tenant_names = {tenant_collection(f.tenant, CRM_PROPERTIES.name) for f in configured}
    seen: dict[str, FeedKey] = {}
    for feed in configured:
        for name in derived(feed):
            assert seen.setdefault(name, feed) == feed, f"{name} is shared by {seen[name]} and {feed}"
        for name in FEED_NAMES:
            assert parse_collection(feed.collection(name)) == (feed, name)
            assert feed.collection(name) not in tenant_names | GLOBAL
    for feed in configured:
        assert parse_tenant_collection(tenant_collection(feed.tenant, CRM_PROPERTIES.name)) == (
            feed.tenant,
            CRM_PROPERTIES.name,
        )
    assert len(tenant_names) == len({f.tenant for f in configured})


def test_names_of_ids_without_underscores_stay_as_they_are():
    assert FeedKey("jpsrealtor", "gps").collection("listings") == "jpsrealtor_gps_listings"
    assert tenant_collection("jpsrealtor", CRM_PROPERTIES.name) == "jpsrealtor_crm_properties"
    assert FeedKey("a_b", "c").collection("listings") != FeedKey("a", "b_c").collection("listings")


def test_a_run_of_one_tenants_feed_changes_no_document_of_another_tenant(pipeline, simulator, tmp_path):
    """Tenant `a_b` with MLS `c` and tenant `a` with MLS `b_c`: the names that once met."""
    feed = {"mls_id": GPS_MLS_ID, "base_url": simulator.url}
    path = tmp_path / "twins.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "tenants": [
                    {"tenant_id": "a_b", "feeds": [{"mls": "c", **feed}]},
                    {"tenant_id": "a", "feeds": [{"mls": "b_c", **feed}]},
                ]
            }
        )
    )
    pipeline.load_configs(path)
    pipeline.instance.add_dynamic_partitions("feeds", ["a_b.c", "a.b_c"])

    pipeline.sync("a_b.c")
    first = {
        name: sorted(map(repr, pipeline.database[name].find()))
        for name in pipeline.database.list_collection_names()
        if parse_collection(name) and parse_collection(name)[0] == FeedKey("a_b", "c")
    }
    assert first[FeedKey("a_b", "c").collection("listings")] and first[FeedKey("a_b", "c").collection("photos")]
    pipeline.sync("a.b_c")
    after = {name: sorted(map(repr, pipeline.database[name].find())) for name in first}
    assert after == first
    for feed_key, tenant in ((FeedKey("a_b", "c"), "a_b"), (FeedKey("a", "b_c"), "a")):
        for name in ("flattened_listings", "listings", "closed_listings", "expired_listings", "photos"):
            collection = pipeline.database[feed_key.collection(name)]
            assert collection.count_documents({}) and not collection.count_documents({"tenantId": {"$ne": tenant}})
    assert keys(pipeline.database[FeedKey("a_b", "c").collection("listings")]) == keys(
        pipeline.database[FeedKey("a", "b_c").collection("listings")]
    )  # same MLS, separate copies
