"""The replication chain against the real server and the simulator over HTTP."""

from datetime import UTC, datetime

import dagster as dg
import pytest
import yaml

from mls_assets.defs.crm.assets import crm_linked_properties
from mls_assets.defs.io_manager import MongoIOManager
from mls_assets.defs.leases import LeaseResource
from mls_assets.defs.listings.assets import flattened_listings, raw_listings
from mls_assets.defs.partitions import feed_day_key
from mls_assets.defs.photos.assets import photo_collections
from mls_assets.defs.resources import ClockResource, MongoResource, SourceResource
from mls_assets.defs.status.assets import status_collections
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.tenants import load_feeds, sync_configs
from mls_assets.simulator import CRMLS_MLS_ID, GPS_MLS_ID, Market, SimulatorServer

# Well in the past: Dagster only knows day partitions up to the real today.
ANCHOR = datetime(2026, 6, 1, 12, tzinfo=UTC)
CHAIN = [raw_listings, flattened_listings, status_collections, photo_collections, crm_linked_properties]
FEEDS = ["jpsrealtor.gps", "jpsrealtor.crmls", "otheragent.gps"]


@pytest.fixture
def market():
    return Market(listings=70, seed=21, anchor=ANCHOR, bad_record_rate=0.04)


@pytest.fixture
def simulator(market):
    with SimulatorServer(market) as server:
        yield server


@pytest.fixture
def tenants_file(tmp_path, simulator, monkeypatch):
    feed = lambda mls, mls_id: {
        "mls": mls,
        "mls_id": mls_id,
        "base_url": simulator.url,
        "token_env": "SPARK_TOKEN_TEST_UNSET",
    }
    document = {
        "tenants": [
            {"tenant_id": "jpsrealtor", "feeds": [feed("gps", GPS_MLS_ID), feed("crmls", CRMLS_MLS_ID)]},
            {"tenant_id": "otheragent", "feeds": [feed("gps", GPS_MLS_ID)]},
        ]
    }
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump(document))
    monkeypatch.setenv("MLS_TENANTS_FILE", str(path))
    monkeypatch.delenv("SPARK_TOKEN_TEST_UNSET", raising=False)
    return path


class Pipeline:
    """Runs the chain for a feed-day with the clock where the simulator's is."""

    def __init__(self, market, database, mongo_uri, instance, **mongo):
        self.market, self.database, self.instance = market, database, instance
        self.mongo = MongoResource(uri=mongo_uri, database=database.name, **mongo)

    def resources(self, **spark) -> dict:
        spark = {"retry_floor_s": 0.01, "retry_cap_s": 0.05, "timeout_s": 10, **spark}
        return {
            "mongo": self.mongo,
            "io_manager": MongoIOManager(mongo=self.mongo),
            "source": SourceResource(**spark),
            "clock": ClockResource(fixed_now=self.market.now.isoformat()),
            "leases": LeaseResource(mongo=self.mongo, wait_s=120),
        }

    def sync(self, feed: str, day: str | None = None, assets=CHAIN, **spark) -> dg.ExecuteInProcessResult:
        day = day or self.market.now.date().isoformat()
        result = dg.materialize(
            assets,
            instance=self.instance,
            resources=self.resources(**spark),
            partition_key=str(feed_day_key(feed, day)),
            tags={"mls/feed": feed},
        )
        assert result.success
        return result

    def backfill(self, feed: str, first_day: str, last_day: str) -> dg.ExecuteInProcessResult:
        """A date window of one feed as one run (what a single-run backfill launches)."""
        tags = {
            "dagster/asset_partition_range_start": str(feed_day_key(feed, first_day)),
            "dagster/asset_partition_range_end": str(feed_day_key(feed, last_day)),
            "mls/feed": feed,
        }
        result = dg.materialize(CHAIN, instance=self.instance, resources=self.resources(), tags=tags)
        assert result.success
        return result

    def collection(self, feed: str, name: str):
        return self.database[FeedKey.parse(feed).collection(name)]

    def load_configs(self, path) -> None:
        """The tenants file into `agent_mls_configs`, as feed discovery does."""
        sync_configs(self.database, load_feeds(path))


@pytest.fixture
def pipeline(market, mongo_db, mongo_uri, tenants_file):
    sync_configs(mongo_db, load_feeds(tenants_file))
    with dg.DagsterInstance.ephemeral() as instance:  # in memory: see conftest's `instance`
        instance.add_dynamic_partitions("feeds", FEEDS)
        yield Pipeline(market, mongo_db, mongo_uri, instance)
