"""Resources shared by every asset: MongoDB, the listings sources, the clock and the media
storage, configured from the environment."""

import os
import time
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from pydantic import Field
from pymongo import MongoClient
from pymongo.database import Database

from mls_assets.lib import local_source
from mls_assets.lib.credentials import TokenKeyError, decrypt_token
from mls_assets.lib.endpoint_policy import EndpointRefused, check_endpoint, is_loopback_url
from mls_assets.lib.local_mode import is_local_mode
from mls_assets.lib.media.storage import MediaStorage, storage_from_settings
from mls_assets.lib.settings import SETTINGS
from mls_assets.lib.sources import provider_spec
from mls_assets.lib.sources.base import ListingsProvider
from mls_assets.lib.sources.errors import SourceConfigurationError, SourceTokenExpired, SourceUnavailable
from mls_assets.lib.sources.http import RetryPolicy
from mls_assets.lib.sources.pool import ClientPool
from mls_assets.lib.sources.rate import budget_of
from mls_assets.lib.store import client as mongo_client
from mls_assets.lib.tenants import FeedConfig


def env_or_default(name: str, default: Any) -> Any:
    """`EnvVar(name)` when the variable is set (shown as such in the UI), else the default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


class MongoResource(dg.ConfigurableResource):
    """MongoDB: the server at `uri`, or the embedded server of this checkout when unset
    (it must be running: `mls-assets db start`, `make run` and `make dev` start it).

    Gives one pooled `MongoClient` per process, shared by every asset and IO manager.
    """

    uri: str | None = Field(default=None, description="MongoDB connection string; unset uses the embedded one.")
    database: str = Field(default=mongo_client.DEFAULT_DATABASE, description="Database name.")
    timeout_ms: int = Field(default=mongo_client.TIMEOUT_MS, description="Server selection timeout.")

    def get_client(self) -> MongoClient:
        return mongo_client.get_client(self.uri, timeout_ms=self.timeout_ms)

    def get_database(self) -> Database:
        return self.get_client()[self.database]


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


class SourceResource(dg.ConfigurableResource):
    """Access to a feed's listings source (its provider: Spark, a RESO Web API, any source of
    `lib/sources`): base URL, token (by env var or stored encrypted), retries, page size.

    Base URL: the feed's own, else the source's default here (`base_urls[provider]`, else the
    variable its spec names: SPARK_API_BASE_URL, RESO_API_BASE_URL); in local mode only (see
    `mls_assets.lib.local_mode`), else the bundled simulator of this checkout, which speaks
    every source's dialect and must be running. Every URL passes the endpoint policy before a
    token goes there. The token is read at call time and never leaves the client.
    """

    base_urls: dict[str, str] = Field(
        default_factory=dict,
        description="A default base URL per source, e.g. {'reso': 'https://api.mlsgrid.com/v2'}; "
        "unset: the variable the source names (SPARK_API_BASE_URL, RESO_API_BASE_URL).",
    )
    timeout_s: float = 30.0
    retry_attempts: int = 8
    retry_floor_s: float = 0.5
    retry_cap_s: float = 60.0
    page_size: int = Field(default=1000, ge=1, le=1000, description="Records per request (max 1000 with photos).")

    def base_url_for(self, feed: FeedConfig) -> tuple[str, bool]:
        """The base URL and whether it is the local simulator; a configuration error when
        there is none or it may not receive a token."""
        local = is_local_mode()
        spec = provider_spec(feed.provider)
        default = self.base_urls.get(spec.name) or os.environ.get(spec.base_url_env)
        url = feed.base_url or default
        if url:
            try:
                check_endpoint(url, local=local)
            except EndpointRefused as error:
                raise SourceConfigurationError(f"feed {feed.key}: {error}") from None
            return url, local and is_loopback_url(url)
        if not local:
            raise SourceConfigurationError(
                f"feed {feed.key} has no base URL: set base_url in its config or {spec.base_url_env} (e.g. "
                f"{spec.example_url}); the bundled simulator is used only in local mode "
                "(MLS_LOCAL_MODE=1, or MONGODB_URI unset)"
            )
        running = _simulator_status()
        if running is None:
            raise SourceUnavailable(
                f"the local simulator is not running ({local_source.service().url}): start it "
                "with `mls-assets sim start` (make run and make dev do)"
            )
        return local_source.root_url(running.url) + spec.simulator_path, True

    def token_for(self, feed: FeedConfig, simulated: bool) -> str:
        """The feed's stored token (decrypted here, at call time), else its `token_env`."""
        if feed.token_ciphertext:
            try:
                return decrypt_token(feed.token_ciphertext)
            except TokenKeyError as error:
                raise SourceConfigurationError(f"feed {feed.key}: its stored token is unusable: {error}") from None
        token = os.environ.get(feed.token_env)
        if token:
            return token
        if simulated:
            return local_source.LOCAL_SOURCE_TOKEN
        raise SourceConfigurationError(f"feed {feed.key}: environment variable {feed.token_env} holds no access token")

    def provider_for(
        self,
        feed: FeedConfig,
        attempts: int | None = None,
        clients: ClientPool | None = None,
        timeout_s: float | None = None,
    ) -> ListingsProvider:
        """The feed's provider, its client on the feed's endpoint and token and counted in
        the token's request budget; `attempts=1` for a caller that backs off on its own
        (the change probe), `clients` the pooled HTTP clients it shares between feeds."""
        url, simulated = self.base_url_for(feed)
        token = self.token_for(feed, simulated)
        budget = budget_of(token, feed.rate_limit)
        retry = RetryPolicy(attempts=attempts or self.retry_attempts, floor=self.retry_floor_s, cap=self.retry_cap_s)

        def rotated_token() -> str:
            """A feed refreshes by having its token rotated in the environment (a secrets
            manager, an operator); the same token again means there is no fresh one."""
            if feed.token_ciphertext:
                raise SourceTokenExpired(
                    f"the stored access token of feed {feed.key} expired: store a new one with "
                    "`mls-assets feeds set-token`",
                    status=401,
                )
            fresh = os.environ.get(feed.token_env)
            if not fresh or fresh == token:
                raise SourceTokenExpired(
                    f"access token of feed {feed.key} expired and {feed.token_env} holds no newer one: rotate "
                    "the token in that variable",
                    status=401,
                )
            return fresh

        return provider_spec(feed.provider).open(
            feed,
            url,
            token,
            timeout=timeout_s or self.timeout_s,
            retry=retry,
            budget=budget,
            http=clients.for_url(url) if clients else None,
            refresh_token=rotated_token,
            refused_is_fatal=simulated,
            refused_hint=_refused_hint(feed, url),
        )


