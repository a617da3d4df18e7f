"""Every tunable the project reads from the environment at start (`MLS_<NAME>`), read once
into one object, checked (a bad value names its variable and the code location does not
load), with its default and its unit in one place.

Variables read when used, not at start, stay where they are used, because a process changes
them while it runs: `MLS_TENANTS_FILE`, `MLS_LOCAL_MODE`, `MLS_TOKEN_KEY`,
`MLS_ALLOWED_API_HOSTS`, `MLS_UI_URL`, the local services' ports and homes.
"""

from __future__ import annotations

from typing import Annotated

from croniter import croniter
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PREFIX = "MLS_"


class SettingsError(ValueError):
    """An `MLS_*` variable with a value the project cannot use."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="ignore")

    # partitions and runs
    partitions_start_date: str = Field("2025-01-01", pattern=r"^\d{4}-\d{2}-\d{2}$", description="first day partition")
    shared_run_feeds: int = Field(50, ge=1, description="feeds at most in one shared run")
    step_retries: int = Field(3, ge=0, description="retries of a network-bound step")
    step_retry_delay_s: float = Field(30, ge=0, description="first delay of those retries (exponential)")
    run_retention_days: float = Field(30, gt=0, description="runs ended longer ago are deleted")
    # automation
    probe_interval_s: float = Field(30, gt=0, description="how often the change probe asks a feed")
    probe_lag_s: float = Field(60, ge=0, description="how far before the cursor the probe looks")
    probe_concurrency: int = Field(32, ge=1, description="questions the probe asks at once")
    probe_timeout_s: float = Field(10, gt=0, description="how long the probe waits for one answer")
    first_loads_per_tick: int = Field(10, ge=1, description="never-pulled feeds the probe starts per tick")
    intraday_cron: str = Field("*/15 * * * *", description="the safety net's schedule")
    safety_net_hours: float = Field(4, gt=0, description="every feed is synced at least this often")
    sweep_cron: str = Field("0 4 * * 0", description="the deletion sweep's schedule")
    audit_cron: str = Field("0 5 * * *", description="the whole-collection audits' schedule")
    # the pull and its checks
    max_pull_minutes: float = Field(30, gt=0, description="a longer pull fails its check")
    reject_rate_threshold: float = Field(0.01, ge=0, le=1, description="a larger quarantined share fails its check")
    progress_pages: int = Field(10, ge=1, description="raw_listings logs its progress every this many pages")
    progress_seconds: float = Field(30, gt=0, description="or sooner after this many seconds")
    # audits
    freshness_minutes: int = Field(60, ge=1, description="a feed's cursor older than this in business hours warns")
    business_hours_utc: Annotated[tuple[int, int], NoDecode] = Field((15, 3), description="'15-3': 7am-7pm Pacific")
    ttl_grace_minutes: float = Field(15, ge=0, description="how late the TTL monitor may delete")
    count_tolerance: float = Field(0.02, ge=0, description="stored against source count, as a share")
    reference_full_read_fraction: float = Field(0.5, gt=0, le=1, description="above this changed share, read all")
    # storage
    mongo_timeout_ms: int = Field(20000, ge=1, description="how long an operation waits for MongoDB")
    lease_ttl_s: float = Field(60, gt=0, description="a silent lease holder loses its leases after this")
    lease_wait_s: float = Field(3600, ge=0, description="how long a run waits for a feed another run syncs")
    expired_ttl_seconds: int = Field(0, ge=0, description="after expiresAt, before the TTL index deletes")
    tenants_file_max_bytes: int = Field(1024 * 1024, ge=1, description="larger tenants files are refused")
    handoff_max_mb: int = Field(1024, ge=0, description="the local disk a run's spools take at most (0: none)")
    # the leads API
    api_max_body_bytes: int = Field(64 * 1024, ge=1, description="the largest request body read")
    # re-hosted photos (credentials: the AWS_* variables, read by obstore, never here)
    media_bucket: str | None = Field(None, description="S3 bucket; unset: a local folder")
    media_prefix: str = Field("", max_length=200, description="key prefix within the bucket")
    media_region: str | None = Field(None, description="the bucket's region")
    media_endpoint: str | None = Field(None, description="another S3 API's URL (https; http on loopback only)")
    media_public_url: str | None = Field(None, description="the base URL (CDN) the stored keys are served under")
    media_dir: str | None = Field(None, description="the local folder when no bucket is set (default .state/media)")
    media_interval_s: int = Field(600, ge=30, description="how often the media sensor looks for feeds to process")
    media_photos_per_run: int = Field(2000, ge=1, description="photos a media run downloads at most (the rest wait)")
    media_per_host: int = Field(4, ge=1, description="downloads at once from one photo host")
    media_workers: int = Field(8, ge=1, description="photos downloaded and rendered at once in a media run")
    media_max_attempts: int = Field(6, ge=1, description="a failed photo is tried this often, then left as failed")

    @field_validator("intraday_cron", "sweep_cron", "audit_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"{value!r:.60} is not a valid 5-field cron expression")
        return value

    @field_validator("business_hours_utc", mode="before")
    @classmethod
    def _hours(cls, value: object) -> object:
        if isinstance(value, str):
            start, sep, end = value.partition("-")
            if not sep or not start.strip().isdigit() or not end.strip().isdigit():
                raise ValueError(f"{value!r:.30} is not 'start-end' in UTC hours, e.g. 15-3")
            value = (int(start), int(end))
        if not all(0 <= hour <= 23 for hour in value):  # type: ignore[union-attr]
            raise ValueError("hours are 0-23")
        return value


def load_settings() -> Settings:
    """The settings from the environment; `SettingsError` naming each bad variable."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{PREFIX}{str(e['loc'][0]).upper()}: {str(e['msg']).removeprefix('Value error, ')} (got {e['input']!r:.40})"
            for e in error.errors()
        )
        raise SettingsError(problems) from None


SETTINGS = load_settings()
