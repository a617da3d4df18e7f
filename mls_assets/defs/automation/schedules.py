"""The intraday safety net: today's partition of each enabled feed, in turn.

The change probe keeps feeds fresh within minutes; this schedule catches what a probe cannot
see (a changed record whose ModificationTimestamp did not move, a probe that kept failing).
It used to sync every feed every 15 minutes: 8,000 runs an hour at 2,000 feeds, a queue that
never drained. Now each enabled feed gets one run every `MLS_SAFETY_NET_HOURS` (4) hours, in
its own slot: a tick (`MLS_INTRADAY_CRON`, every 15 minutes) requests the feeds whose slot it
is (a stable hash of the feed's source, modulo the ticks in the period: the feeds of one source
come due together and share runs), less those whose cursor moved since the previous tick (they
were just synced). At 2,000 feeds of 200 sources: about 13 sources a tick.
"""

from datetime import datetime

import dagster as dg
from croniter import croniter

from mls_assets.defs.automation.jobs import replication_job
from mls_assets.defs.automation.run_requests import feeds_order, shared_requests
from mls_assets.defs.instigators import described
from mls_assets.defs.resources import MongoResource
from mls_assets.lib.feeds import slot_of
from mls_assets.lib.settings import SETTINGS
from mls_assets.lib.store.alone import feeds_alone
from mls_assets.lib.store.cursors import cursor_updates
from mls_assets.lib.tenants import read_configs

INTRADAY_CRON = SETTINGS.intraday_cron
SAFETY_NET_HOURS = SETTINGS.safety_net_hours


def rotation(when: datetime, cron: str = INTRADAY_CRON, hours: float = SAFETY_NET_HOURS) -> tuple[int, int, datetime]:
    """(this tick's slot, the slots in a period, the previous tick) for a tick at `when`."""
    previous = croniter(cron, when).get_prev(datetime)
    interval = max((when - previous).total_seconds(), 60.0)
    slots = max(1, round(hours * 3600 / interval))
    return int(when.timestamp() // interval) % slots, slots, previous


@described(dg.schedule, cron_schedule=INTRADAY_CRON, job=replication_job, execution_timezone="UTC")
def intraday_status_sync(context: dg.ScheduleEvaluationContext, mongo: MongoResource):
    """Today's partition for the enabled feeds whose turn it is in the safety net's rotation
    (each feed once every MLS_SAFETY_NET_HOURS), except those synced since the last tick."""
    when = context.scheduled_execution_time
    database = mongo.get_database()
    slot, slots, previous = rotation(when)
    turn = [str(f.key) for f in read_configs(database) if f.enabled and slot_of(f.source, slots) == slot]
    if not turn:
        return dg.SkipReason(f"no enabled feed in slot {slot} of {slots}")
    moved = cursor_updates(database, turn)
    due = {key: when.isoformat() for key in turn if not (moved.get(key) and moved[key] > previous)}
    if not due:
        return dg.SkipReason(f"the {len(turn)} feeds of slot {slot} of {slots} were synced since the last tick")
    return shared_requests(
        feeds_order(context.instance), due, feeds_alone(database), when.date(), when.date(), "intraday"
    )
