"""The project's IO manager: asset outputs merged into MongoDB collections, per partition.

An asset tells the IO manager how to store it through its definition metadata:

- `collection`: name or template, e.g. `{tenant}_{mls}_listings` (filled from the `feed`
  partition dimension); default: `{tenant}_{mls}_<asset name>` for feed-partitioned
  assets, else the asset name;
- `key_fields`: fields that identify a document (default `["_key"]`);
- `version_field`: e.g. `modificationTimestamp`; an older version never overwrites a newer;
- `protected_fields`: written on insert only (CRM/lead fields);
- `volatile_fields`: written, but a change in them alone does not count as a change;
- `evicts_from`: templates of sibling collections that must not hold a written key any
  more (a listing moving between status collections): written first, then evicted;
- `indexes`: `[{"keys": [["field", 1]], "unique": true, ...}]`, created once;
- `remove_missing`: delete documents of the partition's slice that the output no longer has;
- `pending_for`: names of downstream consumers; every document written (inserted or
  changed) is flagged `_pending_<consumer>`, and an input with
  `AssetIn(metadata={"pending_only": "<consumer>"})` loads only flagged documents of its
  partitions. The consumer clears the flags once its own output is stored
  (`clear_pending`), so a failed run leaves them for the retry, and a re-run of an
  unchanged partition has nothing to do.

Outputs may be a list of dicts, a DataFrame, an iterator of batches of either, or (for a
run over a partition range) a mapping of partition key to such data, or documents that
carry their partition key in `_partitionKey`. Each document is stamped with its
partition key so that a partition's slice can be loaded back: as a DataFrame when the
downstream input is annotated `pd.DataFrame`, else as a list of dicts; an input with
`AssetIn(metadata={"load_as": "batches"})` gets an iterator of lists instead, so a
large slice never sits in memory whole.
"""


import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pandas as pd
from pymongo.collection import Collection
from pymongo.database import Database

from mls_assets.defs.failures import failing_clearly
from mls_assets.defs.resources import MongoResource
from mls_assets.lib.store.documents import CommitAfterWrite, iter_documents
from mls_assets.lib.store.merge import (
    HASH_FIELD,
    PARTITION_FIELD,
    RUN_FIELD,
    SYNCED_AT_FIELD,
    MergeSpec,
    WriteCounts,
    ensure_indexes,
    evict,
    merge_documents,
    pending_flag,
    remove_missing,
)
from mls_assets.lib.store.naming import render_collection

DEFAULT_KEY_FIELD = "_key"
LOAD_PROJECTION = {"_id": 0, HASH_FIELD: 0, RUN_FIELD: 0, SYNCED_AT_FIELD: 0}


@dataclass(frozen=True)
class CollectionSpec:
    """How one asset is stored, read from its definition metadata."""

    template: str
    merge: MergeSpec
    indexes: tuple[Mapping[str, Any], ...]
    remove_missing: bool
    evicts_from: tuple[str, ...] = ()
    pending_for: tuple[str, ...] = ()

    @classmethod
    def from_metadata(cls, asset_name: str, metadata: Mapping[str, Any], by_feed: bool):
        meta = {k: getattr(v, "value", v) for k, v in (metadata or {}).items()}
        default_template = f"{{tenant}}_{{mls}}_{asset_name}" if by_feed else asset_name
        key_fields = tuple(meta.get("key_fields") or (DEFAULT_KEY_FIELD,))
        merge = MergeSpec(
            key_fields=key_fields,
            version_field=meta.get("version_field"),
            protected_fields=tuple(meta.get("protected_fields") or ()),
            volatile_fields=tuple(meta.get("volatile_fields") or ()),
        )
        pending_for = tuple(meta.get("pending_for") or ())
        indexes = (
            {"keys": [[name, 1] for name in key_fields], "unique": True},
            {"keys": [[PARTITION_FIELD, 1]]},
            *({"keys": [[pending_flag(c), 1], [PARTITION_FIELD, 1]], "sparse": True} for c in pending_for),
            *(meta.get("indexes") or ()),
        )
        return cls(
            template=meta.get("collection") or default_template,
            merge=merge,
            indexes=tuple(indexes),
            remove_missing=bool(meta.get("remove_missing", False)),
            evicts_from=tuple(meta.get("evicts_from") or ()),
            pending_for=pending_for,
        )


