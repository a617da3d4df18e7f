"""A feed's token appears nowhere but in the request that carries it: not in the Dagster
instance's storage, not in MongoDB, not in logs, not in any raised error, also when the
API refuses it (401) and when the connection fails."""

import logging
from pathlib import Path

import bson
import dagster as dg
import pytest

from mls_assets.lib.sources.spark.client import RetryPolicy, SparkClient
from mls_assets.lib.sources.spark.errors import SparkApiError
from mls_assets.lib.tenants import CONFIGS_COLLECTION
from mls_assets_tests.pipeline.test_replication_chain import GPS
from mls_assets_tests.support.chain import CHAIN, Pipeline
from mls_assets_tests.support.servers import free_port

TOKEN = "tok-7f3a9c-DISTINCT-SECRET-4411"
VARIABLE = "SPARK_TOKEN_SECRET_TEST"


def found_in_files(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]


def found_in_database(database) -> list[str]:
    return [
        f"{name}: {doc.get('_id')}"
        for name in database.list_collection_names()
        for doc in database[name].find()
        if TOKEN.encode() in bson.encode(doc)
    ]


def run(pipeline: Pipeline, instance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        CHAIN,
        instance=instance,
        resources=pipeline.resources(),
        raise_on_error=False,
        partition_key=f"{pipeline.market.now.date().isoformat()}|{GPS}",
    )


def errors_of(result) -> list[str]:
    return [
        e.event_specific_data.error.to_string()
        for e in result.all_events
        if getattr(e.event_specific_data, "error", None) is not None
    ]


def test_the_token_is_found_nowhere_after_a_run_a_401_and_a_transport_error(
    pipeline, simulator, monkeypatch, tmp_path, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    simulator.add_token(TOKEN)
    monkeypatch.setenv(VARIABLE, TOKEN)
    pipeline.database[CONFIGS_COLLECTION].update_many({}, {"$set": {"mlsConfigs.$[].tokenEnv": VARIABLE}})
    home = tmp_path / "instance"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        instance.add_dynamic_partitions("feeds", [GPS])
        assert run(pipeline, instance).success
        assert simulator.requests > 0

        simulator.expire_token(TOKEN)  # 401, code 1020, and no fresher token in the variable
        refused = run(pipeline, instance)
        assert not refused.success
        assert any("expired" in e for e in errors_of(refused))

        port = free_port()  # nothing listens there: a transport error
        pipeline.database[CONFIGS_COLLECTION].update_many(
            {}, {"$set": {"mlsConfigs.$[].baseUrl": f"http://127.0.0.1:{port}/v1"}}
        )
        unreachable = run(pipeline, instance)
        assert not unreachable.success
        assert any(f"127.0.0.1:{port}" in e for e in errors_of(unreachable))
        texts = errors_of(refused) + errors_of(unreachable)

    client = SparkClient(f"http://127.0.0.1:{free_port()}/v1", TOKEN, retry=RetryPolicy(attempts=2, floor=0.01))
    with client, pytest.raises(SparkApiError) as direct:
        list(client.pages())
    texts += [str(direct.value), repr(direct.value), repr(client)]

    assert not found_in_files(home)
    assert not found_in_database(pipeline.database)
    assert not [t for t in texts if TOKEN in t]
    assert TOKEN not in caplog.text
    captured = capfd.readouterr()
    assert TOKEN not in captured.out and TOKEN not in captured.err
