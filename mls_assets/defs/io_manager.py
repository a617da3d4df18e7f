"""The project's IO manager: every asset's collection is written here, one partition or feed
at a time, through the catalogue (`mls_assets.lib.catalogue`).

An asset names its collection in its definition metadata, `{"collection": "listings"}`;
the catalogue says how that collection is keyed, versioned, protected, indexed, grouped and
which collections are its siblings. The IO manager knows nothing of what listings mean.

Outputs are streams of documents (and `Tombstone`s) for the step's one feed, or a mapping
of partition key or feed key to such streams (a range run over several days, a run over
several feeds), optionally wrapped in `Streamed` to report what the stream saw once it is
stored. Each materialization reports `inserted`, `updated`, `unchanged`, `stale`,
`removed`, documents per day of their version, and Dagster's documented table metadata (`dagster/table_name`, `dagster/partition_row_count`).
Every partition of the run also gets its own figures (a range run's totals would be wrong
on each of its days): `documents` (this run's documents whose version falls in that day)
and, for versioned collections, `dagster/partition_row_count`, the documents stored for
that feed and day (the first day also holds everything older).

Inputs come two ways:
- `AssetIn(metadata={"changes": True})`: a `ChangeSet`, what changed in the upstream
  collection of the step's feeds since this consumer last committed (its own watermark);
  the consumer commits it once its output is stored.
- otherwise: the upstream partition's slice (documents whose version falls in the day of a
  feed-day partition, or the whole feed), in batches, so a large slice never sits in memory.
"""

import functools
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import chain
from typing import Any

import dagster as dg
from pymongo.database import Database

from mls_assets.defs.failures import failing_clearly
from mls_assets.defs.partitions import FIRST_DAY, days_by_feed, split_key
from mls_assets.defs.resources import MongoResource
from mls_assets.lib.catalogue import BY_NAME, CollectionSpec, siblings_of
from mls_assets.lib.gc_during_runs import run_collector
from mls_assets.lib.store.changes import ChangeSet, FeedSequence
from mls_assets.lib.store.handoff import Handoff
from mls_assets.lib.store.naming import FeedKey
from mls_assets.lib.store.writes import BOOKKEEPING, CollectionWriter, WriteCounts

# Dagster's documented table metadata keys (what `TableMetadataSet` writes, without its private import).
TABLE_NAME = "dagster/table_name"
PARTITION_ROW_COUNT = "dagster/partition_row_count"

LOAD_PROJECTION = {name: 0 for name in BOOKKEEPING}


@dataclass
class Streamed:
    """An output stream and what it reports once stored (e.g. pages pulled, rejects)."""

    data: Any
    report: Any = None  # a callable returning metadata, called after the write
    by_partition: Any = None  # a callable returning {partition key: metadata}, after the write
    # A callable run once everything is stored, before Dagster records any materialization:
    # what must follow the write (cursors), and the step's failure when part of it failed.
    settle: Any = None


@contextmanager
def dynamic_partitions_read_once(instance: dg.DagsterInstance) -> Iterator[None]:
    """Dagster checks each partition's metadata against the run's range, and reads every
    feed partition from storage to do so (and asks for each key of the range again): 13 ms at
    1,000 feeds, 450 times in a run over 50 feeds, more with every feed. Within one output the
    partitions do not change: read once."""
    instance.get_dynamic_partitions = functools.lru_cache(maxsize=8)(instance.get_dynamic_partitions)  # type: ignore[method-assign]
    instance.has_dynamic_partition = functools.lru_cache(maxsize=4096)(instance.has_dynamic_partition)  # type: ignore[method-assign]
    try:
        yield
    finally:
        del instance.get_dynamic_partitions, instance.has_dynamic_partition  # the methods again


def spec_of(asset_key: dg.AssetKey, metadata: Mapping[str, Any] | None) -> CollectionSpec:
    meta = {k: getattr(v, "value", v) for k, v in (metadata or {}).items()}
    name = meta.get("collection")
    if name not in BY_NAME:
        raise ValueError(f"asset {asset_key.to_user_string()} names no catalogued collection ({name!r})")
    return BY_NAME[name]


