"""Feed configs: which tenant replicates which MLS, from where, how often.

Declared in `data/tenants.yaml` (or `MLS_TENANTS_FILE`), validated here, and kept in the
`agent_mls_configs` collection (one document per tenant) so that the running platform reads
the current configs from MongoDB. Tokens are referenced by the name of the environment
variable that holds them; the token itself is never stored, logged or put in metadata.

A bad entry harms only itself: each feed is validated on its own, and an invalid one is
reported (one line: where, which feed, why) and skipped while every other feed loads. A
file that cannot be read as a whole (not YAML, not a mapping, too large, YAML aliases)
changes nothing. An invalid entry for a feed that is already configured leaves that feed's
stored config as it was.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from croniter import croniter
from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pymongo import UpdateOne

from mls_assets.lib.endpoint_policy import EndpointRefused, check_endpoint
from mls_assets.lib.feeds import slot_of
from mls_assets.lib.paths import project_root
from mls_assets.lib.settings import SETTINGS
from mls_assets.lib.sources import PROVIDERS, provider_spec
from mls_assets.lib.store.indexes import ensure_indexes
from mls_assets.lib.store.naming import FeedKey, InvalidIdentifier, validate_id

CONFIGS_COLLECTION = "agent_mls_configs"
MAX_FILE_BYTES = SETTINGS.tenants_file_max_bytes


class TenantsFileError(ValueError):
    """The tenants file as a whole cannot be used; nothing is loaded from it."""


class UnknownFeed(LookupError):
    """A partition or request names a feed that is not configured."""


class FeedConfigError(ValueError):
    """A configured feed whose config is invalid."""


class RateLimit(BaseModel):
    """A token's request limits; unset fields take the provider's defaults (Spark: 1,500
    per 5 minutes; MLS Grid: 2 per second, 7,200 per hour, 40,000 per day, 4 GB per hour)."""

    model_config = ConfigDict(extra="forbid")

    requests: int = Field(default=1500, ge=1)
    per_seconds: float = Field(default=300.0, gt=0)
    per_hour: int | None = Field(default=None, ge=1)
    per_day: int | None = Field(default=None, ge=1)
    gigabytes_per_hour: float | None = Field(default=None, gt=0)
    concurrent_pulls: int = Field(default=1, ge=1, le=16, description="Pulls at once per token, all processes.")

    def windows(self) -> list[tuple[float, float]]:
        """Every (requests, per seconds) limit beyond the first."""
        return [(n, s) for n, s in ((self.per_hour, 3600.0), (self.per_day, 86400.0)) if n]

    @property
    def bytes_per_hour(self) -> float | None:
        return self.gigabytes_per_hour * 1e9 if self.gigabytes_per_hour else None


def check_cron(value: str) -> str:
    if not isinstance(value, str) or len(value.split()) != 5 or not croniter.is_valid(value):
        raise ValueError(f"{value!r:.60} is not a valid 5-field cron expression")
    return value


def spread_schedule(source: str) -> str:
    """The nightly cron of a feed that names none: a minute of 01:00-04:59 UTC chosen by its
    source (provider, MLS id, token), the same on every load. 2,000 feeds on one fixed 02:00
    asked 2,000 runs in one sensor tick; spread, about 8 sources a minute, and the feeds of
    one source due at the same minute, so that one run serves them (`shared_runs`)."""
    slot = slot_of(source, 240)
    return f"{slot % 60} {1 + slot // 60} * * *"


def source_label(provider: str, mls_id: str, token_env: str, base_url: str | None = None) -> str:
    """What a pull depends on besides the window: feeds with one label fetch the same records."""
    return "|".join((provider, base_url or "", mls_id, token_env))


class FeedConfig(BaseModel):
    """One tenant's access to one MLS: its entry in the tenants file (by field name) and in
    `agent_mls_configs.mlsConfigs` (by serialization alias, camelCase: `config_document`,
    `from_document`). A new setting is a field here, nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=AliasGenerator(serialization_alias=to_camel))

    tenant_id: str
    mls: str = Field(serialization_alias="provider")  # the stored form's name for it, from the seed
    provider: str = Field(default="spark", serialization_alias="apiProvider")  # a key of `lib.sources.PROVIDERS`
    mls_id: str  # what identifies the MLS at the provider (Spark: MlsId; RESO: OriginatingSystemName)
    region: str | None = Field(default=None, max_length=100)
    base_url: str | None = Field(default=None, max_length=500)
    token_env: str = Field(default="SPARK_ACCESS_TOKEN", pattern=r"^[A-Z_][A-Z0-9_]*$", max_length=100)
    property_types: tuple[str, ...] = ("A", "B", "C")  # unset: the provider's default scope
    enabled: bool = Field(default=True, serialization_alias="syncEnabled")
    sync_schedule: str  # unset: a minute of 01:00-04:59 UTC picked by the feed's source (`spread_schedule`)
    max_listings: int | None = Field(default=None, ge=0)
    enforce_quota: bool = False  # stop inserting new listings once max_listings are stored
    rate_limit: RateLimit = RateLimit()
    # The feed's token stored encrypted (`mls-assets feeds set-token`); else `token_env`.
    token_ciphertext: str | None = Field(default=None, repr=False, exclude=True)
    # Who owns the entry: the tenants file (rewritten when it changes) or the operator commands.
    managed_by: Literal["file", "command"] = "file"

    @field_validator("tenant_id")
    @classmethod
    def _tenant(cls, value: str) -> str:
        return validate_id(value, "tenant")

    @field_validator("mls")
    @classmethod
    def _mls(cls, value: str) -> str:
        return validate_id(value, "MLS")

    @model_validator(mode="before")
    @classmethod
    def _spread_schedule(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("sync_schedule") is None:
            parts = (
                data.get("provider", "spark"),
                data.get("mls_id"),
                data.get("token_env", "SPARK_ACCESS_TOKEN"),
                data.get("base_url"),
            )
            if all(isinstance(part, str) for part in parts[:3]):
                data = {**data, "sync_schedule": spread_schedule(source_label(*parts))}
        return data

    @model_validator(mode="before")
    @classmethod
    def _provider_defaults(cls, data: Any) -> Any:
        """What a feed leaves unset of its rate limit and scope is its provider's (RESO's
        limits and property types are not Spark's)."""
        spec = PROVIDERS.get(data.get("provider", "spark")) if isinstance(data, dict) else None
        if spec is not None:
            if data.get("property_types") is None:
                data = {**data, "property_types": spec.property_types}
            given = data.get("rate_limit")
            if given is None:
                data = {**data, "rate_limit": dict(spec.rate_limit)}
            elif isinstance(given, dict):
                data = {**data, "rate_limit": {**spec.rate_limit, **given}}
        return data

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str) -> str:
        return provider_spec(value).name

    @model_validator(mode="after")
    def _mls_id(self) -> FeedConfig:
        spec = PROVIDERS[self.provider]
        if not isinstance(self.mls_id, str) or not re.fullmatch(spec.mls_id_pattern, self.mls_id):
            raise ValueError(f"mls_id {self.mls_id!r:.60} is not {spec.mls_id_meaning} (provider {self.provider})")
        return self

    @field_validator("sync_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return check_cron(value)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return None if value is None else check_endpoint(value)

    @property
    def key(self) -> FeedKey:
        return FeedKey(self.tenant_id, self.mls)

    @property
    def source(self) -> str:
        """The feeds with one source pull the same records (an encrypted token is the feed's own)."""
        token = f"feed:{self.key}" if self.token_ciphertext else self.token_env
        return f"{source_label(self.provider, self.mls_id, token, self.base_url)}|{','.join(self.property_types)}"

    def collection(self, name: str) -> str:
        return self.key.collection(name)


@dataclass(frozen=True)
class FeedProblem:
    """One feed entry that was refused, said in one line. `tenant` and `mls` are the ids as
    written (valid or not), for saying which feed it was."""

    where: str
    tenant: str | None
    mls: str | None
    reason: str

    @property
    def feed(self) -> str | None:
        """`tenant.mls` as written, when both could be read (a label, not a `FeedKey`)."""
        return f"{self.tenant}.{self.mls}" if self.tenant and self.mls else None

    def __str__(self) -> str:
        return f"{self.where}{f' ({self.feed})' if self.feed else ''}: {self.reason}"


@dataclass
class LoadedFeeds:
    """The valid feeds of a source (file or MongoDB) and the entries that were refused."""

    feeds: list[FeedConfig] = field(default_factory=list)
    problems: list[FeedProblem] = field(default_factory=list)


def describe_error(error: Exception) -> str:
    """A validation error in one line: the first problem, where it is, and how many more."""
    if isinstance(error, ValidationError):
        errors = error.errors()
        first = errors[0]
        where = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] not in ("value_error", "assertion_error") and "input" in first:
            shown = repr(first["input"])
            message += f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return f"{where}: {message}{more}" if where else f"{message}{more}"
    return " ".join(str(error).split())