def _dimensions(partition_key: str | dg.MultiPartitionKey | None) -> dict[str, str]:
    if partition_key is None:
        return {}
    if isinstance(partition_key, dg.MultiPartitionKey):
        return dict(partition_key.keys_by_dimension)
    return {"partition": str(partition_key)}


def _partition_keys(context: dg.OutputContext | dg.InputContext) -> list[Any]:
    """Every partition the step covers: one key, or all keys of a range (never call
    `asset_partition_key` on a range)."""
    if not context.has_asset_partitions:
        return [None]
    return list(context.asset_partition_keys)


class MongoCollectionIOManager(dg.IOManager):
    """Per-run IO manager; see the module docstring for the storage contract."""

    def __init__(self, database: Database, batch_size: int, uri: str | None = None) -> None:
        self._database = database
        self._batch_size = batch_size
        self._uri = uri

    # -- where things go ----------------------------------------------------------------

    def _spec(self, asset_key: dg.AssetKey, metadata: Mapping[str, Any], keys: Sequence) -> CollectionSpec:
        by_feed = any("feed" in _dimensions(k) for k in keys)
        return CollectionSpec.from_metadata(asset_key.path[-1], metadata, by_feed)

    def _collection(self, spec: CollectionSpec, partition_key: Any) -> Collection:
        name = render_collection(spec.template, _dimensions(partition_key))
        collection = self._database[name]
        ensure_indexes(collection, spec.indexes)
        return collection

    # -- writing ------------------------------------------------------------------------

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        with failing_clearly(self._uri):
            self._handle_output(context, obj)

    def _handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            context.log.info("asset returned None: nothing stored")
            return
        started = time.monotonic()
        keys = _partition_keys(context)
        spec = self._spec(context.asset_key, context.definition_metadata, keys)
        stamp_base = {RUN_FIELD: context.run_id, SYNCED_AT_FIELD: datetime.now(UTC)}

        totals = WriteCounts()
        rows = 0
        tables: list[str] = []
        for key, documents in self._split_by_partition(obj, keys):
            collection = self._collection(spec, key)
            stamp = dict(stamp_base)
            stamp.update({pending_flag(consumer): True for consumer in spec.pending_for})
            if key is not None:
                stamp[PARTITION_FIELD] = str(key)
            kept: set[tuple] = set()
            written: list[Mapping[str, Any]] = []
            counted = _track_keys(documents, spec.merge, kept, written if spec.evicts_from else None)
            counts = merge_documents(collection, counted, spec.merge, stamp, self._batch_size)
            for template in spec.evicts_from:
                sibling = self._database[render_collection(template, _dimensions(key))]
                evicted = evict(sibling, written, spec.merge)
                counts.removed += evicted
            if spec.remove_missing and key is not None:
                counts.removed += remove_missing(
                    collection, {PARTITION_FIELD: str(key)}, kept, spec.merge
                )
            totals += counts
            rows += len(kept)
            name = f"{self._database.name}.{collection.name}"
            if name not in tables:
                tables.append(name)

        stream_metadata: dict[str, Any] = {}
        if isinstance(obj, CommitAfterWrite):
            if obj.on_commit is not None:
                obj.on_commit()  # everything is stored: now it may count as done
            if obj.metadata is not None:
                stream_metadata = obj.metadata()
        metadata: dict[str, Any] = {
            **stream_metadata,
            **totals.as_dict(),
            "dagster/table_name": ", ".join(tables),
            "collections": tables,
            "duration_s": round(time.monotonic() - started, 3),
        }
        if keys == [None]:
            metadata["dagster/row_count"] = collection.estimated_document_count()
        else:
            metadata["dagster/partition_row_count"] = rows
        context.add_output_metadata(metadata)

    def _split_by_partition(self, obj: Any, keys: list[Any]) -> Iterator[tuple[Any, Any]]:
        by_name = {str(k): k for k in keys}
        if isinstance(obj, CommitAfterWrite):
            obj = obj.data
        if len(keys) == 1:
            single = keys[0]
            if isinstance(obj, Mapping) and set(obj) == {str(single)}:
                obj = obj[str(single)]
            yield single, obj
            return
        if isinstance(obj, Mapping) and obj and set(map(str, obj)) <= set(by_name):
            for name, data in obj.items():
                yield by_name[str(name)], data
            return
        # A flat range output: each document names its partition.
        groups: dict[str, list] = defaultdict(list)
        for doc in iter_documents(obj):
            name = doc.get(PARTITION_FIELD)
            if name not in by_name:
                raise ValueError(
                    f"a run over {len(keys)} partitions must return {{partition_key: data}} or "
                    f"documents with '{PARTITION_FIELD}' in the range; got {name!r}"
                )
            groups[name].append(doc)
        for name, docs in groups.items():
            yield by_name[name], docs

    # -- reading ------------------------------------------------------------------------

    def load_input(self, context: dg.InputContext) -> Any:
        with failing_clearly(self._uri):
            return self._load_input(context)

    def _load_input(self, context: dg.InputContext) -> Any:
        upstream = context.upstream_output
        keys = _partition_keys(context)
        spec = self._spec(context.asset_key, upstream.definition_metadata if upstream else {}, keys)
        input_meta = {k: getattr(v, "value", v) for k, v in (context.definition_metadata or {}).items()}
        pending_only = input_meta.get("pending_only")
        batches = self._iter_batches(spec, keys, pending_flag(pending_only) if pending_only else None)
        load_as = input_meta.get("load_as")
        if load_as is None:
            wanted = getattr(context.dagster_type, "typing_type", None)
            load_as = "dataframe" if wanted is pd.DataFrame else "list"
        if load_as == "batches":
            return batches
        documents = [doc for batch in batches for doc in batch]
        if load_as == "dataframe":
            return pd.DataFrame(documents)
        if load_as == "list":
            return documents
        raise ValueError(f"load_as must be 'list', 'dataframe' or 'batches', not {load_as!r}")

    def _iter_batches(self, spec: CollectionSpec, keys: list[Any], flag: str | None) -> Iterator[list[dict]]:
        for key in keys:
            collection = self._collection(spec, key)
            query = {} if key is None else {PARTITION_FIELD: str(key)}
            if flag:
                query[flag] = True
            order = [(name, 1) for name in spec.merge.key_fields]
            projection = {**LOAD_PROJECTION, **{pending_flag(c): 0 for c in spec.pending_for}}
            cursor = collection.find(query, projection).sort(order)
            cursor = cursor.batch_size(self._batch_size)
            batch: list[dict] = []
            for doc in cursor:
                batch.append(doc)
                if len(batch) >= self._batch_size:
                    yield batch
                    batch = []
            if batch:
                yield batch


def _track_keys(
    documents: Any, spec: MergeSpec, kept: set[tuple], written: list | None
) -> Iterator[Mapping[str, Any]]:
    version = spec.version_field
    for doc in iter_documents(documents):
        kept.add(spec.key_of(doc))
        if written is not None:
            written.append({**spec.key_filter(spec.key_of(doc)), **({version: doc.get(version)} if version else {})})
        yield doc


class MongoIOManager(dg.ConfigurableIOManagerFactory):
    """Stores assets in MongoDB with merge writes keyed by each asset's key fields."""

    mongo: dg.ResourceDependency[MongoResource]
    batch_size: int = 1000

    def create_io_manager(self, context: dg.InitResourceContext) -> MongoCollectionIOManager:
        return MongoCollectionIOManager(self.mongo.get_database(), self.batch_size, self.mongo.uri)