def _partition_keys(context: dg.OutputContext | dg.InputContext) -> list[str]:
    return [str(k) for k in context.asset_partition_keys] if context.has_asset_partitions else []


def _feed_of(key: str, partitions: list[str]) -> FeedKey:
    return FeedKey.parse(split_key(key)[0] if key in partitions or "|" in key else key)


class MongoCollectionIOManager(dg.IOManager):
    """Per-run IO manager; see the module docstring for the storage contract."""

    def __init__(self, database: Database, batch_size: int, uri: str | None = None) -> None:
        self._database = database
        self._batch_size = batch_size
        self._uri = uri
        self._handoff = Handoff()  # what this run wrote, for its own consumers (`store.handoff`)

    def close(self) -> None:
        """The run is over: its spools go."""
        self._handoff.close()

    # -- writing ------------------------------------------------------------------------

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        with failing_clearly(self._uri):
            self._handle_output(context, obj)

    def _handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        spec = spec_of(context.asset_key, context.definition_metadata)
        partitions = _partition_keys(context)
        report = by_partition = settle = None
        if isinstance(obj, Streamed):
            obj, report, by_partition, settle = obj.data, obj.report, obj.by_partition, obj.settle
        if isinstance(obj, Mapping):
            streams = [(_feed_of(str(key), partitions), data) for key, data in obj.items()]
        else:
            feeds = {_feed_of(key, partitions) for key in partitions}
            if len(feeds) != 1:
                raise ValueError(
                    f"{context.asset_key.to_user_string()}: a run over {len(feeds)} feeds must "
                    "return {feed or partition key: documents}"
                )
            streams = [(feeds.pop(), obj)]
        totals, tables, per_feed = WriteCounts(), [], {}
        for feed, data in streams:
            collection = self._database[spec.collection_name(feed)]
            if collection.name not in tables:
                tables.append(collection.name)
            items = iter(data or ())
            first = next(items, None)
            if first is None:  # nothing to write: no index check, no probe
                continue
            spool = self._handoff.spool(collection, spec.key, spec.spool_tag) if spec.spooled else None
            writer = CollectionWriter(
                collection,
                spec,
                siblings=[self._database[s.collection_name(feed)] for s in siblings_of(spec)],
                sequence=FeedSequence(self._database, feed),
                run_id=context.run_id,
                batch_size=self._batch_size,
                spool=spool,
            )
            counts = writer.write(chain([first], items))
            if spool is not None:
                self._handoff.finish(collection, spool)
            totals += counts
            per_feed.setdefault(feed, WriteCounts())
            per_feed[feed] += counts
        if settle is not None:
            settle()
        table_name = ", ".join(f"{self._database.name}.{name}" for name in tables)
        metadata: dict[str, Any] = {**totals.as_dict(), TABLE_NAME: table_name}
        if len(partitions) <= 1 or not spec.version:  # else each partition gets its own count below
            metadata[PARTITION_ROW_COUNT] = totals.written + totals.unchanged
        if totals.by_day:
            metadata["documents_by_day"] = dict(sorted(totals.by_day.items()))
        if report is not None:
            metadata.update(report())
        if len(partitions) > 1:  # the whole run's figures, named so that no day shows them as its own
            metadata = {
                "run_partitions": len(partitions),
                **{k if k.startswith("dagster/") else f"run_{k}": v for k, v in metadata.items()},
            }
        context.add_output_metadata(metadata)
        if partitions:
            own = by_partition() if by_partition is not None else {}
            with dynamic_partitions_read_once(context.step_context.instance):
                for key, figures in self._partition_figures(spec, partitions, per_feed).items():
                    context.step_context.add_asset_metadata(
                        {**figures, **own.get(key, {})}, asset_key=context.asset_key, partition_key=key
                    )

    def _partition_figures(
        self, spec: CollectionSpec, partitions: list[str], per_feed: dict[FeedKey, WriteCounts]
    ) -> dict[str, dict[str, Any]]:
        """Per partition: this run's documents of that day and, for a versioned collection,
        the documents stored for that feed and day (one ranged, projected read per feed)."""
        figures: dict[str, dict[str, Any]] = {}
        for feed_key, days in days_by_feed(partitions).items():
            feed = FeedKey.parse(feed_key)
            written = per_feed.get(feed, WriteCounts()).by_day
            stored = self._stored_per_day(spec, feed, min(days), max(days)) if spec.version else None
            for day, key in days.items():
                figures[key] = {"documents": written.get(day.isoformat(), 0)}
                if stored is not None:
                    figures[key][PARTITION_ROW_COUNT] = stored.get(day, 0)
        return figures

    def _stored_per_day(self, spec: CollectionSpec, feed: FeedKey, first: date, last: date) -> Counter:
        """Documents of `feed` per day of their version in [first, last] (the partitions' first
        day also counts everything older): one read of the version index's range."""
        start = datetime.combine(first, time(), UTC)
        bounds: dict[str, Any] = {"$lt": datetime.combine(last + timedelta(days=1), time(), UTC)}
        if first != FIRST_DAY:
            bounds["$gte"] = start
        found: Counter = Counter()
        cursor = self._database[spec.collection_name(feed)].find({spec.version: bounds}, {spec.version: 1, "_id": 0})
        for doc in cursor.batch_size(10_000):
            version = doc.get(spec.version)
            if isinstance(version, datetime):
                found[max(version.replace(tzinfo=version.tzinfo or UTC).astimezone(UTC).date(), first)] += 1
        return found

    # -- reading ------------------------------------------------------------------------

    def load_input(self, context: dg.InputContext) -> Any:
        with failing_clearly(self._uri):
            return self._load_input(context)

    def _load_input(self, context: dg.InputContext) -> Any:
        upstream = context.upstream_output
        spec = spec_of(context.asset_key, upstream.definition_metadata if upstream else {})
        partitions = _partition_keys(context)
        feeds = sorted({_feed_of(key, partitions) for key in partitions}, key=str)
        input_meta = {k: getattr(v, "value", v) for k, v in (context.definition_metadata or {}).items()}
        if input_meta.get("changes"):
            collections = {feed: self._database[spec.collection_name(feed)] for feed in feeds}
            return ChangeSet.open(
                self._database,
                context.op_def.name,
                collections,
                self._batch_size,
                projection=input_meta.get("projection") or LOAD_PROJECTION,
                handoff=self._handoff,
            )
        return self._slices(spec, partitions)

    def _slices(self, spec: CollectionSpec, partitions: list[str]) -> Iterator[list[dict]]:
        """The documents of each partition: its feed's, with the version in its day."""
        for key in partitions:
            feed_key, day = split_key(key)
            query: dict[str, Any] = {}
            if spec.version:
                start = datetime.combine(day, time(), UTC)
                query[spec.version] = {"$gte": start, "$lt": start + timedelta(days=1)}
            cursor = self._database[spec.collection_name(FeedKey.parse(feed_key))].find(query, LOAD_PROJECTION)
            batch: list[dict] = []
            for doc in cursor.batch_size(self._batch_size):
                batch.append(doc)
                if len(batch) >= self._batch_size:
                    yield batch
                    batch = []
            if batch:
                yield batch


class MongoIOManager(dg.ConfigurableIOManagerFactory):
    """Stores assets in MongoDB collections described by the catalogue."""

    mongo: dg.ResourceDependency[MongoResource]
    batch_size: int = 1000

    def create_io_manager(self, context: dg.InitResourceContext) -> MongoCollectionIOManager:
        return MongoCollectionIOManager(self.mongo.get_database(), self.batch_size, self.mongo.uri)

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[MongoCollectionIOManager]:
        """One IO manager per run, its spools removed when the run ends, failed or not; the
        garbage collector tuned for the run meanwhile (`lib.gc_during_runs`: every run's steps
        write through this manager)."""
        manager = self.create_io_manager(context)
        try:
            with run_collector():
                yield manager
        finally:
            manager.close()