_SIMULATOR_STATUS_TTL_S = 5.0
_simulator_seen: dict[str, tuple[float, Any]] = {}


class MediaResource(dg.ConfigurableResource):
    """Where re-hosted photos are stored and how they are fetched. Each storage field unset
    means its `MLS_MEDIA_*` setting (a local folder unless a bucket is named); credentials
    are never fields here: obstore reads the usual `AWS_*` variables or the instance role."""

    bucket: str | None = None
    prefix: str | None = None
    region: str | None = None
    endpoint: str | None = None
    public_url: str | None = None
    folder: str | None = None
    per_host: int = Field(default_factory=lambda: SETTINGS.media_per_host, ge=1)
    workers: int = Field(default_factory=lambda: SETTINGS.media_workers, ge=1)
    photos_per_run: int = Field(default_factory=lambda: SETTINGS.media_photos_per_run, ge=1)
    max_attempts: int = Field(default_factory=lambda: SETTINGS.media_max_attempts, ge=1)

    def storage(self) -> MediaStorage:
        chosen = {
            "media_bucket": self.bucket,
            "media_prefix": self.prefix,
            "media_region": self.region,
            "media_endpoint": self.endpoint,
            "media_public_url": self.public_url,
            "media_dir": self.folder,
        }
        return storage_from_settings(SETTINGS.model_copy(update={k: v for k, v in chosen.items() if v is not None}))


def _simulator_status() -> Any:
    """The local simulator's status, asked at most once per 5 s while it runs: a probe tick
    over thousands of feeds in local mode asked it once per feed."""
    service = local_source.service()
    seen = _simulator_seen.get(service.url)
    if seen is None or seen[1] is None or time.monotonic() - seen[0] > _SIMULATOR_STATUS_TTL_S:
        seen = _simulator_seen[service.url] = (time.monotonic(), service.status())
    return seen[1]


def _refused_hint(feed: FeedConfig, url: str) -> str:
    """What to check when nothing answers at `url`: the bundled simulator only when it is it."""
    simulator = local_source.root_url(local_source.service().url)
    if url == simulator or url.startswith(simulator + "/"):
        return "is the local simulator running? `mls-assets sim start` (make run and make dev start it)"
    where = "the base_url in its config" if feed.base_url else f"{provider_spec(feed.provider).base_url_env}"
    return f"is the server of feed {feed.key} up, and {where} right?"


def source_resource_from_env() -> SourceResource:
    """Each source's default base URL is read from its variable when a feed is pulled."""
    return SourceResource()
