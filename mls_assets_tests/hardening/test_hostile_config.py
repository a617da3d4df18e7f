"""Hostile configuration: each bad entry, file, URL, variable or server gets one clear line
and writes nothing; a bad feed never stops the good ones."""

from datetime import UTC, datetime

import dagster as dg
import httpx
import pytest
import yaml

from mls_assets.defs.automation.sensors import nightly_sync_sensor
from mls_assets.defs.feeds.sensors import feed_discovery_sensor
from mls_assets.defs.io_manager import MongoIOManager
from mls_assets.defs.leases import LeaseResource
from mls_assets.defs.listings.assets import raw_listings
from mls_assets.defs.resources import ClockResource, MongoResource, SourceResource
from mls_assets.lib.endpoint_policy import EndpointRefused, check_endpoint
from mls_assets.lib.store import embedded
from mls_assets.lib.tenants import (
    CONFIGS_COLLECTION,
    TenantsFileError,
    parse_tenants,
    read_feeds,
    sync_configs,
)
from mls_assets.simulator import GPS_MLS_ID
from mls_assets_tests.support.chain import CHAIN
from mls_assets_tests.support.servers import free_port

CRMLS_ID = "20200218121507636729000000"


def feed(mls="gps", **extra) -> dict:
    return {"mls": mls, "mls_id": GPS_MLS_ID if mls == "gps" else CRMLS_ID, **extra}


def document(*tenants) -> bytes:
    return yaml.safe_dump({"tenants": list(tenants)}).encode()


def one_line(text: str) -> str:
    assert text and "\n" not in text, text
    return text


@pytest.mark.parametrize("bad", ["../x", "a.b", "$where", "ünï", "a" * 300, "Caps", "a__b", "a_", "_a", "", "9lives"])
def test_an_invalid_tenant_or_mls_id_is_refused_and_the_other_feeds_load(bad, mongo_db):
    loaded = parse_tenants(
        document({"tenant_id": bad, "feeds": [feed()]}, {"tenant_id": "good", "feeds": [feed(), feed(mls=bad)]})
    )
    assert [str(f.key) for f in loaded.feeds] == ["good.gps"]
    assert len(loaded.problems) == 2
    for problem in loaded.problems:
        assert "invalid" in one_line(str(problem)) and "id" in str(problem)
    sync_configs(mongo_db, loaded.feeds, loaded.problems)
    assert [d["tenantId"] for d in mongo_db[CONFIGS_COLLECTION].find()] == ["good"]  # nothing for the bad one


def test_a_feed_declared_twice_is_refused_both_times_and_keeps_its_stored_config(mongo_db):
    first = parse_tenants(document({"tenant_id": "t", "feeds": [feed(), feed(mls="crmls")]}))
    sync_configs(mongo_db, first.feeds, first.problems)
    twice = parse_tenants(
        document({"tenant_id": "t", "feeds": [feed(enabled=False), feed(mls="crmls"), feed(sync_schedule="5 5 * * *")]})
    )
    assert [str(f.key) for f in twice.feeds] == ["t.crmls"]
    assert [p.feed for p in twice.problems] == ["t.gps"] and "declared twice" in one_line(str(twice.problems[0]))
    sync_configs(mongo_db, twice.feeds, twice.problems)
    stored = {str(f.key): f for f in read_feeds(mongo_db).feeds}
    assert set(stored) == {"t.gps", "t.crmls"} and stored["t.gps"].enabled  # the old config stands
    assert mongo_db[CONFIGS_COLLECTION].find_one({"tenantId": "t"})["configProblems"] == [str(twice.problems[0])]


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"mls": "gps"}, "mls_id: Field required"),
        (feed(rate_limit={"requests": "lots"}), "rate_limit.requests"),
        (feed(enabled="maybe"), "enabled"),
        (feed(property_types=5), "property_types"),
        (feed(colour="blue"), "colour: Extra inputs are not permitted"),
        (feed(mls_id="123"), "mls_id"),
        (feed(token_env="lower-case"), "token_env"),
        (feed(sync_schedule="61 * * * *"), "not a valid 5-field cron"),
        (feed(sync_schedule="a b c d e"), "not a valid 5-field cron"),
        (feed(sync_schedule="* * *"), "not a valid 5-field cron"),
        ("gps", "a feed is a mapping"),
    ],
)
def test_a_missing_or_mistyped_field_refuses_that_feed_alone(entry, words):
    loaded = parse_tenants(document({"tenant_id": "t", "feeds": [entry, feed(mls="crmls")]}))
    assert [str(f.key) for f in loaded.feeds] == ["t.crmls"]
    (problem,) = loaded.problems
    assert words in one_line(str(problem)) and str(problem).startswith("tenants[0].feeds[0]")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (b"- just\n- a list\n", "must be a mapping"),
        (b"42\n", "must be a mapping"),
        (b"tenants: [unclosed\n", "not valid YAML"),
        (b"tenants: {a: 1}\n", "'tenants' must be a list"),
        (b"tenants: []\nextra: 1\n", "must be a mapping with one key"),
        (
            b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\ntenants: [*c]\n",
            "YAML aliases (*name) are not allowed",
        ),
        (b"tenants: []\n" + b"#" * (1024 * 1024 + 1), "larger than"),
    ],
)
def test_a_file_that_cannot_be_read_as_a_whole_is_refused_in_one_line(text, words):
    with pytest.raises(TenantsFileError) as refused:
        parse_tenants(text)
    assert words in one_line(str(refused.value))


