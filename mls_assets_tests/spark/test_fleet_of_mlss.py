"""A simulator for a fleet: 20 MLS ids, each served on its own by both dialects (the fleet
benchmark spreads its tenants over them)."""

from mls_assets.lib.sources import filters
from mls_assets.lib.sources.reso.client import ResoClient
from mls_assets.lib.sources.spark.client import SparkClient
from mls_assets.simulator import DEMO_TOKEN, Market, SimulatorServer
from mls_assets.simulator.market import fleet_mls_ids
from mls_assets.simulator.reso import reso_system_name
from mls_assets_tests.support.sources import ANCHOR, FAST_RETRY


def test_twenty_mls_ids_each_serve_their_own_listings_in_both_dialects():
    ids = fleet_mls_ids(20)
    assert len(set(ids)) == 20 and len({reso_system_name(i) for i in ids}) == 20
    market = Market(listings=6, seed=3, anchor=ANCHOR, mls_ids=ids)
    with SimulatorServer(market) as server:
        with (
            SparkClient(server.url, DEMO_TOKEN, retry=FAST_RETRY, timeout=5) as spark,
            ResoClient(server.reso_url, DEMO_TOKEN, retry=FAST_RETRY, timeout=5) as reso,
        ):
            for mls_id in (ids[0], ids[7], ids[19]):
                want = sorted(s.timeline.key for s in market.states() if s.timeline.mls_id == mls_id)
                assert want
                spark_keys = sorted(r["Id"] for r in spark.listings(filters.eq("MlsId", mls_id)))
                system = filters.eq("OriginatingSystemName", reso_system_name(mls_id))
                reso_keys = sorted(r["ListingKey"] for p in reso.pages("Property", system, top=50) for r in p.results)
                assert spark_keys == reso_keys == want
