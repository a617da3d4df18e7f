"""Handing a run's writes to its own consumers without reading them back from the server.

A run's steps share one process (`in_process_executor`). What one step writes to a
collection that a later step of the same run consumes (the raw records, read by the
flattening and the photos; the flattened listings, read by the routing and the CRM) is also
appended, as the BSON the server received, to a spool on local disk, and the consumer reads
the spool instead of the server. On the embedded server those reads took 13 of the 41
seconds of command time of a full sync of 10k listings, mostly waiting behind the inserts;
with spools 6 (measured). A spool costs the client about what decoding the server's answer
did, and holds nothing in memory but an offset per key. A
spool takes the disk its documents take (15 kB a raw record: 670 MB for a first load of 43k
listings, in the temporary directory, `TMPDIR`). A run's spools together stay within
`MLS_HANDOFF_MAX_MB` (1024 by default, whatever the number of feeds a shared run holds): one
that would pass it is given up and removed, and its consumers read the server.

A spool is used only when it holds exactly what the server would answer, which is checked
against the server when it is read, not assumed:
- its writer finished, and every document it sent took effect (no guarded update lost to
  a newer version, no insert another writer won, nothing removed by a tombstone);
- the collection holds no document of the consumer's range outside the spool's sequence
  numbers (an earlier run's writes not yet consumed, a retried step's first attempt): two
  reads of the `_seq` index;
- the collection's document count is what it was when the spool was closed (nothing was
  removed since, e.g. the deletions a source announced).
Otherwise the consumer reads the server, as it always could. A key written twice is read
once, in its last version, as the server would answer.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

import bson
from pymongo.collection import Collection

from mls_assets.lib.catalogue import SEQUENCE_FIELD
from mls_assets.lib.settings import SETTINGS
from mls_assets.lib.store.changes import WriteMarks

LENGTH_BITS = 25  # a BSON document is at most 16 MiB (2**24 bytes)
LENGTH_MASK = (1 << LENGTH_BITS) - 1


def _entry(key: tuple) -> Any:
    """A key as the spool's index holds it: a one-field key as its value."""
    return key[0] if len(key) == 1 else key


class DiskBudget:
    """The local disk a run's spools may take together."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.left = max_bytes, max_bytes


class Spool:
    """One collection's documents as one writer of this run sent them, on local disk."""

    def __init__(
        self, path: str, key_fields: tuple[str, ...], codec_options: Any, budget: DiskBudget, tag: str | None = None
    ) -> None:
        """`tag`: a field whose value is kept beside each document (`documents(tagged=...)`)."""
        self.path, self.key_fields, self._codec_options = path, key_fields, codec_options
        self.tag = tag
        self._budget = budget
        self._file = open(path, "wb")  # noqa: SIM115 - open until the writer is done
        self._size = 0
        # key -> where its last write is, `offset << LENGTH_BITS | length` (one int, not a pair:
        # the index is what a spool holds in memory, 50k entries for a 50k-listing feed)
        self._at: dict[Any, int] = {}
        self._tags: dict[Any, Any] = {}  # key -> the `tag` field's value in its last write
        self.first: int | None = None  # the lowest and highest sequence numbers written
        self.last: int | None = None
        self.spoiled: str | None = None  # why the spool is not what the collection holds
        self.stored: int | None = None  # the collection's document count when the writer finished

    def add(self, doc: dict, data: bytes) -> None:
        """`data`: `doc` as the server received it; its key, `_seq` and tag are read from `doc`."""
        if self.spoiled:
            return
        if len(data) > self._budget.left:
            self.spoil(f"the run's spools would pass {self._budget.max_bytes >> 20} MiB (MLS_HANDOFF_MAX_MB)")
            self.discard()  # its disk back at once: its consumers read the server
            return
        self._budget.left -= len(data)
        self._file.write(data)
        entry = _entry(tuple(doc[name] for name in self.key_fields))
        self._at[entry] = self._size << LENGTH_BITS | len(data)
        if self.tag is not None:
            self._tags[entry] = doc.get(self.tag)
        self._size += len(data)
        seq = doc.get(SEQUENCE_FIELD)
        if seq is not None:
            self.first = seq if self.first is None else min(self.first, seq)
            self.last = seq if self.last is None else max(self.last, seq)

    def spoil(self, why: str) -> None:
        self.spoiled = self.spoiled or why

    def close(self, stored: int | None) -> None:
        """The writer finished: what it wrote is final."""
        self._file.close()
        self.stored = stored

    @property
    def closed(self) -> bool:
        return self._file.closed and self.stored is not None

    def __len__(self) -> int:
        return len(self._at)

    def keeps_tag(self, name: str) -> bool:
        """The spool keeps each document's value of field `name`."""
        return self.tag is not None and self.tag == name

    def documents(self, keys: Iterable[tuple] | None = None, tagged: Any = ...) -> Iterator[dict]:
        """The spooled documents (of these keys; or those whose tag field is `tagged`), each
        key once in its last version, in the order they were written."""
        if tagged is not ...:
            tags = self._tags
            places = sorted(place for entry, place in self._at.items() if tags.get(entry) == tagged)
        elif keys is None:
            places = sorted(self._at.values())
        else:
            places = sorted(self._at[entry] for entry in map(_entry, keys) if entry in self._at)
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            for place in places:
                data = os.pread(descriptor, place & LENGTH_MASK, place >> LENGTH_BITS)
                yield bson.decode(data, codec_options=self._codec_options)
        finally:
            os.close(descriptor)

    def discard(self) -> None:
        self._budget.left += self._size
        self._size = 0
        self._at.clear()
        self._tags.clear()
        if not self._file.closed:
            self._file.close()
        if os.path.exists(self.path):
            os.remove(self.path)


