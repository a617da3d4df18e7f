"""The embedded server: started once under a race, shared by processes, managed by the CLI."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from mls_assets.lib.store import embedded
from mls_assets_tests.support.servers import free_port

ENSURE = textwrap.dedent(
    """
    import json, sys
    from mls_assets.lib.store import embedded
    sys.stdin.readline()  # every racer starts when the test says go
    info = embedded.ensure_running()
    print(json.dumps({"pid": info.pid, "started": info.started_here, "uri": info.url}))
    """
)


@pytest.fixture
def embedded_env(tmp_path, monkeypatch):
    """A private embedded-server home and port, so the checkout's own server is untouched."""
    monkeypatch.delenv("MONGODB_URI", raising=False)
    monkeypatch.setenv("MLS_EMBEDDED_MONGO_HOME", str(tmp_path / "mongo"))
    monkeypatch.setenv("MLS_EMBEDDED_MONGO_PORT", str(free_port()))
    yield embedded.service()
    embedded.stop()


def test_racing_processes_start_the_server_exactly_once(embedded_env):
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", ENSURE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for _ in range(4)
    ]
    for racer in racers:
        racer.stdin.write("go\n")
        racer.stdin.flush()
    reports = [json.loads(racer.communicate(timeout=120)[0]) for racer in racers]

    assert sum(report["started"] for report in reports) == 1
    assert {report["uri"] for report in reports} == {embedded_env.url}
    started_pid = next(report["pid"] for report in reports if report["started"])
    assert all(report["pid"] in (started_pid, None) for report in reports)
    assert embedded.status().pid == started_pid
    assert (embedded_env.home / "data").is_dir()


def test_cli_start_status_stop(embedded_env):
    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "mls_assets.cli", "db", *args],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=120,
        )

    assert cli("status").returncode == 3
    started = cli("start")
    assert started.returncode == 0 and "started" in started.stdout
    again = cli("start")
    assert "already running" in again.stdout
    assert cli("status").returncode == 0
    stopped = cli("stop")
    assert "stopped" in stopped.stdout
    assert embedded.status() is None


def test_data_survives_a_restart(embedded_env):
    from pymongo import MongoClient

    embedded.ensure_running()
    with MongoClient(embedded_env.url) as client:
        client.mls.kept.insert_one({"_id": "survivor"})
    embedded.stop()
    embedded.ensure_running()
    with MongoClient(embedded_env.url) as client:
        assert client.mls.kept.find_one({"_id": "survivor"}) == {"_id": "survivor"}


WRITER = textwrap.dedent(
    """
    import json, sys
    from mls_assets.lib.store.client import get_database
    from mls_assets.lib.catalogue import CollectionSpec
    from mls_assets.lib.store.indexes import ensure_indexes
    from mls_assets.lib.store.writes import CollectionWriter
    name, db_name = sys.argv[1], sys.argv[2]
    collection = get_database(name=db_name)["shared"]
    spec = CollectionSpec("shared", ("k",), sequenced=False)
    ensure_indexes(collection, spec.all_indexes())
    sys.stdin.readline()
    docs = [{"k": f"{name}-{i}", "writer": name} for i in range(300)]
    docs += [{"k": f"both-{i}", "writer": name} for i in range(100)]  # contended keys
    counts = CollectionWriter(collection, spec, batch_size=50).write(docs)
    print(json.dumps(counts.as_dict()), flush=True)
    sys.stdin.readline()  # both have written: now look at the other's data
    other = "b" if name == "a" else "a"
    print(collection.count_documents({"writer": other, "k": {"$regex": f"^{other}-"}}), flush=True)
    """
)


def test_two_processes_writing_at_once_see_each_others_data(mongo_uri, mongo_db):
    writers = {
        name: subprocess.Popen(
            [sys.executable, "-c", WRITER, name, mongo_db.name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "MONGODB_URI": mongo_uri},
        )
        for name in ("a", "b")
    }
    for writer in writers.values():
        writer.stdin.write("go\n")
        writer.stdin.flush()
    counts = {name: json.loads(w.stdout.readline()) for name, w in writers.items()}
    for writer in writers.values():
        writer.stdin.write("look\n")
        writer.stdin.flush()
    seen = {name: int(w.communicate(timeout=120)[0].strip()) for name, w in writers.items()}

    assert seen == {"a": 300, "b": 300}
    collection = mongo_db["shared"]
    assert collection.count_documents({}) == 700
    assert len(collection.distinct("k")) == 700
    contended = sum(c["inserted"] + c["updated"] + c["unchanged"] + c["stale"] for c in counts.values())
    assert contended == 800  # every document accounted for exactly once per writer


@pytest.mark.parametrize(
    ("memory_gib", "expected"),
    [(1, "256M"), (2, "512M"), (16, "7680M"), (64, "32256M")],
)
def test_the_cache_is_sized_as_mongodb_sizes_it(memory_gib, expected):
    assert embedded.cache_size_for(memory_gib * 1024**3) == expected  # half of (memory - 1 GB), >= 256 MB


def test_the_cache_size_can_be_chosen_and_a_bad_one_is_refused(monkeypatch):
    monkeypatch.setenv(embedded.CACHE_ENV, "4G")
    assert embedded.cache_size() == "4G"
    monkeypatch.setenv(embedded.CACHE_ENV, "lots")
    with pytest.raises(embedded.ServiceError, match="expected a size such as 512M or 4G"):
        embedded.cache_size()
    monkeypatch.delenv(embedded.CACHE_ENV)
    assert embedded.cache_size() == embedded.cache_size_for(embedded.available_memory())


def test_every_connection_to_the_embedded_server_goes_without_retryable_writes():
    """The embedded server scans its table of retryable writes on each write (2.9 ms of its CPU
    a write once it holds thousands, against 0.45 ms): the URI every process gets turns them off,
    and a `MONGODB_URI` of one's own keeps the driver's default."""
    from pymongo import uri_parser

    from mls_assets.lib.store.client import get_client

    for uri in (embedded.service().url, embedded.server_uri(free_port())):
        assert get_client(uri).options.retry_writes is False
        assert get_client(uri).options.direct_connection is True
    assert "retrywrites" not in uri_parser.parse_uri("mongodb://db.example.internal:27017/")["options"]
