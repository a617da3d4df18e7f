"""Writing documents to a catalogued collection: each stored document written once per change.

Why not delete-then-insert: downstream users (the CRM, lead tools) write their own fields
onto our documents, and partitions may be re-run in any order. So a write
- inserts documents that are new with `insert_many` (several times faster than upserts);
  into a collection that was empty when the write began it looks nothing up at all;
- updates existing ones only when their content changed (a content hash per document) and
  skips the unchanged without a write (the cheapest write is the one not sent); a document
  only this pipeline writes is replaced whole, one others add fields to gets a `$set`;
- never lets an older version (the collection's version field) overwrite a newer one,
  enforced in the update filter too, so overlapping writers stay safe;
- writes the CRM-owned fields on insert only, and carries them over when a listing moves
  in from a sibling collection (active -> expired), which it then leaves;
- stamps every written document with the feed's write sequence (`_seq`), the bookkeeping
  consumers read changes by, on the same write;
- in a collection that keeps them (flattened listings), records on a changed document the
  fields its earlier versions had and it lacks (`_dropped`); a `$set` of that document into
  a CRM-shared collection removes them there, so a field the source stopped sending (a school,
  a primary photo) does not linger where the websites read it;
- removes what a `Tombstone` names (a listing that left, a vanished photo set), never a
  stored version newer than the tombstone's.
Grouped collections (a listing's photos) are replaced group by group: the documents of a
group in the output are its whole new set.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import bson
import orjson
from bson.raw_bson import RawBSONDocument
from pymongo import DeleteOne, ReplaceOne, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, OperationFailure

from mls_assets.lib.catalogue import SEQUENCE_FIELD, CollectionSpec
from mls_assets.lib.prefetch import prefetched
from mls_assets.lib.store.changes import WriteMarks
from mls_assets.lib.store.handoff import Spool
from mls_assets.lib.store.indexes import ensure_indexes
from mls_assets.lib.store.lookup import GROUP_IN_CHUNK, IN_CHUNK

DUPLICATE_KEY = 11000
HASH_FIELD = "_hash"
RUN_FIELD = "_runId"
BOOKKEEPING = (HASH_FIELD, RUN_FIELD, SEQUENCE_FIELD, "_id")
BOOKKEEPING_SET = frozenset(BOOKKEEPING)
DROPPED_FIELD = "_dropped"  # read with the document (its consumers need it), never part of its content
NOT_CONTENT = BOOKKEEPING_SET | {DROPPED_FIELD}
LOOKUP_CHUNK = IN_CHUNK  # `$in` slows down superlinearly with its length on the embedded server
SCAN_ABOVE = 2000  # more keys than this: one projected scan of the collection beats point lookups


@dataclass(frozen=True)
class Tombstone:
    """Remove the document with this key (a group's documents, for a grouped collection),
    unless the stored version is newer than `version`."""

    key: tuple
    version: Any = None


@dataclass(frozen=True)
class Patch:
    """Field updates to a document another system owns (a CRM property): set, unset, rename
    and push exactly these fields; never insert."""

    key: tuple
    set: dict[str, Any] = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    rename: dict[str, str] = field(default_factory=dict)
    push: dict[str, Any] = field(default_factory=dict)

    def update(self) -> dict[str, Any]:
        update: dict[str, Any] = {}
        if self.rename:
            update["$rename"] = dict(self.rename)
        if self.set:
            update["$set"] = dict(self.set)
        if self.unset:
            update["$unset"] = {name: "" for name in self.unset}
        if self.push:
            update["$push"] = dict(self.push)
        return update


@dataclass
class WriteCounts:
    """What a write did; `stale` documents lost to a newer stored version."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    removed: int = 0
    by_day: Counter = field(default_factory=Counter)  # documents of the output per version day

    def __iadd__(self, other: WriteCounts) -> WriteCounts:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    @property
    def written(self) -> int:
        return self.inserted + self.updated

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "by_day"}


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def content_hash(doc: Mapping[str, Any], exclude: Iterable[str] = ()) -> str:
    """Stable hash of a document's fields (key order does not matter)."""
    skip = BOOKKEEPING_SET.union(exclude)
    content = doc if skip.isdisjoint(doc) else {k: v for k, v in doc.items() if k not in skip}  # no copy when clean
    try:
        payload = orjson.dumps(content, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):  # integers beyond 64 bits: the slow, exact path
        payload = json.dumps(content, sort_keys=True, default=str).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(payload, digest_size=16).hexdigest()


