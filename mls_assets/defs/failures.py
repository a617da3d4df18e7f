"""Failures that say what broke and whether a retry can help.

A configuration error, a filter the API refuses, a protocol defect or a database that is
gone cannot be fixed by retrying the step: those become `dg.Failure(allow_retries=False)`
with one clear line (naming the feed or the server and what to do), so the run fails at
once instead of after minutes of step retries. Transient errors (a rate limit, a reset
connection after the client's own retries) go up unchanged and earn the step retry.
"""

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import dagster as dg
from pymongo.errors import ConnectionFailure

from mls_assets.lib.endpoint_policy import EndpointRefused
from mls_assets.lib.replication.sweep import SweepRefused
from mls_assets.lib.sources.errors import FATAL_ERRORS
from mls_assets.lib.store.client import DatabaseUnavailable, unavailable_message
from mls_assets.lib.store.leases import LeaseTimeout
from mls_assets.lib.store.naming import InvalidIdentifier
from mls_assets.lib.tenants import FeedConfigError, UnknownFeed

FATAL = (
    *FATAL_ERRORS,
    DatabaseUnavailable,
    EndpointRefused,
    UnknownFeed,
    FeedConfigError,
    InvalidIdentifier,
    LeaseTimeout,
    SweepRefused,
)


@contextmanager
def failing_clearly(mongo_uri: str | None = None) -> Iterator[None]:
    """`mongo_uri`: the server in use, named when it is lost (else the error's or the
    environment's)."""
    try:
        yield
    except ConnectionFailure as error:
        raise dg.Failure(description=unavailable_message(error, mongo_uri), allow_retries=False) from None
    except FATAL as error:
        raise dg.Failure(description=f"{type(error).__name__}: {error}", allow_retries=False) from None


def _uri_of(kwargs: dict) -> str | None:
    mongo = kwargs.get("mongo")
    return getattr(mongo, "uri", None)


def around(compute: Callable, context: Callable[[tuple, dict], AbstractContextManager]) -> Callable:
    """`compute` (a plain or generator asset function) run inside `context(args, kwargs)`, its
    signature kept (Dagster reads it for the resources and inputs to pass)."""
    if inspect.isgeneratorfunction(compute):

        @functools.wraps(compute)
        def generator(*args, **kwargs):
            with context(args, kwargs):
                yield from compute(*args, **kwargs)

        return generator

    @functools.wraps(compute)
    def plain(*args, **kwargs):
        with context(args, kwargs):
            return compute(*args, **kwargs)

    return plain


def fails_clearly(compute: Callable) -> Callable:
    """Decorate an asset's compute function (plain or generator) with `failing_clearly`."""
    return around(compute, lambda args, kwargs: failing_clearly(_uri_of(kwargs)))