def test_a_refused_file_changes_nothing_and_the_sensor_says_so(tmp_path, monkeypatch, mongo_resources, mongo_db):
    tenants = tmp_path / "tenants.yaml"
    monkeypatch.setenv("MLS_TENANTS_FILE", str(tenants))
    tenants.write_bytes(document({"tenant_id": "t", "feeds": [feed()]}))
    with dg.DagsterInstance.ephemeral() as instance:
        with dg.build_sensor_context(instance=instance, resources=mongo_resources) as context:
            first = feed_discovery_sensor(context)
        instance.add_dynamic_partitions("feeds", ["t.gps"])
        tenants.write_bytes(b"a: &a [1]\ntenants: *a\n")
        with dg.build_sensor_context(instance=instance, resources=mongo_resources, cursor=first.cursor) as context:
            second = feed_discovery_sensor(context)
    assert not second.dynamic_partitions_requests
    assert "tenants file refused" in second.skip_reason.skip_message
    assert [str(f.key) for f in read_feeds(mongo_db).feeds] == ["t.gps"]


def test_a_file_mixing_invalid_feeds_with_valid_ones_still_registers_the_valid_ones(
    tmp_path, monkeypatch, mongo_resources, mongo_db
):
    tenants = tmp_path / "tenants.yaml"
    monkeypatch.setenv("MLS_TENANTS_FILE", str(tenants))
    tenants.write_bytes(
        document(
            {"tenant_id": "good", "feeds": [feed(), feed(mls="crmls", sync_schedule="61 * * * *")]},
            {"tenant_id": "../evil", "feeds": [feed()]},
            {"tenant_id": "meta", "feeds": [feed(base_url="http://169.254.169.254/")]},
        )
    )
    with dg.DagsterInstance.ephemeral() as instance:
        with dg.build_sensor_context(instance=instance, resources=mongo_resources) as context:
            result = feed_discovery_sensor(context)
    (request,) = result.dynamic_partitions_requests
    assert list(request.partition_keys) == ["good.gps"]
    assert [str(f.key) for f in read_feeds(mongo_db).feeds] == ["good.gps"]
    assert not [n for n in mongo_db.list_collection_names() if n.startswith(("meta", "evil", "good_crmls"))]


def test_a_bad_cron_edited_into_mongodb_skips_that_feed_and_every_other_feed_still_runs(mongo_resources, mongo_db):
    loaded = parse_tenants(
        document(
            {"tenant_id": "t", "feeds": [feed(sync_schedule="* * * * *"), feed(mls="crmls", sync_schedule="* * * * *")]}
        )
    )
    sync_configs(mongo_db, loaded.feeds)
    mongo_db[CONFIGS_COLLECTION].update_one(
        {"tenantId": "t", "mlsConfigs.provider": "gps"}, {"$set": {"mlsConfigs.$.syncSchedule": "61 * * * *"}}
    )
    with dg.DagsterInstance.ephemeral() as instance:
        with dg.build_sensor_context(
            instance=instance, resources=mongo_resources, cursor="2026-01-01T00:00:00+00:00"
        ) as context:
            result = nightly_sync_sensor(context)
    assert [r.tags["mls/feed"] for r in result.run_requests] == ["t.crmls"]
    (problem,) = read_feeds(mongo_db).problems
    assert problem.feed == "t.gps" and "cron" in one_line(str(problem))


# -- where a token may go ---------------------------------------------------------------