def tenants_file_path() -> Path:
    return Path(os.environ.get("MLS_TENANTS_FILE") or project_root() / "data" / "tenants.yaml")


# libyaml's parser where PyYAML has it (2,000 tenants: 0.1 s against 1.3 s in pure Python).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_without_aliases(text: bytes) -> Any:
    """Safe YAML without aliases (a few lines of `&a [*b, *b, ...]` expand to gigabytes):
    the events are checked for an alias before anything is built."""
    for event in yaml.parse(text, Loader=_SAFE_LOADER):
        if isinstance(event, yaml.AliasEvent):
            raise TenantsFileError(
                f"line {event.start_mark.line + 1}: YAML aliases (*name) are not allowed in the tenants file"
            )
    return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader


def read_tenants_file(path: Path | None = None) -> bytes:
    path = path or tenants_file_path()
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise TenantsFileError(
                f"tenants file {path} is {size} bytes, more than {MAX_FILE_BYTES} (MLS_TENANTS_FILE_MAX_BYTES)"
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise TenantsFileError(f"tenants file not found: {path} (set MLS_TENANTS_FILE)") from None
    except IsADirectoryError:
        raise TenantsFileError(f"tenants file {path} is a directory") from None


def parse_tenants(text: bytes, source: str = "tenants file") -> LoadedFeeds:
    """Every valid feed of a tenants document; each refused entry as a `FeedProblem`."""
    if len(text) > MAX_FILE_BYTES:
        raise TenantsFileError(f"{source} is larger than {MAX_FILE_BYTES} bytes")
    try:
        document = _load_without_aliases(text)
    except TenantsFileError as error:
        raise TenantsFileError(f"{source}: {error}") from None
    except yaml.YAMLError as error:
        raise TenantsFileError(f"{source} is not valid YAML: {' '.join(str(error).split())[:200]}") from None
    if document is None:
        return LoadedFeeds()
    if not isinstance(document, dict) or set(document) - {"tenants"}:
        raise TenantsFileError(f"{source} must be a mapping with one key, 'tenants' (a list of tenants)")
    tenants = document.get("tenants") or []
    if not isinstance(tenants, list):
        raise TenantsFileError(f"{source}: 'tenants' must be a list")

    loaded = LoadedFeeds()
    seen: dict[str, str] = {}
    for t, tenant in enumerate(tenants):
        where = f"tenants[{t}]"
        if not isinstance(tenant, dict) or set(tenant) - {"tenant_id", "name", "feeds"}:
            loaded.problems.append(FeedProblem(where, None, None, "a tenant is a mapping of tenant_id, name and feeds"))
            continue
        try:
            tenant_id = validate_id(tenant.get("tenant_id"), "tenant")
        except InvalidIdentifier as error:
            loaded.problems.append(FeedProblem(where, None, None, str(error)))
            continue
        feeds = tenant.get("feeds") or []
        if not isinstance(feeds, list):
            loaded.problems.append(FeedProblem(where, tenant_id, None, "'feeds' must be a list"))
            continue
        for f, entry in enumerate(feeds):
            entry_where = f"{where}.feeds[{f}]"
            if not isinstance(entry, dict):
                loaded.problems.append(FeedProblem(entry_where, tenant_id, None, "a feed is a mapping of its settings"))
                continue
            mls = _shown_id(entry.get("mls"))
            if "tenant_id" in entry:
                loaded.problems.append(
                    FeedProblem(entry_where, tenant_id, mls, "tenant_id belongs to the tenant, not the feed")
                )
                continue
            if {"token_ciphertext", "managed_by"} & set(entry):
                loaded.problems.append(
                    FeedProblem(
                        entry_where,
                        tenant_id,
                        mls,
                        "token_ciphertext and managed_by are set by the operator commands, not in the tenants file",
                    )
                )
                continue
            try:
                feed = FeedConfig(tenant_id=tenant_id, **entry)
            except (ValidationError, TypeError, EndpointRefused) as error:
                loaded.problems.append(FeedProblem(entry_where, tenant_id, mls, describe_error(error)))
                continue
            key = str(feed.key)
            if key in seen:
                loaded.problems.append(
                    FeedProblem(
                        entry_where,
                        feed.tenant_id,
                        feed.mls,
                        f"declared twice (also at {seen[key]}): both ignored until one is removed",
                    )
                )
                continue
            seen[key] = entry_where
            loaded.feeds.append(feed)
    twice = {p.feed for p in loaded.problems if p.reason.startswith("declared twice")}
    for feed in [f for f in loaded.feeds if str(f.key) in twice]:
        loaded.feeds.remove(feed)
    return loaded


def _shown_id(value: Any) -> str | None:
    return value if isinstance(value, str) and len(value) <= 60 else None


def load_tenants_file(path: Path | None = None) -> LoadedFeeds:
    path = path or tenants_file_path()
    return parse_tenants(read_tenants_file(path), str(path))


def load_feeds(path: Path | None = None) -> list[FeedConfig]:
    """Every feed of the tenants file; any refused entry is an error (for strict callers)."""
    loaded = load_tenants_file(path)
    if loaded.problems:
        raise TenantsFileError("; ".join(str(p) for p in loaded.problems))
    return loaded.feeds


def config_document(feed: FeedConfig) -> dict[str, Any]:
    """The `mlsConfigs` entry of a feed: its fields by their stored names, plus `active` and
    `collectionName` (read by the CRM); the token only as ciphertext, when stored."""
    document = feed.model_dump(mode="json", by_alias=True, exclude={"tenant_id"})
    document.update(active=feed.enabled, collectionName=feed.collection("listings"))
    if feed.token_ciphertext:
        document["tokenCiphertext"] = feed.token_ciphertext
    return document


# Written by the pipeline or the operator commands, not by the file: a file sync keeps them.
KEPT_ON_SYNC = ("lastSyncedAt", "currentListings", "currentListingsAt", "tokenCiphertext")


def sync_configs(database: Any, feeds: Iterable[FeedConfig], problems: Iterable[FeedProblem] = ()) -> int:
    """Write the feeds into `agent_mls_configs`, one document per tenant; returns how many
    tenant documents changed.

    Sync statistics stored on a config (`lastSyncedAt`, `currentListings`) are kept. A feed
    whose new entry was refused keeps its stored config; the refusals are kept on the tenant
    document (`configProblems`) for operators to see. One read of every tenant document and
    one bulk write of those that differ: adding one tenant to a file of thousands writes one.
    """
    now = datetime.now(UTC)
    collection = database[CONFIGS_COLLECTION]
    ensure_indexes(collection, [{"keys": [["tenantId", 1]]}])  # one lookup per tenant, not a scan
    by_tenant: dict[str, list[FeedConfig]] = {}
    for feed in feeds:
        by_tenant.setdefault(feed.tenant_id, []).append(feed)
    refused: dict[str, list[FeedProblem]] = {}
    for problem in problems:
        if problem.tenant:
            refused.setdefault(problem.tenant, []).append(problem)
    wanted = set(by_tenant) | set(refused)
    existing_docs = {
        doc.get("tenantId"): doc
        for doc in collection.find({}, {"_id": 0, "tenantId": 1, "mlsConfigs": 1, "configProblems": 1})
    }
    writes = []
    for tenant in sorted(wanted | set(existing_docs) - {None}):  # a tenant gone from the file loses its file's feeds
        existing = existing_docs.get(tenant) or {}
        stored = {c.get("provider"): c for c in existing.get("mlsConfigs", []) if isinstance(c, dict)}
        configs = []
        for feed in by_tenant.get(tenant, []):
            config = config_document(feed)
            for kept in KEPT_ON_SYNC:
                if kept in stored.get(feed.mls, {}) and kept not in config:
                    config[kept] = stored[feed.mls][kept]
            configs.append(config)
        written = {c["provider"] for c in configs}
        for mls, config in stored.items():  # feeds the operator commands added stay theirs
            if config.get("managedBy") == "command" and mls not in written:
                configs.append(config)
                written.add(mls)
        tenant_problems = refused.get(tenant, [])
        for problem in tenant_problems:  # a refused entry leaves the feed's stored config alone
            if problem.mls in stored and problem.mls not in written:
                configs.append(stored[problem.mls])
                written.add(problem.mls)
        shown_problems = [str(p) for p in tenant_problems]
        if existing and existing.get("mlsConfigs") == configs and existing.get("configProblems", []) == shown_problems:
            continue  # unchanged: not written
        writes.append(
            UpdateOne(
                {"tenantId": tenant},
                {
                    "$set": {"mlsConfigs": configs, "configProblems": shown_problems, "updatedAt": now},
                    "$setOnInsert": {"createdAt": now},
                },
                upsert=True,
            )
        )
    for start in range(0, len(writes), 1000):
        collection.bulk_write(writes[start : start + 1000], ordered=False)
    return len(writes)


def _stored_names() -> dict[str, str]:
    """Stored key -> field name, from the fields' serialization aliases."""
    return {field.serialization_alias or name: name for name, field in FeedConfig.model_fields.items()}


STORED_NAMES = _stored_names()


def from_document(tenant: Any, config: dict[str, Any]) -> FeedConfig:
    """The feed of a stored `mlsConfigs` entry (what the pipeline and the operators wrote
    besides its fields, such as `lastSyncedAt`, is not part of it). A feed stored before
    `syncEnabled` existed is enabled as its `active` says."""
    values = {name: config[key] for key, name in STORED_NAMES.items() if key in config and name != "tenant_id"}
    if "enabled" not in values and "active" in config:
        values["enabled"] = config["active"]
    return FeedConfig(tenant_id=tenant, **values)


def read_feeds(database: Any, tenants: list[str] | None = None) -> LoadedFeeds:
    """The feeds as configured in MongoDB now (of `tenants` only, when given); an entry edited
    into an invalid state is refused on its own (the other feeds are unaffected)."""
    loaded = LoadedFeeds()
    query = {} if tenants is None else {"tenantId": {"$in": tenants}}
    for tenant in database[CONFIGS_COLLECTION].find(query, {"_id": 0, "tenantId": 1, "mlsConfigs": 1}):
        tenant_id = tenant.get("tenantId")
        for n, config in enumerate(tenant.get("mlsConfigs") or []):
            where = f"{CONFIGS_COLLECTION} {tenant_id!r:.50}.mlsConfigs[{n}]"
            if not isinstance(config, dict):
                loaded.problems.append(FeedProblem(where, _shown_id(tenant_id), None, "not a document"))
                continue
            try:
                loaded.feeds.append(from_document(tenant_id, config))
            except (ValidationError, TypeError, EndpointRefused, InvalidIdentifier) as error:
                loaded.problems.append(
                    FeedProblem(where, _shown_id(tenant_id), _shown_id(config.get("provider")), describe_error(error))
                )
    return loaded


def read_configs(database: Any) -> list[FeedConfig]:
    """The valid feeds as configured in MongoDB now."""
    return read_feeds(database).feeds


def feed_config(database: Any, key: str) -> FeedConfig:
    """The current config of feed `tenant.mls`, from MongoDB only (never reloads the file:
    configs edited in MongoDB stand until the tenants file changes). Reads the tenant's own
    document only: a run over many feeds asks once per feed, not once per feed per fleet."""
    loaded = read_feeds(database, [str(key).partition(".")[0]])
    for feed in loaded.feeds:
        if str(feed.key) == str(key):
            return feed
    for problem in loaded.problems:
        if problem.feed == str(key):
            raise FeedConfigError(f"feed {key} has an invalid config: {problem}")
    raise UnknownFeed(
        f"feed {str(key)!r:.80} is not configured in {CONFIGS_COLLECTION}: add it to the tenants file and run "
        "`mls-assets feeds sync` (the feed discovery sensor does this every minute)"
    )
