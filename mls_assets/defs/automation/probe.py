"""The change probe: freshness within minutes for the price of one request per feed per
minute.

`change_probe_sensor` asks Spark, for each enabled feed at most once per
`MLS_PROBE_INTERVAL_S` (60 s), one cheap question: how many of the feed's listings were
modified after its cursor (`_limit=1&_pagination=count`, the feed's filter and
`ModificationTimestamp Gt cursor - MLS_PROBE_LAG_S`, 60 s, for records a source shows a
little late). Only when the answer is not zero does it request today's partition of that
feed. A feed never pulled (no cursor, e.g. just added) gets its first load instead: one
range run over every day partition up to today; a first load that failed is requested again
less and less often (1, 2, 4 ... 15 minutes). A feed with a run queued or in progress is not asked (its run will
see the changes), and the run key names the feed and its cursor, so until that run has
stored its records and moved the cursor no second run is requested for the same changes.
The probe's request goes through the feed's client and its token's request budget. A failed
probe (429, 1550, 5xx, a timeout) is not retried in the tick: that feed backs off (the
answer's Retry-After, else 1, 2, 4 ... up to 15 minutes) and the tick's log says so; the
other feeds are probed as usual.

`intraday_status_sync` (every 15 minutes by default, `MLS_INTRADAY_CRON`) stays as the
safety net: it syncs today's partition of every feed whatever the probe saw.
"""

import json
from datetime import timedelta

import dagster as dg

from mls_assets.defs.automation.jobs import replication_job
from mls_assets.defs.automation.run_requests import FEED_TAG, IN_PROGRESS, TRIGGER_TAG, chain_run, first_load_run
from mls_assets.defs.instigators import described
from mls_assets.defs.resources import ClockResource, MongoResource, SourceResource
from mls_assets.lib.providers.errors import SourceError
from mls_assets.lib.redact import redact
from mls_assets.lib.replication.probe import PROBE_INTERVAL_S, PROBE_LAG_S, ProbeState
from mls_assets.lib.replication.window import PullWindow
from mls_assets.lib.store.cursors import read_cursor
from mls_assets.lib.tenants import FeedConfigError, read_configs


def feeds_with_runs(instance: dg.DagsterInstance) -> set[str]:
    """Feeds that have a run queued or in progress (of any job: a backfill counts too)."""
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS), limit=1000)
    return {run.tags[FEED_TAG] for run in runs if run.tags.get(FEED_TAG)}


@described(dg.sensor, job=replication_job, minimum_interval_seconds=int(PROBE_INTERVAL_S),
           default_status=dg.DefaultSensorStatus.RUNNING)  # fmt: skip
def change_probe_sensor(context: dg.SensorEvaluationContext, mongo: MongoResource, source: SourceResource,
                        clock: ClockResource):
    """Asks each enabled feed's Spark endpoint once a minute whether anything changed since
    its cursor (one count request) and requests today's partition of the feeds that changed;
    never a second run for a feed whose run is queued or running."""
    database = mongo.get_database()
    states = {feed: ProbeState.from_json(data) for feed, data in json.loads(context.cursor or "{}").items()}
    now = clock.now()
    busy = feeds_with_runs(context.instance)
    requests, changed, quiet, waiting = [], [], 0, []
    for feed in read_configs(database):
        key = str(feed.key)
        state = states.setdefault(key, ProbeState())
        if not feed.enabled or not state.due(now):
            continue
        if key in busy:
            waiting.append(key)
            continue
        cursor = read_cursor(database, key)
        if cursor is None:  # a feed never pulled: its first load, once per attempt
            attempt = len(context.instance.get_run_ids(dg.RunsFilter(tags={FEED_TAG: key, TRIGGER_TAG: "first_load"})))
            if attempt:  # the earlier ones failed (none is in progress): again, but less and less often
                state.failed(now, None)
            requests.append(first_load_run(key, now.date(), attempt))
            changed.append(f"{key} (first load)")
            continue
        try:
            with source.provider_for(feed, attempts=1) as provider:
                since = cursor - timedelta(seconds=PROBE_LAG_S)
                count = provider.count(PullWindow(since, None, incremental=True, after_cursor=True))
        except (SourceError, FeedConfigError) as error:
            wait = state.failed(now, getattr(error, "retry_after", None))
            context.log.warning(f"{key}: probe failed ({type(error).__name__}: {redact(str(error))}); "
                                f"next probe in {wait:.0f}s")  # fmt: skip
            continue
        state.succeeded()
        if count:
            changed.append(f"{key} ({count})")
            requests.append(chain_run(key, now.date(), "probe", f"probe|{key}|{cursor.isoformat()}"))
        else:
            quiet += 1
    cursor_out = json.dumps({feed: state.to_json() for feed, state in states.items()})
    summary = f"changed: {', '.join(changed) or 'none'}; unchanged: {quiet}; run in progress: {', '.join(waiting) or 'none'}"
    context.log.info(summary)
    if not requests:
        return dg.SensorResult(skip_reason=summary, cursor=cursor_out)
    return dg.SensorResult(run_requests=requests, cursor=cursor_out)
