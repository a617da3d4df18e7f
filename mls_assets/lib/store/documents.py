"""Turning what assets return (lists, batch iterators, DataFrames) into BSON-ready dicts."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd


def records_from_dataframe(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """Rows as dicts; missing values (NaN/NaT/None) are left out, numpy scalars unwrapped."""
    columns = list(frame.columns)
    for row in frame.itertuples(index=False, name=None):
        record = {}
        for column, value in zip(columns, row, strict=True):
            value = _plain(value)
            if value is not None:
                record[str(column)] = value
        yield record


def _plain(value: Any) -> Any:
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, list | dict | str | bytes | datetime):
        value = value.item()  # numpy scalar
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


@dataclass
class CommitAfterWrite:
    """Output data plus what to do once it is all written (e.g. advance a feed cursor).

    The IO manager calls `on_commit` only after every document was stored, so a run that
    fails half-way leaves the commit undone and the next run pulls the data again. For
    streamed outputs, `metadata` (called after the write) reports what the stream saw.
    """

    data: Any
    on_commit: Callable[[], None] | None = None
    metadata: Callable[[], dict[str, Any]] | None = None


def iter_documents(obj: Any) -> Iterator[Mapping[str, Any]]:
    """Documents from a dict, a list of dicts, a DataFrame, or an iterator of any of those."""
    if obj is None:
        return
    if isinstance(obj, CommitAfterWrite):
        yield from iter_documents(obj.data)
    elif isinstance(obj, pd.DataFrame):
        yield from records_from_dataframe(obj)
    elif isinstance(obj, Mapping):
        yield obj
    elif isinstance(obj, Iterable) and not isinstance(obj, str | bytes):
        for item in obj:
            if isinstance(item, Mapping):
                yield item
            else:
                yield from iter_documents(item)
    else:
        raise TypeError(f"cannot store a {type(obj).__name__}: expected dicts or a DataFrame")