def version_guard(spec: CollectionSpec, version: Any) -> dict:
    """Match a stored document only if its version is not newer (missing counts as older).

    One `$not: {$gt}` on the version field, not an `$or`: next to the key's equality it keeps
    the key's index usable (an `$or` made the embedded server scan the collection)."""
    return {spec.version: {"$not": {"$gt": version}}} if spec.version and version is not None else {}


def _comparable(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None) - value.utcoffset()
    return value


def is_older(version: Any, than: Any) -> bool:
    if version is None or than is None:
        return False
    try:
        return _comparable(version) < _comparable(than)
    except TypeError:  # incomparable versions: let the write through
        return False


class Sequencer:
    """Hands out write sequence numbers (see `mls_assets.lib.store.changes.FeedSequence`)."""

    def take(self, count: int) -> int:  # pragma: no cover - an interface
        raise NotImplementedError


@dataclass
class _GroupPlan:
    """A batch of groups ready to send: see `CollectionWriter._group_plan`."""

    docs: list[dict]
    written: list
    removed: list
    counts: WriteCounts = field(default_factory=WriteCounts)
    sent: list = field(default_factory=list)


class CollectionWriter:
    """Writes a stream of documents and tombstones to one collection of one feed."""

    def __init__(
        self,
        collection: Collection,
        spec: CollectionSpec,
        *,
        siblings: Sequence[Collection] = (),
        sequence: Sequencer | None = None,
        run_id: str = "",
        batch_size: int = 1000,
        spool: Spool | None = None,
    ) -> None:
        """`spool`: where the documents written are also handed to this run's consumers
        (`mls_assets.lib.store.handoff`); it is spoiled by any write that may not have taken effect."""
        self.collection, self.spec = collection, spec
        self.spool = spool
        self.sequence = sequence if spec.sequenced else None
        self.run_id, self.batch_size = run_id, batch_size
        self.marks = WriteMarks(collection.database)
        state = self.marks.state(collection)
        if state is not None and not state.get("indexed", True):
            self._repair()  # a first load that never finished
        # A collection never written before is loaded in bulk: no lookups, and its indexes
        # are built once the load is complete (several times faster than inserting into
        # indexed collections on the embedded server). Skipping lookups is always safe: a key
        # seen twice is resolved here, and a unique index turns a surprise duplicate into a
        # guarded upsert.
        self.bulk = state is None
        self.empty = self.bulk
        self._loaded: dict[tuple, Any] = {}  # bulk load: key (or group) -> version written
        if self.bulk:
            empty = collection.find_one({}, {"_id": 1}) is None  # never written: at most feed discovery's empty one
            self.marks.loading(collection, run_id, empty)
            if empty:
                collection.drop_indexes()  # made empty by feed discovery: rebuilt once the load is in
        else:
            ensure_indexes(collection, spec.all_indexes())
        # Siblings first loaded by this same run hold only this run's other documents, which
        # the producer routed elsewhere (each key lives in one member): nothing to look up.
        self.live_siblings = []
        for sibling in siblings:
            mark = self.marks.state(sibling)
            if mark is not None and not (mark.get("loadedBy") == run_id and run_id):
                self.live_siblings.append(sibling)
        self._last_seq = 0
        self._left_siblings: Counter = Counter()  # sibling collection -> documents moved out of it

    def write(self, items: Iterable[Mapping[str, Any] | Tombstone]) -> WriteCounts:
        counts = WriteCounts()
        # The producer (the asset's transform and its reads) makes the next batch while this
        # one is written: the server's time and the client's overlap. A key is in one batch
        # only, so no batch reads what an earlier one is still writing. Groups are also
        # prepared there (stamped and encoded): this thread only sends them.
        if self.spec.group:
            self._spoil("groups are not spooled")
            for plan in prefetched(self._group_plan(batch) for batch in self._whole_groups(items)):
                counts += self._apply_groups(plan)
        else:
            write = self._patch_batch if self.spec.patched else self._keyed_batch
            for batch in prefetched(batched(items, self.batch_size)):
                counts += write(batch)
        if self.bulk:
            self._build_indexes()
        if counts.written or self.bulk:
            self.marks.record(self.collection, self._last_seq)
        if not self.spec.patched:
            self.marks.adjust_count(self.collection, counts.inserted - counts.removed)
        for sibling, left in self._left_siblings.items():
            self.marks.adjust_count(sibling, -left)
        return counts

    def _build_indexes(self) -> None:
        try:
            ensure_indexes(self.collection, self.spec.all_indexes())
        except OperationFailure as error:
            if error.code != DUPLICATE_KEY:
                raise
            self._repair()

    def _repair(self) -> None:
        """Keep the newest document per key (a first load that stopped midway may have
        stored some twice), then build the indexes."""
        newest: dict[tuple, dict] = {}
        extra = []
        projection = {name: 1 for name in self.spec.key} | ({self.spec.version: 1} if self.spec.version else {})
        for doc in self.collection.find({}, projection):
            key = tuple(doc.get(name) for name in self.spec.key)
            kept = newest.get(key)
            if kept is None:
                newest[key] = doc
            elif is_older(kept.get(self.spec.version), doc.get(self.spec.version)):
                extra.append(kept["_id"])
                newest[key] = doc
            else:
                extra.append(doc["_id"])
        for chunk in batched(extra, LOOKUP_CHUNK):
            self.collection.delete_many({"_id": {"$in": chunk}})
        ensure_indexes(self.collection, self.spec.all_indexes())
        self.marks.record(self.collection)
        self.marks.recount(self.collection)

    # -- shared -------------------------------------------------------------------------

    def key_of(self, doc: Mapping[str, Any]) -> tuple:
        key = self.spec.key
        try:  # once or twice per written document: no generator for the common one-field key
            return (doc[key[0]],) if len(key) == 1 else tuple([doc[name] for name in key])
        except KeyError as missing:
            raise ValueError(f"a document for {self.collection.name} has no key field {missing}") from None

    def _key_filter(self, key: tuple) -> dict:
        if self.spec.key_is_id:
            return {"_id": key[0]}
        return dict(zip(self.spec.key, key, strict=True))

    def _lookup(self, collection: Collection, keys: list[tuple], extra: Iterable[str] = ()) -> dict[tuple, dict]:
        projection = {name: 1 for name in (*self.spec.key, HASH_FIELD, *extra)} | {"_id": 0}
        if self.spec.version:
            projection[self.spec.version] = 1
        found: dict[tuple, dict] = {}
        for chunk in batched(keys, LOOKUP_CHUNK):
            for doc in collection.find(self._keys_query(chunk), projection):
                found[tuple(doc.get(name) for name in self.spec.key)] = doc
        return found

    def _keys_query(self, keys: list[tuple]) -> dict:
        if len(self.spec.key) == 1:
            return {self.spec.key[0]: {"$in": [k[0] for k in keys]}}
        return {"$or": [self._key_filter(k) for k in keys]}

    def _note_dropped(self, docs: list[dict]) -> None:
        """Give each changed document the fields its stored version had, or had dropped
        before, that it lacks (`DROPPED_FIELD`): what a `$set` of it elsewhere must remove.
        One read of the changed documents, whole (the embedded server's projections cost more
        than the fields)."""
        by_key = {self.key_of(doc): doc for doc in docs}
        for chunk in batched(list(by_key), LOOKUP_CHUNK):
            for stored in self.collection.find(self._keys_query(chunk)):
                doc = by_key.get(tuple(stored.get(name) for name in self.spec.key))
                if doc is None:
                    continue
                gone = (stored.keys() | set(stored.get(DROPPED_FIELD) or ())) - doc.keys() - NOT_CONTENT
                if gone:
                    doc[DROPPED_FIELD] = sorted(gone)

    def _stamp(self, docs: list[dict]) -> None:
        if self.sequence is not None and docs:
            first = self.sequence.take(len(docs))
            for offset, doc in enumerate(docs):
                doc[SEQUENCE_FIELD] = first + offset
            self._last_seq = first + len(docs) - 1
        for doc in docs:
            doc[RUN_FIELD] = self.run_id

    def _count_days(self, docs: Iterable[Mapping[str, Any]], counts: WriteCounts) -> None:
        if self.spec.version:
            for doc in docs:
                version = doc.get(self.spec.version)
                if isinstance(version, datetime):
                    counts.by_day[version.astimezone(UTC).date().isoformat()] += 1

    # -- documents merged one by one ------------------------------------------------------

    def _keyed_batch(self, batch: list) -> WriteCounts:
        counts = WriteCounts()
        tombstones = [item for item in batch if isinstance(item, Tombstone)]
        latest: dict[tuple, dict] = {}
        dropped: dict[tuple, list | None] = {}  # key -> what its upstream document says the source dropped
        for item in batch:
            if isinstance(item, Tombstone):
                continue
            # a copy: the stamps below must not change the producer's document (a C-level copy
            # when it carries no bookkeeping, the common case)
            doc = (
                dict(item)
                if BOOKKEEPING_SET.isdisjoint(item)
                else {k: v for k, v in item.items() if k not in BOOKKEEPING}
            )
            gone = doc.pop(DROPPED_FIELD, None)
            key = self.key_of(doc)
            previous = latest.get(key)
            if previous is not None:
                counts.stale += 1  # two copies in one batch: the newer wins
                if is_older(doc.get(self.spec.version), previous.get(self.spec.version)):
                    continue
            doc[HASH_FIELD] = content_hash(doc, exclude=self.spec.volatile)
            latest[key] = doc
            dropped[key] = gone
        self._count_days(latest.values(), counts)

        keys = list(latest)
        if self.bulk:  # nothing was stored before this write: only what it wrote itself
            stored = {
                key: {self.spec.version: self._loaded[key], HASH_FIELD: None} for key in keys if key in self._loaded
            }
        else:
            stored = self._lookup(self.collection, keys)
        in_siblings: dict[tuple, dict] = {}
        for sibling in self.live_siblings:
            for key, doc in self._lookup(sibling, keys, self.spec.protected).items():
                held = in_siblings.get(key)
                if held is None or is_older(held.get(self.spec.version), doc.get(self.spec.version)):
                    in_siblings[key] = doc
        inserts, updates, leaving_siblings = [], [], []
        for key, doc in latest.items():
            version = doc.get(self.spec.version) if self.spec.version else None
            elsewhere = in_siblings.get(key)
            if elsewhere is not None and is_older(version, elsewhere.get(self.spec.version)):
                counts.stale += 1  # a newer version lives in a sibling: never go back
                continue
            current = stored.get(key)
            if current is None:
                if elsewhere is not None:  # moving in: what the CRM wrote moves with it
                    doc.update({name: elsewhere[name] for name in self.spec.protected if name in elsewhere})
                inserts.append(doc)
            elif is_older(version, current.get(self.spec.version)):
                counts.stale += 1
                continue
            elif current.get(HASH_FIELD) == doc[HASH_FIELD]:
                counts.unchanged += 1
            else:
                updates.append(doc)
            if elsewhere is not None:
                leaving_siblings.append((key, version))

        if updates and self.spec.keeps_dropped:
            self._note_dropped(updates)
        self._stamp(inserts + updates)
        if self.bulk:
            self._loaded.update((self.key_of(doc), doc.get(self.spec.version)) for doc in inserts + updates)
        if updates and self.spec.protected:  # a `$set` keeps fields the spooled document lacks
            self._spoil("updates that keep fields of the stored document")
        self._spooled(updates)
        retry = self._insert(inserts, counts)
        operations = [self._update(doc, upsert=False, dropped=dropped.get(self.key_of(doc))) for doc in updates]
        operations += [self._update(doc, upsert=True) for doc in retry]
        if operations:
            self._bulk(operations, counts)
        for sibling in self.live_siblings:
            removals = [
                DeleteOne({**self._key_filter(key), **version_guard(self.spec, version)})
                for key, version in leaving_siblings
            ]
            if removals:
                self._left_siblings[sibling] += sibling.bulk_write(removals, ordered=False).deleted_count
        if tombstones and not self.empty:
            removals = [
                DeleteOne({**self._key_filter(t.key), **version_guard(self.spec, t.version)}) for t in tombstones
            ]
            removed = self.collection.bulk_write(removals, ordered=False).deleted_count
            counts.removed += removed
            if removed:
                self._spoil("documents removed")
        return counts

    def _spoil(self, why: str) -> None:
        if self.spool is not None:
            self.spool.spoil(why)

    def _spooled(self, docs: list[dict], inserts: bool = False) -> list[dict] | list[RawBSONDocument]:
        """Hand `docs` to the spool as BSON, built once; inserts are then sent as that BSON
        (their `_id` made here, as the driver would). Without a live spool: `docs`, untouched."""
        if self.spool is None or self.spool.spoiled:
            return docs
        raws = []
        for doc in docs:
            data = self._encode(doc, with_id=inserts)
            self.spool.add(doc, data)
            raws.append(RawBSONDocument(data))
        return raws if inserts else docs

    def _encode(self, doc: dict, with_id: bool) -> bytes:
        """`doc` as BSON, built once; `with_id`: given its `_id` here first, as the driver
        would on insert."""
        if with_id and "_id" not in doc:
            doc["_id"] = bson.ObjectId()
        return bson.encode(doc, codec_options=self.collection.codec_options)

    def _update(self, doc: dict, upsert: bool, dropped: Iterable[str] | None = None) -> UpdateOne | ReplaceOne:
        """The guarded write of a changed document. A collection no one else writes to (no
        CRM-owned fields) has its documents replaced: a field the source stopped sending (a
        school, a removed primary photo) must not linger, and a replacement costs the server
        less than a `$set` of every field (310 against 136 documents/s with a status
        collection's indexes, measured). Elsewhere the CRM's fields, and any field another
        system added, stay: a `$set` of ours, and an `$unset` of the fields of ours the source
        stopped sending (`dropped`, what the upstream document recorded)."""
        key = self.key_of(doc)
        query = {**self._key_filter(key), **version_guard(self.spec, doc.get(self.spec.version))}
        if not self.spec.protected:
            return ReplaceOne(query, doc, upsert=upsert)
        protected = set(self.spec.protected)
        update: dict[str, Any] = {"$set": {k: v for k, v in doc.items() if k not in protected}}
        gone = [name for name in dropped or () if name not in protected and name not in doc]
        if gone:
            update["$unset"] = {name: "" for name in gone}
        on_insert = {k: v for k, v in doc.items() if k in protected}
        if upsert and on_insert:
            update["$setOnInsert"] = on_insert
        return UpdateOne(query, update, upsert=upsert)

    def _insert(self, docs: list[dict], counts: WriteCounts, sent: list | None = None) -> list[dict]:
        """Insert new documents (`sent`: as already encoded); return the ones another writer
        stored first."""
        if not docs:
            return []
        sent = self._spooled(docs, inserts=True) if sent is None else sent
        try:
            self.collection.insert_many(sent, ordered=False)
            counts.inserted += len(docs)
            return []
        except BulkWriteError as error:
            self._spoil("an insert another writer won")
            counts.inserted += error.details.get("nInserted", 0)
            lost = []
            for write_error in error.details.get("writeErrors", []):
                if write_error.get("code") != DUPLICATE_KEY:
                    raise
                lost.append(docs[write_error["index"]])
            for doc in lost:
                doc.pop("_id", None)  # insert_many assigned one
            return lost

    def _bulk(self, operations: list, counts: WriteCounts) -> None:
        """Guarded updates (and upserts for inserts another writer won): what matches nothing
        lost to a newer stored version."""
        try:
            result = self.collection.bulk_write(operations, ordered=False)
            matched, upserted = result.matched_count, result.upserted_count
        except BulkWriteError as error:
            if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                raise
            matched, upserted = error.details.get("nMatched", 0), error.details.get("nUpserted", 0)
        if matched + upserted < len(operations):
            self._spoil("a guarded update lost to a newer version")
        counts.updated += matched
        counts.inserted += upserted
        counts.stale += len(operations) - matched - upserted

    # -- documents owned elsewhere, patched field by field ---------------------------------

    def _patch_batch(self, batch: list) -> WriteCounts:
        self._spoil("patches are not spooled")
        counts = WriteCounts()
        operations = [UpdateOne(self._key_filter(p.key), p.update()) for p in batch if p.update()]
        if operations:
            result = self.collection.bulk_write(operations, ordered=False)
            counts.updated += result.modified_count
            counts.unchanged += result.matched_count - result.modified_count
            counts.stale += len(operations) - result.matched_count  # the document is gone
        return counts

    # -- documents replaced group by group ------------------------------------------------

    def _whole_groups(self, items: Iterable[Mapping[str, Any] | Tombstone]) -> Iterator[list]:
        """Batches that never split a group (a batch replaces each group it holds)."""
        batch: list = []
        last = None
        for item in items:
            group = item.key[0] if isinstance(item, Tombstone) else item[self.spec.group]
            if len(batch) >= self.batch_size and group != last:
                yield batch
                batch = []
            batch.append(item)
            last = group
        if batch:
            yield batch

    def _group_plan(self, batch: list) -> _GroupPlan:
        """A batch of groups made ready to send (in the producer's thread): its documents
        stamped and encoded, the groups it replaces. Nothing is written here."""
        group = self.spec.group
        docs = [
            item if BOOKKEEPING_SET.isdisjoint(item) else {k: v for k, v in item.items() if k not in BOOKKEEPING}
            for item in batch
            if not isinstance(item, Tombstone)
        ]
        if self.spec.key_is_id:
            for doc in docs:
                doc["_id"] = doc[self.spec.key[0]]
        written = sorted({doc[group] for doc in docs})
        removed = sorted({t.key[0] for t in batch if isinstance(t, Tombstone)} | set(written))
        if self.bulk:  # only groups this load already wrote can be replaced
            removed = [value for value in removed if (value,) in self._loaded]
            self._loaded.update(((value,), None) for value in written)
        plan = _GroupPlan(docs, written, removed)
        self._stamp(docs)
        self._count_days(docs, plan.counts)
        plan.sent = [RawBSONDocument(self._encode(doc, with_id=True)) for doc in docs]
        return plan

    def _apply_groups(self, plan: _GroupPlan) -> WriteCounts:
        """Replace the planned groups: their old documents out (and out of the siblings they
        move from), the new ones in."""
        counts, group = plan.counts, self.spec.group
        for chunk in batched(plan.removed, GROUP_IN_CHUNK):
            counts.removed += self.collection.delete_many({group: {"$in": chunk}}).deleted_count
        for sibling in self.live_siblings:  # a group moving in leaves its old collection
            for chunk in batched(plan.written, GROUP_IN_CHUNK):
                self._left_siblings[sibling] += sibling.delete_many({group: {"$in": chunk}}).deleted_count
        retry = self._insert(plan.docs, counts, sent=plan.sent)
        if retry:  # another writer stored these first: this write's set wins
            self.collection.bulk_write([ReplaceOne(self._key_filter(self.key_of(d)), d, upsert=True) for d in retry])
            counts.inserted += len(retry)
        return counts
