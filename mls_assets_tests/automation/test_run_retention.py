"""Run history retention: ended runs older than the retention are deleted, a page at a time,
oldest first; queued and running ones never."""

from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster._core.test_utils import create_run_for_test

from mls_assets.defs.maintenance import retention


def test_ended_runs_past_the_retention_are_deleted_and_runs_in_progress_are_kept(monkeypatch):
    monkeypatch.setattr(retention, "PURGE_PAGE", 2)
    with dg.DagsterInstance.ephemeral() as instance:
        ended = [
            create_run_for_test(instance, job_name="replication_job", status=status).run_id
            for status in (
                dg.DagsterRunStatus.SUCCESS,
                dg.DagsterRunStatus.FAILURE,
                dg.DagsterRunStatus.CANCELED,
                dg.DagsterRunStatus.SUCCESS,
                dg.DagsterRunStatus.SUCCESS,
            )
        ]
        alive = [
            create_run_for_test(instance, job_name="replication_job", status=status).run_id
            for status in (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.NOT_STARTED)
        ]
        now = datetime.now(UTC)
        assert retention.purge_runs(instance, now - timedelta(days=1)) == 0  # all younger than the retention
        assert retention.purge_runs(instance, now + timedelta(days=1)) == len(ended)  # three pages
        assert sorted(r.run_id for r in instance.get_runs()) == sorted(alive)
        assert all(instance.get_run_by_id(run_id) is None for run_id in ended)
        with dg.build_sensor_context(instance=instance) as context:
            result = retention.run_retention_sensor(context)
        assert result.skip_message.startswith("deleted 0 runs created before")
