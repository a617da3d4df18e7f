"""Indexes: the declared ones created where they are missing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pymongo import IndexModel
from pymongo.collection import Collection


def ensure_indexes(collection: Collection, specs: Iterable[Mapping[str, Any]]) -> None:
    """Create the declared indexes that the collection lacks (one round trip when none is
    missing; never cached, so a collection dropped and recreated gets its indexes back).

    A spec is `{"keys": [["field", 1], ...], "unique": bool, ...}`; any other entries are
    passed to MongoDB as index options (`name`, `sparse`, `expireAfterSeconds`, ...). Key
    patterns that already exist are skipped: asking again with defaulted options (e.g. a
    2dsphere version) is refused by some servers as a conflicting index.
    """
    existing = {tuple((name, order) for name, order in info["key"]) for info in collection.index_information().values()}
    models = []
    for spec in specs:
        keys = tuple((name, order) for name, order in spec["keys"])
        if keys not in existing:
            models.append(IndexModel(list(keys), **{k: v for k, v in spec.items() if k != "keys"}))
            existing.add(keys)
    if models:
        collection.create_indexes(models)
