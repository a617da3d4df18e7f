"""The change probe: freshness within minutes for the price of one request per source every
30 seconds.

`change_probe_sensor` asks each source, for each enabled feed at most once per
`MLS_PROBE_INTERVAL_S` (30 s: a change waits half as long for its question as at 60 s;
docs/fleet.md has the freshness measured at 2,000 feeds), one cheap question: how many of
the feed's listings were modified after its cursor (`_limit=1&_pagination=count`, the feed's filter and
`ModificationTimestamp Gt cursor - MLS_PROBE_LAG_S`, 60 s, for records a source shows a
little late). Only when the answer is not zero does it request today's partition of that
feed. A feed never pulled (no cursor, e.g. just added) gets its first load instead: one
range run over every day partition up to today; a first load that failed is requested again
less and less often (1, 2, 4 ... 15 minutes). At most `MLS_FIRST_LOADS_PER_TICK` (10) feeds
start their first load in a tick, the others in the next ticks: the daemon creates a tick's
runs before its next tick, and creating a first load's run writes a planned event per asset
and day (9 per feed and day, ~2.2 s a feed of 706 days on PostgreSQL), so onboarding a
thousand agents at once does not keep every other feed's probe waiting for an hour. A feed
with a run queued or in progress is not asked (its run will see the changes), and the run key
names the feed and its cursor, so until that run has stored its records and moved the cursor
no second run is requested for the same changes.
Feeds of one source with one cursor (synced together) share one question. Questions are asked
concurrently (`MLS_PROBE_CONCURRENCY`, 32 at once, each answer within
`MLS_PROBE_TIMEOUT_S`, 10 s) through one pooled HTTP client per host, with one query for
every due feed's cursor and one for the in-progress runs (all of them, a page at a time).
Each request still goes through its feed's token's request budget. A failed
probe (429, 1550, 5xx, a timeout) is not retried in the tick: that feed backs off (the
answer's Retry-After, else 1, 2, 4 ... up to 15 minutes) and the tick's log says so; the
other feeds are probed as usual.

The feeds that changed are served by shared runs: feeds lying next to each other in the
feeds partition (the feeds of one source are registered together) share one run over a
range of feeds, up to `MLS_SHARED_RUN_FEEDS` (50) a run, so a change in an MLS with 100
tenants asks 2 runs, not 100 (`run_requests.shared_requests`). A feed that failed in a shared
run runs alone until it succeeds (`automation/recovery.py`).

`intraday_status_sync` stays as the safety net: it syncs today's partition of each feed once
every `MLS_SAFETY_NET_HOURS` whatever the probe saw, a slice of the feeds per tick.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import dagster as dg

from mls_assets.defs.automation.jobs import replication_job
from mls_assets.defs.automation.run_requests import feeds_order, feeds_with_runs, first_load_attempts, shared_requests
from mls_assets.defs.instigators import described
from mls_assets.defs.partitions import FIRST_DAY
from mls_assets.defs.resources import ClockResource, MongoResource, SourceResource
from mls_assets.lib.redact import redact
from mls_assets.lib.replication.probe import PROBE_INTERVAL_S, PROBE_LAG_S, ProbeState
from mls_assets.lib.replication.window import PullWindow
from mls_assets.lib.settings import SETTINGS
from mls_assets.lib.sources.errors import SourceError
from mls_assets.lib.sources.pool import ClientPool
from mls_assets.lib.store.alone import feeds_alone
from mls_assets.lib.store.cursors import read_cursors
from mls_assets.lib.tenants import FeedConfig, FeedConfigError, read_configs

# Feeds asked at once (each within its own token's budget); the answer's wait is bounded too.
PROBE_CONCURRENCY = SETTINGS.probe_concurrency
PROBE_TIMEOUT_S = SETTINGS.probe_timeout_s
FIRST_LOADS_PER_TICK = SETTINGS.first_loads_per_tick


def probe_feeds(source: SourceResource, asked: list[tuple[FeedConfig, datetime]]) -> list[int | Exception]:
    """How many listings each feed modified since its cursor (less the lag), asked
    concurrently through one pooled client per host; a failure is returned, not raised.

    Feeds of one source whose cursors are equal (synced together by a shared run) ask the same
    question of the same endpoint with the same token: it is asked once for all of them, so a
    tick's requests follow the sources, not the tenants."""

    def ask(item: tuple[FeedConfig, datetime], clients: ClientPool) -> int | Exception:
        feed, cursor = item
        try:
            with source.provider_for(feed, attempts=1, clients=clients, timeout_s=PROBE_TIMEOUT_S) as provider:
                since = cursor - timedelta(seconds=PROBE_LAG_S)
                return provider.count(PullWindow(since, None, incremental=True, after_cursor=True))
        except (SourceError, FeedConfigError) as error:
            return error

    questions: dict[tuple[str, datetime], tuple[FeedConfig, datetime]] = {}
    for feed, cursor in asked:
        questions.setdefault((feed.source, cursor), (feed, cursor))
    with (
        ClientPool(timeout_s=PROBE_TIMEOUT_S, connections=PROBE_CONCURRENCY) as clients,
        ThreadPoolExecutor(max_workers=PROBE_CONCURRENCY, thread_name_prefix="probe") as pool,
    ):
        answers = dict(zip(questions, pool.map(lambda item: ask(item, clients), questions.values()), strict=True))
    return [answers[(feed.source, cursor)] for feed, cursor in asked]


