"""The media tests' world: S3 over its real API on loopback (moto's server), and one feed
whose chain and `photo_media` run against the simulator's media host."""

import boto3
import dagster as dg
import httpx
import pytest
from moto.server import ThreadedMotoServer

from mls_assets.defs.io_manager import MongoIOManager
from mls_assets.defs.leases import LeaseResource
from mls_assets.defs.media.assets import photo_media
from mls_assets.defs.partitions import feed_day_key, range_tags
from mls_assets.defs.resources import ClockResource, MediaResource, MongoResource, SourceResource
from mls_assets.lib.catalogue import EXPIRED_PHOTOS, PHOTO_MEDIA, PHOTOS
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.tenants import load_feeds, sync_configs
from mls_assets.simulator import GPS_MLS_ID
from mls_assets_tests.support.chain import CHAIN
from mls_assets_tests.support.servers import free_port

S3_SECRET = "wJalrXUtnFEMI-not-a-real-secret"
BUCKET = "photos"


@pytest.fixture
def s3(monkeypatch):
    """moto's S3 API on a loopback port, with a bucket `photos`; its URL."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        httpx.post(f"{url}/moto-api/reset").raise_for_status()  # moto's state is per process, not per server
        boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield url
    finally:
        server.stop()


def s3_keys(url: str) -> set[str]:
    """Every object key in the bucket, read through the S3 API (not through our code)."""
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    keys: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        keys.update(item["Key"] for item in page.get("Contents", []))
    return keys


def s3_options(url: str) -> dict:
    """`MediaResource` fields for the moto bucket, under prefix `m`, served from a CDN URL."""
    return {
        "bucket": BUCKET,
        "prefix": "m",
        "endpoint": url,
        "region": "us-east-1",
        "public_url": "https://cdn.example.test/m",
        "workers": 4,
    }


FEED = "jpsrealtor.gps"
KEY = FeedKey.parse(FEED)


def feed_on(database, server, tmp_path, monkeypatch) -> None:
    """FEED configured on `server` (its tenants file and its config document)."""
    path = tmp_path / "tenants.yaml"
    path.write_text(
        "tenants:\n  - tenant_id: jpsrealtor\n    feeds:\n      - mls: gps\n"
        f"        mls_id: '{GPS_MLS_ID}'\n        base_url: {server.url}\n        token_env: UNSET_TOKEN_VAR\n"
    )
    monkeypatch.setenv("MLS_TENANTS_FILE", str(path))
    sync_configs(database, load_feeds(path))


class MediaWorld:
    """One feed on a simulator that serves its photos, a database, an instance and a media
    storage (`media_options`: `MediaResource`'s fields)."""

    def __init__(self, market, server, database, mongo_uri, instance, media_options: dict):
        self.market, self.server, self.database, self.instance = market, server, database, instance
        self.mongo = MongoResource(uri=mongo_uri, database=database.name)
        self.media_options = dict(media_options)

    def resources(self, now=None) -> dict:
        return {
            "mongo": self.mongo,
            "io_manager": MongoIOManager(mongo=self.mongo),
            "source": SourceResource(retry_floor_s=0.01, retry_cap_s=0.05, timeout_s=10),
            "clock": ClockResource(fixed_now=(now or self.market.now).isoformat()),
            "leases": LeaseResource(mongo=self.mongo, wait_s=60),
            "media": MediaResource(**self.media_options),
        }

    def sync(self) -> None:
        self._materialize(CHAIN)

    def rehost(self, now=None, through: str | None = None) -> dg.ExecuteInProcessResult:
        """A media run of FEED's day, or of the feeds FEED..`through` (a shared run)."""
        return self._materialize([*CHAIN, photo_media], now, selection=[photo_media], through=through)

    def _materialize(self, assets, now=None, selection=None, through=None) -> dg.ExecuteInProcessResult:
        day = self.market.now.date().isoformat()
        where = (
            {"tags": range_tags(FEED, day, day, last_feed=through)}
            if through
            else {"partition_key": str(feed_day_key(FEED, day))}
        )
        result = dg.materialize(
            assets, instance=self.instance, resources=self.resources(now), selection=selection, **where
        )
        assert result.success
        return result

    def photos(self) -> list[dict]:
        return [d for spec in (PHOTOS, EXPIRED_PHOTOS) for d in self.database[spec.collection_name(KEY)].find()]

    def states(self) -> dict[str, dict]:
        return {d["_id"]: d for d in self.database[PHOTO_MEDIA.collection_name(KEY)].find()}

    def referenced_keys(self) -> set[str]:
        return {v["key"] for s in self.states().values() for v in (s.get("variants") or {}).values()}

    def stored(self) -> set[str]:
        """The keys in the bucket, read through the S3 API itself."""
        return {key.removeprefix("m/") for key in s3_keys(self.media_options["endpoint"])}


def media_figures(result: dg.ExecuteInProcessResult) -> dict:
    """The `photo_media` materialization's metadata, as plain values (a run over several
    partitions records the same on each)."""
    materialization = result.asset_materializations_for_node("photo_media")[0]
    return {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
