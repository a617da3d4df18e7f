"""Merge writes: idempotent, order-independent upserts of documents keyed by their fields.

Why not delete-then-insert: downstream users (the CRM, lead tools) write their own fields
onto our documents, and partitions may be re-run in any order. So a write
- inserts documents that are new (with `insert_many`, much faster than upserts),
- updates existing ones only when their content changed (a content hash per document),
- never lets an older version (the `version_field`, e.g. `modificationTimestamp`) overwrite
  a newer one, enforced in the update filter so concurrent writers are safe too,
- writes `protected_fields` on insert only (`$setOnInsert`), so a re-sync never resets them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from itertools import islice
from typing import Any

import bson
from pymongo import DeleteOne, IndexModel, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000
HASH_FIELD = "_hash"
PARTITION_FIELD = "_partitionKey"
RUN_FIELD = "_runId"
SYNCED_AT_FIELD = "_syncedAt"
PENDING_PREFIX = "_pending_"
META_FIELDS = (HASH_FIELD, RUN_FIELD, SYNCED_AT_FIELD)


def pending_flag(consumer: str) -> str:
    """The field marking a written document as not yet processed by `consumer`."""
    return PENDING_PREFIX + consumer


def clear_pending(collection: Collection, consumer: str, keys: Iterable[tuple], spec: MergeSpec,
                  batch_size: int = 500) -> int:  # fmt: skip
    """`consumer` has processed these documents (call after its own output is stored).

    Selects by key alone: with the flag in the filter too, a server may pick the flag's
    index and scan every flagged document once per batch."""
    flag = pending_flag(consumer)
    cleared = 0
    for batch in batched(keys, batch_size):
        if len(spec.key_fields) == 1:
            query = {spec.key_fields[0]: {"$in": [k[0] for k in batch]}}
        else:
            query = {"$or": [spec.key_filter(k) for k in batch]}
        cleared += collection.update_many(query, {"$unset": {flag: ""}}).modified_count
    return cleared


@dataclass(frozen=True)
class MergeSpec:
    """How documents of one collection are identified, versioned and protected."""

    key_fields: tuple[str, ...]
    version_field: str | None = None
    protected_fields: tuple[str, ...] = ()
    volatile_fields: tuple[str, ...] = ()  # written, but a change in them alone is no change

    def key_of(self, doc: Mapping[str, Any]) -> tuple:
        try:
            return tuple(doc[name] for name in self.key_fields)
        except KeyError as missing:
            raise ValueError(f"document has no key field {missing}: {_preview(doc)}") from None

    def key_filter(self, key: tuple) -> dict:
        return dict(zip(self.key_fields, key, strict=True))


@dataclass
class WriteCounts:
    """What a merge did; `stale` documents lost to a newer stored version."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    removed: int = 0

    def __iadd__(self, other: WriteCounts) -> WriteCounts:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    @property
    def written(self) -> int:
        return self.inserted + self.updated

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged + self.stale

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def content_hash(doc: Mapping[str, Any], exclude: Iterable[str] = ()) -> str:
    """Stable hash of a document's fields (key order does not matter)."""
    skip = set(exclude) | set(META_FIELDS) | {"_id"}
    canonical = {k: doc[k] for k in sorted(doc) if k not in skip and not k.startswith(PENDING_PREFIX)}
    return hashlib.blake2b(bson.encode(_sorted_deep(canonical)), digest_size=16).hexdigest()