@described(
    dg.sensor,
    job=replication_job,
    minimum_interval_seconds=int(PROBE_INTERVAL_S),
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def change_probe_sensor(
    context: dg.SensorEvaluationContext, mongo: MongoResource, source: SourceResource, clock: ClockResource
):
    """Asks each enabled feed's endpoint every 30 s whether anything changed since its
    cursor (one count request, many feeds at once) and requests today's partition of the
    feeds that changed, the feeds of one source sharing runs; never a second run for a feed
    whose run is queued or running."""
    database = mongo.get_database()
    states = {feed: ProbeState.from_json(data) for feed, data in json.loads(context.cursor or "{}").items()}
    now = clock.now()
    busy = feeds_with_runs(context.instance)
    due, waiting = [], []
    for feed in read_configs(database):
        key = str(feed.key)
        state = states.setdefault(key, ProbeState())
        if not feed.enabled or not state.due(now):
            continue
        if key in busy:
            waiting.append(key)
        else:
            due.append(feed)
    cursors = read_cursors(database, [str(f.key) for f in due])
    never_pulled = [str(f.key) for f in due if cursors[str(f.key)] is None]
    later = max(0, len(never_pulled) - FIRST_LOADS_PER_TICK)  # left for the next ticks, still due
    never_pulled = never_pulled[:FIRST_LOADS_PER_TICK]
    attempts = first_load_attempts(context.instance, never_pulled) if never_pulled else {}
    changed, quiet, failed, first_loads, probed = [], 0, 0, {}, {}
    for key in never_pulled:  # a feed never pulled: its first load, once per attempt
        if attempts.get(key):  # the earlier ones failed (none is in progress): again, but less and less often
            states[key].failed(now, None)
        first_loads[key] = str(attempts.get(key, 0))
        changed.append(f"{key} (first load)")
    asked = [(f, cursors[str(f.key)]) for f in due if cursors[str(f.key)] is not None]
    for (feed, cursor), answer in zip(asked, probe_feeds(source, asked), strict=True):
        key, state = str(feed.key), states[str(feed.key)]
        if isinstance(answer, Exception):
            failed += 1
            wait = state.failed(now, getattr(answer, "retry_after", None))
            context.log.warning(
                f"{key}: probe failed ({type(answer).__name__}: {redact(str(answer))}); next probe in {wait:.0f}s"
            )
            continue
        state.succeeded()
        if answer:
            changed.append(f"{key} ({answer})")
            probed[key] = cursor.isoformat()
        else:
            quiet += 1
    alone = feeds_alone(database) if first_loads or probed else {}
    order = feeds_order(context.instance) if first_loads or probed else []
    requests = [
        *shared_requests(order, first_loads, alone, FIRST_DAY, now.date(), "first_load"),
        *shared_requests(order, probed, alone, now.date(), now.date(), "probe"),
    ]
    cursor_out = json.dumps({feed: state.to_json() for feed, state in states.items()})
    shown = ", ".join(changed[:50]) + (f" and {len(changed) - 50} more" if len(changed) > 50 else "")
    summary = (
        f"changed: {len(changed)} {shown or ''}; unchanged: {quiet}; failed: {failed}; "
        f"run in progress: {len(waiting)} {', '.join(waiting[:20])}; runs requested: {len(requests)}"
        + (f"; first loads left for the next ticks: {later}" if later else "")
    )
    context.log.info(summary)
    if not requests:
        return dg.SensorResult(skip_reason=summary, cursor=cursor_out)
    return dg.SensorResult(run_requests=requests, cursor=cursor_out)
