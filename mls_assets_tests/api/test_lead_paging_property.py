"""Paging the leads of several feeds equals the one-copy-per-ListingKey list computed by
brute force, whatever the duplicates, ties, filters and page sizes, and so does the export
read in chunks (Hypothesis, against the real server)."""

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mls_assets.lib.catalogue import EXPIRED
from mls_assets.lib.leads.query import LeadFilter, iter_leads, list_leads
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.tenants import FeedConfig, sync_configs

MLSS = ("aa", "bb", "cc")
BASE = datetime(2026, 11, 1, tzinfo=UTC)
lead = st.tuples(
    st.sampled_from(MLSS),
    st.sampled_from([f"K{n}" for n in range(12)]),
    st.integers(0, 5),
    st.sampled_from(["new", "contacted"]),
)


def expected(docs, status):
    best = {}
    for mls, key, day, lead_status in docs:
        if status and lead_status != status:
            continue
        rank = (-day, mls)
        if key not in best or rank < best[key][0]:
            best[key] = (rank, mls, day)
    return [(key, mls) for key, (rank, mls, day) in sorted(best.items(), key=lambda kv: (-kv[1][2], kv[0]))]


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(lead, max_size=30), st.integers(1, 7), st.sampled_from([None, "new"]))
def test_paging_equals_the_brute_force_list(mongo_db, docs, limit, status):
    sync_configs(mongo_db, [FeedConfig(tenant_id="t", mls=mls, mls_id="20190211172710340762000000") for mls in MLSS])
    unique = {(mls, key): (mls, key, day, s) for mls, key, day, s in docs}  # one document per key and feed
    for mls in MLSS:
        collection = mongo_db[EXPIRED.collection_name(FeedKey("t", mls))]
        collection.delete_many({})
        rows = [
            {
                "listingKey": key,
                "statusChangeDate": BASE + timedelta(days=day),
                "leadStatus": s,
                "standardStatus": "Expired",
            }
            for m, key, day, s in unique.values()
            if m == mls
        ]
        if rows:
            collection.insert_many(rows)
    where = LeadFilter(leadStatus=status)
    served, cursor, total = [], None, None
    while True:
        page = list_leads(mongo_db, "t", where, limit, cursor, count=cursor is None)
        total = page["total"] if cursor is None else total
        served += [(lead["listingKey"], lead["mls"]) for lead in page["leads"]]
        assert len(page["leads"]) <= limit
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert served == expected(unique.values(), status)
    assert total == len(served)
    exported = [(lead["listingKey"], lead["mls"]) for lead in iter_leads(mongo_db, "t", where, batch=limit)]
    assert exported == served  # the export, read in chunks of `limit`, lists the same leads
