"""What can go wrong talking to Spark: Spark's answers mapped onto the sources' error
classes (`lib/sources/errors.py`), which decide what the caller does about them.

Messages name the cause (HTTP status, Spark code and message, the filter) and never the
access token.
"""

from __future__ import annotations

from mls_assets.lib.sources.errors import (
    SourceConfigurationError,
    SourceError,
    SourcePagingError,
    SourceProtocolError,
    SourceRetryable,
    SourceTokenExpired,
    SourceUnavailable,
)

RETRYABLE_CODES = frozenset({1024, 1510, 1515, 1516, 1550})
RATE_LIMIT_CODE = 1550
TOKEN_EXPIRED_CODE = 1020
WRONG_HOST_CODE = 1021
FILTER_CODES = frozenset({1040, 1050, 1053})


class SparkApiError(SourceError):
    """An error answer from the API (or no usable answer at all)."""


class SparkRetryableError(SparkApiError, SourceRetryable):
    """Transient: rate limits, 5xx, timeouts, resets, truncated bodies, codes 1024/151x/1550."""


class SparkTokenExpired(SparkApiError, SourceTokenExpired):
    """Code 1020: the session/access token expired."""


class SparkConfigurationError(SparkApiError, SourceConfigurationError):
    """The request can never succeed as configured: wrong host (1021), bad filter (1040,
    2000-2999), bad parameters (1050, 1053), invalid key."""


class SparkPagingError(SparkApiError, SourcePagingError):
    """The skiptoken stopped advancing while full pages kept coming."""


class SparkProtocolError(SparkApiError, SourceProtocolError):
    """An answer that is not the replication API's shape (e.g. `D.Results` not a list): a
    defect of the server, not a bad record; it names the page and is not retried."""


class SparkUnavailable(SparkApiError, SourceUnavailable):
    """The local simulator stopped answering (connection refused on a loopback address):
    nothing listens there, so waiting would not help."""


def classify(status: int, code: int | None, message: str, retry_after: float | None) -> SparkApiError:
    """The exception for a Spark error answer (HTTP status + `D.Code` + `D.Message`)."""
    described = f"Spark API error (HTTP {status}, code {code}): {message}"
    if code == RATE_LIMIT_CODE or status == 429:
        return SparkRetryableError(described, status=status, code=code, retry_after=retry_after)
    if code in RETRYABLE_CODES or status >= 500:
        return SparkRetryableError(described, status=status, code=code, retry_after=retry_after)
    if code == TOKEN_EXPIRED_CODE:
        return SparkTokenExpired(described, status=status, code=code)
    if code == WRONG_HOST_CODE:
        return SparkConfigurationError(
            f"{described}. The base URL is the wrong host for this token "
            "(replication tokens need https://replication.sparkapi.com/v1)",
            status=status,
            code=code,
        )
    if code in FILTER_CODES or (code is not None and 2000 <= code <= 2999):
        return SparkConfigurationError(f"{described}. Check the feed's filter and parameters", status=status, code=code)
    return SparkConfigurationError(described, status=status, code=code)