REFUSED_EVERYWHERE = [
    "http://169.254.169.254/",
    "https://169.254.169.254/latest",
    "file:///etc/passwd",
    "https://10.0.0.5/v1",
    "https://192.168.1.2/v1",
    "https://[fe80::1]/v1",
    "https://[::ffff:169.254.169.254]/v1",
    "ftp://replication.sparkapi.com/v1",
    "https://user:secret@replication.sparkapi.com/v1",
    "https://evil.example.com/v1",
    "http://replication.sparkapi.com/v1",
    "https://0.0.0.0/v1",
    "not a url",
]


@pytest.mark.parametrize("url", REFUSED_EVERYWHERE)
@pytest.mark.parametrize("local", [False, True])
def test_a_token_is_never_sent_to_a_host_off_the_allow_list(url, local):
    with pytest.raises(EndpointRefused) as refused:
        check_endpoint(url, local=local)
    assert "secret" not in one_line(str(refused.value))


def test_loopback_is_allowed_only_in_local_mode_and_the_spark_host_always():
    assert check_endpoint("http://127.0.0.1:8765/v1", local=True)
    with pytest.raises(EndpointRefused, match="loopback"):
        check_endpoint("http://127.0.0.1:8765/v1", local=False)
    assert check_endpoint("https://replication.sparkapi.com/v1", local=False)


def test_the_allow_list_is_configurable(monkeypatch):
    monkeypatch.setenv("MLS_ALLOWED_API_HOSTS", "*.mls.example.org")
    assert check_endpoint("https://api.mls.example.org/v1", local=False)
    with pytest.raises(EndpointRefused):
        check_endpoint("https://replication.sparkapi.com/v1", local=False)


# -- a run with a bad setting fails in one line, before any request or write ------------


@pytest.fixture
def no_requests(monkeypatch):
    """Fails the test if anything is sent over HTTP."""
    sent = []

    def refuse(self, request, **kwargs):
        sent.append(str(request.url))
        raise AssertionError(f"a request was sent to {request.url}")

    monkeypatch.setattr(httpx.Client, "send", refuse)
    return sent


def run_raw(mongo: MongoResource, spark: SourceResource, partition_key: str, feeds=("t.gps",), assets=(raw_listings,)):
    """`assets` (the pull alone unless told) for one partition, on a fresh instance."""
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("feeds", list(feeds))
        return dg.materialize(
            list(assets),
            instance=instance,
            partition_key=partition_key,
            raise_on_error=False,
            resources={
                "mongo": mongo,
                "source": spark,
                "leases": LeaseResource(mongo=mongo),
                "io_manager": MongoIOManager(mongo=mongo),
                "clock": ClockResource(),
            },
        )


def failure_of(result) -> str:
    assert not result.success
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_RESTARTED]
    failure = next(e for e in result.all_events if e.is_step_failure)
    return one_line(failure.step_failure_data.error.message.strip().splitlines()[-1])


def feed_collections(database) -> list[str]:
    return [n for n in database.list_collection_names() if n.startswith("t_")]


def configure(mongo_db, **extra) -> None:
    loaded = parse_tenants(document({"tenant_id": "t", "feeds": [feed(**extra)]}))
    assert not loaded.problems, loaded.problems
    sync_configs(mongo_db, loaded.feeds)


TODAY = datetime.now(UTC).date().isoformat()


def test_production_without_a_base_url_refuses_to_use_the_simulator(monkeypatch, mongo_uri, mongo_db, no_requests):
    configure(mongo_db)
    monkeypatch.setenv("MLS_LOCAL_MODE", "0")
    monkeypatch.delenv("SPARK_API_BASE_URL", raising=False)
    result = run_raw(MongoResource(uri=mongo_uri, database=mongo_db.name), SourceResource(), f"{TODAY}|t.gps")
    assert "has no base URL" in failure_of(result) and "local mode" in failure_of(result)
    assert not feed_collections(mongo_db) and not no_requests


def test_production_refuses_an_endpoint_edited_into_mongodb(monkeypatch, mongo_uri, mongo_db, no_requests):
    configure(mongo_db, base_url="https://replication.sparkapi.com/v1")
    mongo_db[CONFIGS_COLLECTION].update_one(
        {"tenantId": "t"}, {"$set": {"mlsConfigs.0.baseUrl": "http://169.254.169.254/"}}
    )
    monkeypatch.setenv("MLS_LOCAL_MODE", "0")
    result = run_raw(MongoResource(uri=mongo_uri, database=mongo_db.name), SourceResource(), f"{TODAY}|t.gps")
    assert "link-local" in failure_of(result)
    assert not feed_collections(mongo_db) and not no_requests


