"""Dagster's PostgreSQL storages, each process keeping its connections, remembering the schema it
has seen, and writing a new run's planned materializations a batch at a time.

`dagster-postgres` builds its run, event log and schedule storages on SQLAlchemy's `NullPool`
(only the webserver swaps in a pool): every storage call opens a new connection, which costs
PostgreSQL a forked backend and the caller a TCP and authentication handshake (a TLS one too
on a managed database). A run writes an event per step, output and partition: a 50-feed
shared run made 1,510 connections for 583 events, and spent 2.8 s of its 10.4 s connecting
(dagster-io/dagster#20325, #33935 ask for this setting upstream).

These subclasses change three things, each measured in its method's docstring:
- the engine: a `QueuePool` of `pool_size` connections per storage and process (1 by default,
  as the webserver's), `max_overflow` more while threads contend, each checked before use and
  replaced after `pool_recycle` seconds, so a failed-over or restarted database costs one
  reconnect, not an error. Connections held at rest: 3 x `pool_size` per Dagster process (each
  run, the daemon, the webserver, the code server);
- a table or column found in the catalog is not asked about again by the same process;
- a batch of planned materializations (a range run's, as it is created) is one insert.
The tables, the rows written, the migrations and the webserver's own pool are dagster-postgres's."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from itertools import groupby
from typing import Any

from dagster import DagsterEventType, EventLogEntry, Field, IntSource
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config

POOL_SETTINGS = {  # name: (default, what it means)
    "pool_size": (1, "connections each process keeps open to this storage"),
    "max_overflow": (10, "more connections a process may open while its threads contend (closed after use)"),
    "pool_recycle": (3600, "seconds after which a kept connection is replaced"),
}


class _Pooled:
    """Swaps the storage's `NullPool` engine for a pool once the storage is built."""

    postgres_url: str
    _token_provider: Any
    _engine: Any

    @classmethod
    def config_type(cls) -> dict:
        fields = dict(super().config_type())  # type: ignore[misc]
        for name, (default, description) in POOL_SETTINGS.items():
            fields[name] = Field(IntSource, is_required=False, default_value=default, description=description)
        return fields

    @classmethod
    def from_config_value(cls, inst_data, config_value: Mapping[str, Any]):
        storage = cls(  # type: ignore[call-arg]
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
        storage.use_pool(**{name: config_value.get(name, default) for name, (default, _) in POOL_SETTINGS.items()})
        return storage

    def use_pool(self, pool_size: int, max_overflow: int, pool_recycle: int) -> None:
        if pool_size < 1 or max_overflow < 0 or pool_recycle < 1:
            raise ValueError("pool_size must be >= 1, max_overflow >= 0 and pool_recycle >= 1 s")
        unpooled = self._engine
        self._engine = create_pg_engine(
            self.postgres_url,
            self._token_provider,
            isolation_level="AUTOCOMMIT",
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_recycle=pool_recycle,
            pool_pre_ping=True,
        )
        unpooled.dispose()

    def _schema_has(self, part: str, ask: Callable[[], bool]) -> bool:
        """Whether the database has a table or column `part`, asked once per process while yes.

        Dagster asks PostgreSQL's catalog whether a table or column exists (a migration may add
        it) before many of its reads and writes, a column before every asset row it writes: a
        query each, three for a column (SQLAlchemy reflects the table's columns, domains and
        enums). Remembering them took a 70-listing run from 0.99-1.04 s to 0.74-0.80 s. Migrations
        add tables and columns, never drop them while runs go on: a yes is remembered for the
        process, a no is asked again."""
        seen: set[str] = self.__dict__.setdefault("_schema_seen", set())
        if part in seen:
            return True
        found = ask()
        if found:
            seen.add(part)
        return found


class PooledPostgresRunStorage(_Pooled, PostgresRunStorage):
    """Runs and their tags in PostgreSQL, over kept connections."""

    def has_run_stats_index_cols(self) -> bool:
        return self._schema_has("runs.start_time,end_time", super().has_run_stats_index_cols)

    def has_backfill_id_column(self) -> bool:
        return self._schema_has("runs.backfill_id", super().has_backfill_id_column)

    def has_bulk_actions_selector_cols(self) -> bool:
        return self._schema_has("bulk_actions.selector_id", super().has_bulk_actions_selector_cols)

    def has_bulk_action_job_name_column(self) -> bool:
        return self._schema_has("bulk_actions.job_name", super().has_bulk_action_job_name_column)


class PooledPostgresEventLogStorage(_Pooled, PostgresEventLogStorage):
    """Events (materializations, check results, step events) in PostgreSQL, over kept connections."""

    def has_table(self, table_name: str) -> bool:
        """Asked before every asset event's tags, every check result and every dynamic-partition
        lookup: a tenth of a small run's storage time."""
        return self._schema_has(table_name, partial(super().has_table, table_name))

    def _has_asset_key_col_on_connection(self, conn: Any, column_name: str) -> bool:
        """Asked before each asset's status and each asset row written."""
        ask = partial(super()._has_asset_key_col_on_connection, conn, column_name)
        return self._schema_has(f"asset_keys.{column_name}", ask)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """As a run is created, Dagster plans a materialization for every asset and partition of
        it, in batches of `DAGSTER_EVENT_BATCH_SIZE`; dagster-postgres writes a batch of them
        one event at a time (an insert, a notify and the asset's row, each its own round trip:
        3 ms an event, 18 s for one feed's first load of 706 days). A run of planned
        materializations in a batch is written here as dagster-postgres writes a batch of
        materializations: one insert for the events, then each asset's row once, from its
        last event (the row keeps only the last run and time). Other events go on as before."""
        for planned, group in groupby(events, key=_is_materialization_planned):
            if planned:
                self._store_planned_materializations(list(group))
            else:
                super().store_event_batch(list(group))

    def _store_planned_materializations(self, events: list[EventLogEntry]) -> None:
        with self._connect() as conn:
            insert = self.prepare_insert_event_batch(events)
            rows = conn.execute(insert.returning(insert.table.c.id))
            event_ids = [int(row[0]) for row in rows.fetchall()]
        last_of_asset = {
            event.get_dagster_event().asset_key: (event, event_id) for event, event_id in zip(events, event_ids)
        }
        with self.index_transaction() as conn:
            self._store_asset_event_tags(conn, events, event_ids)
            for event, event_id in last_of_asset.values():
                self._store_asset_event(conn, event, event_id)


class PooledPostgresScheduleStorage(_Pooled, PostgresScheduleStorage):
    """Sensor and schedule ticks and cursors in PostgreSQL, over kept connections."""


def _is_materialization_planned(event: EventLogEntry) -> bool:
    return (
        event.is_dagster_event
        and event.get_dagster_event().event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    )
