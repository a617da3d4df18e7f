"""The run's leases as a resource: one run per feed and a bounded number of pulls per
source token, however the run was launched (see `mls_assets.lib.store.leases`)."""

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field, PrivateAttr
from pymongo.database import Database
from pymongo.errors import ConnectionFailure

from mls_assets.defs.automation.run_requests import runs_matching
from mls_assets.defs.partitions import split_key
from mls_assets.defs.resources import MongoResource
from mls_assets.lib.store.client import DatabaseUnavailable, unavailable_message
from mls_assets.lib.store.leases import (
    DEFAULT_TTL_S,
    DEFAULT_WAIT_S,
    LEASES_COLLECTION,
    Leases,
    feed_lease,
    media_lease,
    release_run,
    stale_runs,
    token_lease,
)
from mls_assets.lib.tenants import FeedConfig

ENDED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


def run_ended(instance: dg.DagsterInstance | None, run_id: str) -> bool:
    """True when the Dagster instance knows the run and it is over (its leases are stale)."""
    if instance is None:
        return False
    try:
        run = instance.get_run_by_id(run_id)
    except Exception:  # an unreadable instance never frees a lease by itself
        return False
    return run is not None and run.status in ENDED


PAGE = 500


def reap_dead_runs(instance: dg.DagsterInstance, database: Database) -> list[str]:
    """Mark failed every STARTED run whose process is gone (its presence lease went stale: a
    SIGKILL, a lost host) and free the leases of every run that is over (one that lost its
    database could not free them). The daemon's `dead_run_sensor` does this each minute; every
    operator command and every run does it too, so that without a daemon no dead run looks
    alive. Reads every STARTED run, a page at a time; the ids of the runs marked failed."""
    reaped = []
    started = runs_matching(instance, dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    while page := list(itertools.islice(started, PAGE)):
        by_id = {run.run_id: run for run in page}
        for run_id, holder in stale_runs(database, list(by_id)):
            message = (
                f"the run's process is gone ({holder.describe()} stopped renewing its leases): marked failed "
                "so that the feed's next run can start"
            )
            instance.report_run_failed(by_id[run_id], message=message)
            release_run(database, run_id)
            reaped.append(run_id)
    holders = [r for r in database[LEASES_COLLECTION].distinct("runId") if r and not str(r).startswith("adhoc-")]
    for start in range(0, len(holders), PAGE):
        for run in instance.get_runs(
            filters=dg.RunsFilter(run_ids=holders[start : start + PAGE], statuses=list(ENDED))
        ):
            release_run(database, run.run_id)
    return reaped


class LeaseResource(dg.ConfigurableResource):
    """Holds the run's feed leases until the run ends, and a token slot while pulling."""

    mongo: dg.ResourceDependency[MongoResource]
    ttl_s: float = Field(default=DEFAULT_TTL_S, description="A holder that stops renewing loses its leases after this.")
    wait_s: float = Field(default=DEFAULT_WAIT_S, description="How long a run waits for a feed another run is syncing.")
    _leases: Leases | None = PrivateAttr(default=None)

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator["LeaseResource"]:
        log = context.log.info if context.log else None
        instance = context.instance
        if instance is not None:
            try:  # no dead run of another process keeps looking alive, daemon or not
                reap_dead_runs(instance, self.mongo.get_database())
            except Exception as error:  # noqa: BLE001 - tidying never fails the run
                if context.log:
                    context.log.warning(f"could not check for dead runs: {type(error).__name__}: {error}")
        leases = Leases(
            self.mongo.get_database(),
            context.run.run_id if context.run else f"adhoc-{uuid.uuid4().hex}",
            ttl=self.ttl_s,
            run_ended=lambda run_id: run_ended(instance, run_id),
            log=log,
        )
        try:
            self._leases = leases.start()
        except ConnectionFailure as error:
            raise DatabaseUnavailable(unavailable_message(error, self.mongo.uri)) from None
        try:
            yield self
        finally:
            leases.close()

    @property
    def leases(self) -> Leases:
        if self._leases is None:
            raise RuntimeError("LeaseResource used outside a run")
        return self._leases

    def hold_feeds(self, context: dg.AssetExecutionContext) -> list[str]:
        """The feeds of the step's partitions, each held until the run ends."""
        feeds = sorted({split_key(key)[0] for key in context.partition_keys})
        for feed in feeds:
            self.leases.acquire(feed_lease(feed), wait=self.wait_s, what=f"feed {feed}")
        return feeds

    def hold_media(self, context: dg.AssetExecutionContext) -> list[str]:
        """The media leases of the step's feeds (not their feed leases), held until the run ends."""
        feeds = sorted({split_key(key)[0] for key in context.partition_keys})
        for feed in feeds:
            self.leases.acquire(media_lease(feed), wait=self.wait_s, what=f"the media of feed {feed}")
        return feeds

    def hold_feed(self, feed: str) -> None:
        self.leases.acquire(feed_lease(feed), wait=self.wait_s, what=f"feed {feed}")

    @contextmanager
    def pulling(self, feed: FeedConfig, fingerprint: str) -> Iterator[None]:
        """One of the token's `concurrent_pulls` slots for the duration of a pull."""
        with self.leases.holding(
            token_lease(fingerprint),
            slots=feed.rate_limit.concurrent_pulls,
            wait=self.wait_s,
            what=f"the source token of feed {feed.key}",
        ):
            yield
