"""Resources shared by every asset: MongoDB access, configured from the environment."""


import os
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
from pydantic import Field
from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.database import Database

from mls_assets.lib.spark.client import RetryPolicy, SparkClient
from mls_assets.lib.spark.errors import SparkConfigurationError, SparkTokenExpired
from mls_assets.lib.spark.rate import budget_for
from mls_assets.lib.spark.simulator.server import DEMO_TOKEN
from mls_assets.lib.store import client as mongo_client
from mls_assets.lib.tenants import FeedConfig


def env_or_default(name: str, default: Any) -> Any:
    """`EnvVar(name)` when the variable is set (shown as such in the UI), else the default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


class MongoResource(dg.ConfigurableResource):
    """MongoDB: the server at `uri`, or the embedded server of this checkout when unset.

    Gives one pooled `MongoClient` per process, shared by every asset and IO manager.
    """

    uri: str | None = Field(
        default=None, description="MongoDB connection string; unset starts/uses the embedded one."
    )
    database: str = Field(default=mongo_client.DEFAULT_DATABASE, description="Database name.")

    def get_client(self) -> MongoClient:
        return mongo_client.get_client(self.uri)

    def get_database(self) -> Database:
        return self.get_client()[self.database]

    def collection(self, name: str) -> Collection:
        return self.get_database()[name]


def mongo_resource_from_env() -> MongoResource:
    return MongoResource(
        uri=env_or_default("MONGODB_URI", None),
        database=env_or_default("MONGODB_DATABASE", mongo_client.DEFAULT_DATABASE),
    )


class ClockResource(dg.ConfigurableResource):
    """The pipeline's "now": real UTC time, or a fixed instant (tests, reproducible replays)."""

    fixed_now: str | None = Field(default=None, description="ISO timestamp to use as now.")

    def now(self) -> datetime:
        if self.fixed_now:
            fixed = datetime.fromisoformat(self.fixed_now)
            return fixed if fixed.tzinfo else fixed.replace(tzinfo=UTC)
        return datetime.now(UTC)


class SparkResource(dg.ConfigurableResource):
    """Spark replication API access for a feed: base URL, token (by env var), retries.

    Base URL: the feed's own, else `base_url` (SPARK_API_BASE_URL), else the bundled
    simulator of this checkout (started if needed). The token is read from the feed's
    `token_env` variable at call time and never leaves the client.
    """

    base_url: str | None = Field(default=None, description="Replication endpoint base URL.")
    timeout_s: float = 30.0
    retry_attempts: int = 8
    retry_floor_s: float = 0.5
    retry_cap_s: float = 60.0
    page_size: int = Field(default=1000, ge=1, le=1000, description="_limit per request (max 1000).")

    def base_url_for(self, feed: FeedConfig) -> tuple[str, bool]:
        """The base URL and whether it is the bundled simulator."""
        if feed.base_url or self.base_url:
            url = feed.base_url or self.base_url
            return url, urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")
        from mls_assets.lib.spark.simulator import process

        return process.ensure_running().url, True

    def client_for(self, feed: FeedConfig) -> SparkClient:
        url, local = self.base_url_for(feed)
        token = os.environ.get(feed.token_env)
        if not token:
            if not local:
                raise SparkConfigurationError(
                    f"feed {feed.key}: environment variable {feed.token_env} holds no Spark access token"
                )
            token = DEMO_TOKEN
        budget = budget_for(token, feed.rate_limit.requests, feed.rate_limit.per_seconds)
        retry = RetryPolicy(attempts=self.retry_attempts, floor=self.retry_floor_s, cap=self.retry_cap_s)

        def rotated_token() -> str:
            """A feed refreshes by having its token rotated in the environment (a secrets
            manager, an operator); the same token again means there is no fresh one."""
            fresh = os.environ.get(feed.token_env)
            if not fresh or fresh == token:
                raise SparkTokenExpired(
                    f"Spark access token of feed {feed.key} expired (code 1020) and {feed.token_env} holds "
                    "no newer one: rotate the token in that variable", code=1020, status=401)  # fmt: skip
            return fresh

        return SparkClient(url, token, timeout=self.timeout_s, retry=retry, budget=budget, refresh_token=rotated_token)


def spark_resource_from_env() -> SparkResource:
    return SparkResource(base_url=env_or_default("SPARK_API_BASE_URL", None))
