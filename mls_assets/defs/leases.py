"""The run's leases as a resource: one run per feed and a bounded number of pulls per
Spark token, however the run was launched (see `mls_assets.lib.store.leases`)."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field, PrivateAttr
from pymongo.errors import ConnectionFailure

from mls_assets.defs.partitions import split_key
from mls_assets.defs.resources import MongoResource
from mls_assets.lib.store.client import DatabaseUnavailable, unavailable_message
from mls_assets.lib.store.leases import DEFAULT_TTL_S, DEFAULT_WAIT_S, Leases, feed_lease, token_lease
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
        leases = Leases(self.mongo.get_database(), context.run.run_id if context.run else f"adhoc-{uuid.uuid4().hex}", ttl=self.ttl_s,
                        run_ended=lambda run_id: run_ended(instance, run_id), log=log)  # fmt: skip
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

    def hold_feed(self, feed: str) -> None:
        self.leases.acquire(feed_lease(feed), wait=self.wait_s, what=f"feed {feed}")

    @contextmanager
    def pulling(self, feed: FeedConfig, fingerprint: str) -> Iterator[None]:
        """One of the token's `concurrent_pulls` slots for the duration of a pull."""
        with self.leases.holding(token_lease(fingerprint), slots=feed.rate_limit.concurrent_pulls, wait=self.wait_s,
                                 what=f"the Spark token of feed {feed.key}"):  # fmt: skip
            yield