def test_an_unset_token_variable_fails_naming_the_feed_and_the_variable(monkeypatch, mongo_uri, mongo_db, no_requests):
    configure(mongo_db, base_url="https://replication.sparkapi.com/v1", token_env="SPARK_TOKEN_NOBODY_SET")
    monkeypatch.setenv("MLS_LOCAL_MODE", "0")
    monkeypatch.delenv("SPARK_TOKEN_NOBODY_SET", raising=False)
    result = run_raw(MongoResource(uri=mongo_uri, database=mongo_db.name), SourceResource(), f"{TODAY}|t.gps")
    message = failure_of(result)
    assert "t.gps" in message and "SPARK_TOKEN_NOBODY_SET" in message
    assert not feed_collections(mongo_db) and not no_requests


@pytest.mark.parametrize("is_the_simulator", [False, True])
def test_an_unreachable_spark_url_fails_at_once_in_one_line(mongo_uri, mongo_db, monkeypatch, is_the_simulator):
    """The message points at the simulator only when the URL is the bundled simulator's."""
    port = free_port()
    monkeypatch.setenv("MLS_SIMULATOR_PORT", str(port if is_the_simulator else free_port()))
    configure(mongo_db, base_url=f"http://127.0.0.1:{port}/v1")
    result = run_raw(MongoResource(uri=mongo_uri, database=mongo_db.name), SourceResource(), f"{TODAY}|t.gps")
    message = failure_of(result)
    assert f"nothing answers at http://127.0.0.1:{port}/v1" in message
    if is_the_simulator:
        assert "is the local simulator running? `mls-assets sim start`" in message
    else:
        assert "simulator" not in message and "server of feed t.gps" in message and "base_url" in message
    assert not [n for n in feed_collections(mongo_db) if mongo_db[n].count_documents({})]


def test_a_stopped_local_simulator_is_reported_not_restarted(monkeypatch, tmp_path, mongo_uri, mongo_db):
    from mls_assets.lib import local_source as process

    configure(mongo_db)
    monkeypatch.delenv("SPARK_API_BASE_URL", raising=False)
    monkeypatch.setenv("MLS_SIMULATOR_PORT", str(free_port()))
    monkeypatch.setenv("MLS_SIMULATOR_HOME", str(tmp_path / "sim"))
    result = run_raw(MongoResource(uri=mongo_uri, database=mongo_db.name), SourceResource(), f"{TODAY}|t.gps")
    assert "mls-assets sim start" in failure_of(result)
    assert process.service().status() is None  # nothing was started behind the operator's back


def test_an_unreachable_mongodb_uri_fails_in_one_line_naming_the_server():
    port = free_port()
    mongo = MongoResource(uri=embedded.server_uri(port), database="x", timeout_ms=300)
    result = run_raw(mongo, SourceResource(), f"{TODAY}|t.gps")
    assert not result.success
    errors = [
        e.event_specific_data.error.message
        for e in result.all_events
        if getattr(e.event_specific_data, "error", None) is not None
    ]
    assert any(f"MongoDB at 127.0.0.1:{port} is unreachable" in one_line(m.strip().splitlines()[-1]) for m in errors)


def test_a_partition_of_an_unknown_feed_fails_in_one_line(mongo_uri, mongo_db):
    configure(mongo_db)
    result = run_raw(
        MongoResource(uri=mongo_uri, database=mongo_db.name),
        SourceResource(),
        f"{TODAY}|ghost.gps",
        feeds=("t.gps", "ghost.gps"),
    )
    assert "feed 'ghost.gps' is not configured" in failure_of(result)
    assert not [n for n in mongo_db.list_collection_names() if n.startswith("ghost")]


def test_the_whole_chain_on_a_bad_config_writes_nothing(monkeypatch, mongo_uri, mongo_db, no_requests):
    configure(mongo_db)
    monkeypatch.setenv("MLS_LOCAL_MODE", "0")
    mongo = MongoResource(uri=mongo_uri, database=mongo_db.name)
    result = run_raw(mongo, SourceResource(), f"{TODAY}|t.gps", assets=CHAIN)
    assert not result.success
    assert not [n for n in feed_collections(mongo_db) if mongo_db[n].count_documents({})]
    assert "feed_cursors" not in mongo_db.list_collection_names()