class Handoff:
    """The spools of one run, by collection; removed when the run ends (`close`)."""

    def __init__(self, max_mb: int = SETTINGS.handoff_max_mb) -> None:
        self._budget = DiskBudget(max_mb << 20)
        self._directory: str | None = None
        self._spools: dict[str, Spool] = {}
        self._names = itertools.count()

    def spool(self, collection: Collection, key_fields: tuple[str, ...], tag: str | None = None) -> Spool | None:
        """A new spool for a writer of `collection` (replacing an earlier one of this run);
        None when spools are off (`MLS_HANDOFF_MAX_MB=0`). `tag`: see `Spool`."""
        if self._budget.max_bytes == 0:
            return None
        if self._directory is None:
            self._directory = tempfile.mkdtemp(prefix="mls-handoff-")
            weakref.finalize(self, shutil.rmtree, self._directory, True)  # should `close` never come
        earlier = self._spools.pop(collection.full_name, None)
        if earlier is not None:
            earlier.discard()
        path = os.path.join(self._directory, f"{next(self._names)}.bson")
        self._spools[collection.full_name] = spool = Spool(
            path, key_fields, collection.codec_options, self._budget, tag
        )
        return spool

    def finish(self, collection: Collection, spool: Spool) -> None:
        """The writer of `spool` is done: remember the collection's count as its writers keep it."""
        state = WriteMarks(collection.database).state(collection) or {}
        spool.close(state.get("count"))

    def usable(self, collection: Collection, after: int, upto: int) -> Spool | None:
        """The spool of `collection` if it holds exactly its documents with `_seq` in
        (after, upto] (see the module docstring), else None."""
        spool = self._spools.get(collection.full_name)
        if spool is None or not spool.closed or spool.spoiled:
            return None
        if spool.first is not None and (spool.first <= after or spool.last > upto):
            return None
        if spool.first is None:
            outside = [{"$gt": after, "$lte": upto}]
        else:
            outside = [{"$gt": after, "$lt": spool.first}, {"$gt": spool.last, "$lte": upto}]
        for bounds in outside:
            if collection.find_one({SEQUENCE_FIELD: bounds}, {"_id": 1}) is not None:
                return None
        state = WriteMarks(collection.database).state(collection) or {}
        if state.get("count") is None or state.get("count") != spool.stored:
            return None
        return spool

    def close(self) -> None:
        for spool in self._spools.values():
            spool.discard()
        self._spools.clear()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None
