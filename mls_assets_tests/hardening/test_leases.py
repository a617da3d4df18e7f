"""Leases: one run per feed and N pulls per token across processes; a dead holder blocks
nothing for long, and nothing at all on its own machine."""

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from mls_assets.defs.automation.sensors import dead_run_sensor
from mls_assets.lib.store.leases import LEASES_COLLECTION, Leases, LeaseTimeout, feed_lease, run_lease

HOLD_AND_DIE = textwrap.dedent(
    """
    import os, signal, sys
    from mls_assets.lib.store.client import get_client
    from mls_assets.lib.store.leases import Leases
    leases = Leases(get_client(sys.argv[1])[sys.argv[2]], sys.argv[3]).start()
    for name in sys.argv[4:]:
        leases.acquire(name, wait=0)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def held_by_a_killed_process(mongo_uri, mongo_db, run_id: str, *names: str) -> None:
    died = subprocess.run(
        [sys.executable, "-c", HOLD_AND_DIE, mongo_uri, mongo_db.name, run_id, *names], env=dict(os.environ), timeout=60
    )
    assert died.returncode == -9
    assert mongo_db[LEASES_COLLECTION].count_documents({"runId": run_id}) == len(names) + 1


def test_a_feed_lease_is_exclusive_reentrant_and_free_again_once_released(mongo_db):
    with Leases(mongo_db, "run-a") as first, Leases(mongo_db, "run-b") as second:
        first.acquire(feed_lease("t.gps"))
        assert first.acquire(feed_lease("t.gps")) == feed_lease("t.gps")  # the same run again
        with pytest.raises(LeaseTimeout, match="held by run run-a"):
            second.acquire(feed_lease("t.gps"), wait=0)
        second.acquire(feed_lease("t.crmls"), wait=0)  # another feed is not blocked
        first.release(feed_lease("t.gps"))
        second.acquire(feed_lease("t.gps"), wait=0)


def test_a_token_has_as_many_slots_as_its_limit(mongo_db):
    holders = [Leases(mongo_db, f"run-{n}").start() for n in range(3)]
    try:
        taken = {h.acquire("token:abc", slots=2, wait=0) for h in holders[:2]}
        assert taken == {"token:abc#0", "token:abc#1"}
        with pytest.raises(LeaseTimeout):
            holders[2].acquire("token:abc", slots=2, wait=0)
    finally:
        for holder in holders:
            holder.close()


def test_the_leases_of_a_killed_process_on_this_host_are_free_at_once(mongo_uri, mongo_db):
    held_by_a_killed_process(mongo_uri, mongo_db, "dead-run", feed_lease("t.gps"), "token:abc#0")
    with Leases(mongo_db, "next-run", ttl=3600) as leases:
        leases.acquire(feed_lease("t.gps"), wait=0)
        leases.acquire("token:abc", slots=1 + 1, wait=0)


def test_a_holder_that_stopped_renewing_loses_its_lease_after_the_ttl(mongo_db):
    stale = datetime.now(UTC) - timedelta(seconds=120)
    mongo_db[LEASES_COLLECTION].insert_one(
        {
            "_id": feed_lease("t.gps"),
            "runId": "elsewhere",
            "host": "other-host/x",
            "pid": 1,
            "started": "",
            "heartbeatAt": stale,
            "acquiredAt": stale,
        }
    )
    with Leases(mongo_db, "mine", ttl=60) as leases:
        leases.acquire(feed_lease("t.gps"), wait=0)
    fresh = datetime.now(UTC)
    mongo_db[LEASES_COLLECTION].insert_one(
        {
            "_id": feed_lease("t.crmls"),
            "runId": "elsewhere",
            "host": "other-host/x",
            "pid": 1,
            "started": "",
            "heartbeatAt": fresh,
            "acquiredAt": fresh,
        }
    )
    with Leases(mongo_db, "mine-too", ttl=60) as leases, pytest.raises(LeaseTimeout):
        leases.acquire(feed_lease("t.crmls"), wait=0)


def test_a_lease_of_a_run_dagster_knows_has_ended_is_free(mongo_db):
    fresh = datetime.now(UTC)
    mongo_db[LEASES_COLLECTION].insert_one(
        {
            "_id": feed_lease("t.gps"),
            "runId": "finished",
            "host": "other-host/x",
            "pid": 1,
            "started": "",
            "heartbeatAt": fresh,
            "acquiredAt": fresh,
        }
    )
    with Leases(mongo_db, "mine", run_ended=lambda run_id: run_id == "finished") as leases:
        leases.acquire(feed_lease("t.gps"), wait=0)


def test_the_dead_run_sensor_fails_runs_whose_process_is_gone_and_frees_their_leases(
    mongo_uri, mongo_db, mongo_resources
):
    with dg.DagsterInstance.ephemeral() as instance:
        dead = instance.create_run_for_job(
            dg.JobDefinition(graph_def=dg.GraphDefinition(name="g", node_defs=[])), tags={"mls/feed": "t.gps"}
        )
        alive = instance.create_run_for_job(dg.JobDefinition(graph_def=dg.GraphDefinition(name="h", node_defs=[])))
        for run in (dead, alive):
            instance.handle_new_event(
                dg.EventLogEntry(
                    error_info=None,
                    level="DEBUG",
                    user_message="",
                    run_id=run.run_id,
                    timestamp=0.0,
                    dagster_event=dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, run.job_name),
                )
            )
        held_by_a_killed_process(mongo_uri, mongo_db, dead.run_id, feed_lease("t.gps"))
        with Leases(mongo_db, alive.run_id):
            with dg.build_sensor_context(instance=instance, resources=mongo_resources) as context:
                dead_run_sensor(context)
            assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
            assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
            assert mongo_db[LEASES_COLLECTION].count_documents({"runId": dead.run_id}) == 0
            assert mongo_db[LEASES_COLLECTION].count_documents({"_id": run_lease(alive.run_id)}) == 1


def test_without_a_daemon_feeds_status_shows_a_killed_run_dead_and_frees_the_leases_of_ended_runs(
    mongo_uri, mongo_db, tmp_path, monkeypatch, capsys
):
    """No sensor runs here: the operator's next command marks the killed run failed and frees
    its leases, and the lease a failed run could not free (its database was gone) too."""
    from mls_assets.cli import main

    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MONGODB_DATABASE", mongo_db.name)
    with dg.DagsterInstance.get() as instance:
        job = dg.JobDefinition(graph_def=dg.GraphDefinition(name="g", node_defs=[]))
        killed, ended = instance.create_run_for_job(job), instance.create_run_for_job(job)
        instance.handle_new_event(
            dg.EventLogEntry(
                error_info=None,
                level="DEBUG",
                user_message="",
                run_id=killed.run_id,
                timestamp=0.0,
                dagster_event=dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, killed.job_name),
            )
        )
        instance.report_run_failed(ended, message="lost its database")
    held_by_a_killed_process(mongo_uri, mongo_db, killed.run_id, feed_lease("t.gps"))
    mongo_db[LEASES_COLLECTION].insert_one(
        {
            "_id": feed_lease("u.gps"),
            "runId": ended.run_id,
            "pid": os.getpid(),
            "host": "elsewhere",
            "heartbeatAt": datetime.now(UTC),
        }
    )
    assert main(["feeds", "status", "--json"]) == 0
    capsys.readouterr()
    with dg.DagsterInstance.get() as instance:
        assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE
    assert mongo_db[LEASES_COLLECTION].count_documents({"runId": {"$in": [killed.run_id, ended.run_id]}}) == 0
