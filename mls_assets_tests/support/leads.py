"""The leads API served for real: uvicorn on a loopback port, in a thread, on the test
MongoDB server."""

import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn

from mls_assets.api.app import create_app
from mls_assets.lib.catalogue import EXPIRED, EXPIRED_PHOTOS, ensure_feed_collections
from mls_assets.lib.leads.keys import create_key
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.tenants import FeedConfig, sync_configs
from mls_assets.lib.transform.fields import LEAD_FIELD_DEFAULTS
from mls_assets_tests.support.servers import free_port

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
ALPHA_GPS, ALPHA_CRMLS, BETA_GPS = FeedKey("alpha", "gps"), FeedKey("alpha", "crmls"), FeedKey("beta", "gps")


def expired_doc(key: str, days_ago: float, *, status: str = "Expired", city: str = "Irvine", **extra) -> dict:
    changed = NOW - timedelta(days=days_ago)
    return {
        "listingKey": key,
        "listingId": f"ID{key}",
        "standardStatus": status,
        "city": city,
        "modificationTimestamp": changed,
        "statusChangeDate": changed,
        "expiresAt": changed + timedelta(days=90),
        "listPrice": 500_000,
        "unparsedAddress": f"1 {key} St, {city}, CA",
        **LEAD_FIELD_DEFAULTS,
        **extra,
    }


def photo_docs(key: str, count: int) -> list[dict]:
    return [
        {
            "_id": f"{key}-p{n}",
            "photoId": f"{key}-p{n}",
            "listingKey": key,
            "order": n,
            "uri640": f"https://cdn.example/{key}/{n}.jpg",
        }
        for n in reversed(range(count))
    ]


class ServedApi:
    def __init__(self, database):
        self.database = database
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(create_app(lambda: database), host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:  # readiness, not timing: the server says when it listens
            assert self.thread.is_alive() and time.monotonic() < deadline, "the API did not start"
            time.sleep(0.01)
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def leads_db(mongo_db):
    """Tenant alpha on GPS and CRMLS, tenant beta on GPS, with expired listings and photos."""
    sync_configs(
        mongo_db,
        [
            FeedConfig(tenant_id="alpha", mls="gps", mls_id="20190211172710340762000000"),
            FeedConfig(tenant_id="alpha", mls="crmls", mls_id="20200630203341057545000000"),
            FeedConfig(tenant_id="beta", mls="gps", mls_id="20190211172710340762000000"),
        ],
    )
    for feed in (ALPHA_GPS, ALPHA_CRMLS, BETA_GPS):
        ensure_feed_collections(mongo_db, feed)
    gps = [
        expired_doc("A1", 1),
        expired_doc("A2", 2, status="Canceled"),
        expired_doc("A3", 3, city="Tustin"),
        expired_doc("A4", 4, leadStatus="contacted"),
        expired_doc("DUP", 5),
    ]
    crmls = [
        expired_doc("C1", 1.5, status="Cancelled"),
        expired_doc("C2", 6, status="Withdrawn"),
        expired_doc("DUP", 5.5),
    ]  # the same listing in both MLSs: the newer copy (GPS) is the lead
    mongo_db[EXPIRED.collection_name(ALPHA_GPS)].insert_many(gps)
    mongo_db[EXPIRED.collection_name(ALPHA_CRMLS)].insert_many(crmls)
    mongo_db[EXPIRED.collection_name(BETA_GPS)].insert_many([expired_doc("B1", 1), expired_doc("A1", 0.5)])
    mongo_db[EXPIRED_PHOTOS.collection_name(ALPHA_GPS)].insert_many(photo_docs("A1", 3))
    mongo_db[EXPIRED_PHOTOS.collection_name(BETA_GPS)].insert_many(photo_docs("A1", 1))
    return mongo_db


@pytest.fixture
def api(leads_db):
    with ServedApi(leads_db) as client:
        yield client


@pytest.fixture
def alpha_key(leads_db):
    token, _ = create_key(leads_db, "alpha", "alpha crm")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def beta_key(leads_db):
    token, _ = create_key(leads_db, "beta", "beta crm")
    return {"Authorization": f"Bearer {token}"}
