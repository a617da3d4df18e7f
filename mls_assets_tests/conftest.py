"""Shared fixtures: a real MongoDB-compatible server over the wire, fresh databases, instances.

The session starts an ephemeral SecantusDB (`--storage-path :memory:`) on a free loopback
port, unless `MONGODB_URI` is set, in which case that server is used as it is. Every test
gets its own database, dropped afterwards.
"""

from __future__ import annotations

import os
import tempfile

# Step retry policies are built at import: keep their delays short in tests.
os.environ.setdefault("MLS_STEP_RETRY_DELAY_S", "0.05")
# The simulated markets live at fixed dates in the past, so their expired listings'
# expiresAt are past in real time: the server's TTL monitor would delete them at random
# moments mid-test. Tests keep the TTL index but let it fire only decades later.
os.environ.setdefault("MLS_EXPIRED_TTL_SECONDS", "2000000000")
# Tests use the bundled simulator on loopback: local mode (tests of production mode unset it).
os.environ.setdefault("MLS_LOCAL_MODE", "1")
# Re-hosted photos go to a folder of the test session, never the checkout's `.state/media/`
# (where `make run`'s demo photos are: a test purging a feed must not delete them).
os.environ.setdefault("MLS_MEDIA_DIR", tempfile.mkdtemp(prefix="mls-test-media-"))
import uuid

import dagster as dg
import pytest

from mls_assets.defs.io_manager import MongoIOManager
from mls_assets.defs.leases import LeaseResource
from mls_assets.defs.resources import MongoResource
from mls_assets.lib.store import client as mongo_client
from mls_assets.lib.store import embedded
from mls_assets_tests.support.servers import free_port, start_ephemeral_server

DEMO_FEEDS = ["jpsrealtor.gps", "jpsrealtor.crmls"]


@pytest.fixture(scope="session")
def mongo_uri():
    """URI of the test server; also exported as MONGODB_URI for code and subprocesses."""
    given = os.environ.get("MONGODB_URI")
    if given:
        yield given
        return
    port = free_port()
    process = start_ephemeral_server(port)
    uri = embedded.server_uri(port)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MONGODB_URI", uri)
        yield uri
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def mongo_db(mongo_uri):
    name = f"test_{uuid.uuid4().hex[:12]}"
    database = mongo_client.get_client(mongo_uri)[name]
    yield database
    database.client.drop_database(name)


@pytest.fixture
def mongo_resources(mongo_uri, mongo_db):
    mongo = MongoResource(uri=mongo_uri, database=mongo_db.name)
    return {"mongo": mongo, "io_manager": MongoIOManager(mongo=mongo), "leases": LeaseResource(mongo=mongo)}


@pytest.fixture
def instance():
    """An in-memory Dagster instance with the demo feeds registered. The tests' subject is the
    project, not Dagster's storage: in memory a small chain run costs a third of the CPU it costs
    on sqlite files (0.7-0.8 s against 2.1-2.3 s, most of it opening, writing and syncing the
    event log per event). Instances on disk and on Postgres are tested where they matter: the
    daemon, the webserver, runs in other processes (`deploy/`, `automation/`, `hardening/`)."""
    with dg.DagsterInstance.ephemeral() as test_instance:
        test_instance.add_dynamic_partitions("feeds", DEMO_FEEDS)
        yield test_instance