def _sorted_deep(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted_deep(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_sorted_deep(v) for v in value]
    return value


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def merge_documents(
    collection: Collection,
    documents: Iterable[Mapping[str, Any]],
    spec: MergeSpec,
    stamp: Mapping[str, Any] | None = None,
    batch_size: int = 1000,
) -> WriteCounts:
    """Merge `documents` into `collection`; `stamp` fields (partition, run) are added to each."""
    counts = WriteCounts()
    for batch in batched(documents, batch_size):
        counts += _merge_batch(collection, batch, spec, dict(stamp or {}))
    return counts


def _merge_batch(
    collection: Collection, batch: Sequence[Mapping[str, Any]], spec: MergeSpec, stamp: dict
) -> WriteCounts:
    counts = WriteCounts()
    latest: dict[tuple, dict] = {}
    for raw in batch:
        doc = {k: v for k, v in raw.items() if k != "_id"}
        doc.update(stamp)
        key = spec.key_of(doc)
        previous = latest.get(key)
        if previous is not None:
            if _is_older(doc, previous, spec):
                counts.stale += 1
                continue
            counts.stale += 1  # superseded by a newer copy in the same batch
        doc[HASH_FIELD] = content_hash(doc, exclude=(RUN_FIELD, SYNCED_AT_FIELD, *spec.volatile_fields))
        latest[key] = doc

    stored = _stored_versions(collection, list(latest), spec)
    inserts: list[dict] = []
    updates: list[tuple[tuple, dict]] = []
    for key, doc in latest.items():
        current = stored.get(key)
        if current is None:
            inserts.append(doc)
        elif _is_older(doc, current, spec):
            counts.stale += 1
        elif current.get(HASH_FIELD) == doc[HASH_FIELD]:
            counts.unchanged += 1
        else:
            updates.append((key, doc))

    retry_as_upsert = _insert(collection, inserts, counts)
    operations = [_update_op(key, doc, spec, upsert=False) for key, doc in updates]
    if operations:
        result = collection.bulk_write(operations, ordered=False)
        counts.updated += result.matched_count
        counts.stale += len(operations) - result.matched_count  # a newer version won meanwhile
    if retry_as_upsert:
        _upsert(collection, [(spec.key_of(d), d) for d in retry_as_upsert], spec, counts)
    return counts


def _insert(collection: Collection, docs: list[dict], counts: WriteCounts) -> list[dict]:
    """Insert new documents; return the ones another writer inserted first."""
    if not docs:
        return []
    try:
        result = collection.insert_many(docs, ordered=False)
        counts.inserted += len(result.inserted_ids)
        return []
    except BulkWriteError as error:
        details = error.details
        counts.inserted += details.get("nInserted", 0)
        lost = []
        for write_error in details.get("writeErrors", []):
            if write_error.get("code") != DUPLICATE_KEY:
                raise
            lost.append(docs[write_error["index"]])
        for doc in lost:
            doc.pop("_id", None)  # insert_many assigned one
        return lost


def _upsert(
    collection: Collection, items: list[tuple[tuple, dict]], spec: MergeSpec, counts: WriteCounts
) -> None:
    operations = [_update_op(key, doc, spec, upsert=True) for key, doc in items]
    try:
        result = collection.bulk_write(operations, ordered=False)
        counts.inserted += result.upserted_count
        counts.updated += result.matched_count
    except BulkWriteError as error:
        details = error.details
        counts.inserted += details.get("nUpserted", 0)
        counts.updated += details.get("nMatched", 0)
        for write_error in details.get("writeErrors", []):
            if write_error.get("code") != DUPLICATE_KEY:
                raise
            counts.stale += 1  # guard filter missed because the stored version is newer


def version_guard(spec: MergeSpec, version: Any) -> dict:
    """Match a stored document only if its version is not newer (missing counts as older).

    Written as one `$not: {$gt}` on the version field, not an `$or`: next to the key's
    equality it keeps the key's index usable (an `$or` made SecantusDB scan the whole
    collection for every update, ~300x slower)."""
    return {spec.version_field: {"$not": {"$gt": version}}}


def _update_op(key: tuple, doc: dict, spec: MergeSpec, upsert: bool) -> UpdateOne:
    query = spec.key_filter(key)
    version = doc.get(spec.version_field) if spec.version_field else None
    if version is not None:
        query.update(version_guard(spec, version))
    protected = set(spec.protected_fields)
    update: dict[str, Any] = {"$set": {k: v for k, v in doc.items() if k not in protected}}
    on_insert = {k: v for k, v in doc.items() if k in protected}
    if upsert and on_insert:
        update["$setOnInsert"] = on_insert
    return UpdateOne(query, update, upsert=upsert)


def _stored_versions(collection: Collection, keys: list[tuple], spec: MergeSpec) -> dict:
    if not keys:
        return {}
    projection = {name: 1 for name in spec.key_fields} | {HASH_FIELD: 1, "_id": 0}
    if spec.version_field:
        projection[spec.version_field] = 1
    if len(spec.key_fields) == 1:
        query = {spec.key_fields[0]: {"$in": [k[0] for k in keys]}}
    else:
        query = {"$or": [spec.key_filter(k) for k in keys]}
    found = {}
    for doc in collection.find(query, projection):
        found[tuple(doc.get(name) for name in spec.key_fields)] = doc
    return found


def _is_older(doc: Mapping[str, Any], other: Mapping[str, Any], spec: MergeSpec) -> bool:
    """True when `doc` carries an older version than `other` (both must have one)."""
    if not spec.version_field:
        return False
    mine, theirs = doc.get(spec.version_field), other.get(spec.version_field)
    if mine is None or theirs is None:
        return False
    try:
        return _comparable(mine) < _comparable(theirs)
    except TypeError:  # incomparable versions (e.g. str vs datetime): let the write through
        return False


def _comparable(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None) - value.utcoffset()
    return value


def evict(collection: Collection, documents: Iterable[Mapping[str, Any]], spec: MergeSpec,
          batch_size: int = 1000) -> int:
    """Delete these documents' keys from a sibling collection (a listing that moved), but
    never a stored version newer than the one that moved. Looks first, so that the usual
    case (nothing to evict) costs one query per batch."""
    removed = 0
    for batch in batched(documents, batch_size):
        present = _stored_versions(collection, [spec.key_of(doc) for doc in batch], spec)
        operations = []
        for doc in batch:
            key = spec.key_of(doc)
            if key not in present:
                continue
            query = spec.key_filter(key)
            version = doc.get(spec.version_field) if spec.version_field else None
            if version is not None:
                query.update(version_guard(spec, version))
            operations.append(DeleteOne(query))
        if operations:
            removed += collection.bulk_write(operations, ordered=False).deleted_count
    return removed


def remove_missing(
    collection: Collection,
    slice_filter: Mapping[str, Any],
    kept_keys: set[tuple],
    spec: MergeSpec,
    batch_size: int = 500,
) -> int:
    """Delete documents of a slice whose keys are not in `kept_keys`; returns how many."""
    projection = {name: 1 for name in spec.key_fields}
    gone = [
        doc["_id"]
        for doc in collection.find(dict(slice_filter), projection)
        if tuple(doc.get(name) for name in spec.key_fields) not in kept_keys
    ]
    removed = 0
    for chunk in batched(gone, batch_size):
        removed += collection.delete_many({"_id": {"$in": chunk}}).deleted_count
    return removed


_ensured_indexes: set[tuple[str, str, str]] = set()


def ensure_indexes(collection: Collection, specs: Iterable[Mapping[str, Any]]) -> None:
    """Create the declared indexes once per process and collection.

    A spec is `{"keys": [["field", 1], ...], "unique": bool, ...}`; any other entries are
    passed to MongoDB as index options (`name`, `sparse`, `expireAfterSeconds`, ...).
    """
    pending = {}
    for spec in specs:
        marker = (collection.database.name, collection.name, repr(sorted(spec.items(), key=str)))
        if marker not in _ensured_indexes:
            pending[marker] = spec
    if not pending:
        return
    # Skip key patterns that already exist: asking again with defaulted options (e.g. a
    # 2dsphere version) is refused by some servers as a conflicting index.
    existing = {tuple((name, order) for name, order in info["key"])
                for info in collection.index_information().values()}  # fmt: skip
    models = []
    for spec in pending.values():
        keys = tuple((name, order) for name, order in spec["keys"])
        if keys not in existing:
            models.append(IndexModel(list(keys), **{k: v for k, v in spec.items() if k != "keys"}))
    if models:
        collection.create_indexes(models)
    _ensured_indexes.update(pending)


def _preview(doc: Mapping[str, Any], limit: int = 200) -> str:
    text = repr({k: doc[k] for k in list(doc)[:8]})
    return text if len(text) <= limit else text[:limit] + "..."
