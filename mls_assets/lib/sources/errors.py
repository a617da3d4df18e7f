"""What can go wrong talking to a listings source, sorted by what the caller should do.

Every provider maps its own answers (Spark's `D.Code`, an OData error, a dropped
connection) onto these classes, so the retry and fail-fast rules are written once: a
`SourceRetryable` is retried by the client and then earns a step retry; the `FATAL_ERRORS`
fail the run at once with one line naming the feed and the cause. Messages never hold a
token.
"""

from __future__ import annotations


class SourceError(Exception):
    """An error answer from a source (or no usable answer at all)."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after


class SourceRetryable(SourceError):
    """Transient: rate limits, 5xx, timeouts, resets, truncated bodies."""

    retryable = True


class SourceTokenExpired(SourceError):
    """The access token expired or was revoked."""


class SourceConfigurationError(SourceError):
    """The request can never succeed as configured: wrong host, bad filter or parameters,
    no token."""


class SourcePagingError(SourceError):
    """Paging stopped making progress (a token or next link that repeats while data keeps
    coming): never taken as the end of the data, never followed in a loop."""


class SourceProtocolError(SourceError):
    """An answer that is not the API's shape (records not a list, a next link to another
    host): a defect of the server, not a bad record; it names the page and is not retried."""


class SourceUnavailable(SourceError):
    """The local simulator stopped answering (connection refused on a loopback address):
    nothing listens there, so waiting would not help."""


# Errors a retry cannot fix: the run fails at once, naming the feed and the cause.
FATAL_ERRORS = (SourceConfigurationError, SourceTokenExpired, SourceProtocolError, SourceUnavailable)
