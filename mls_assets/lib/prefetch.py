"""Overlapping a producer with its consumer: the next page is fetched while this one is
screened and written."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def prefetched(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Yield `items` while a background thread already produces the next `depth` ones.
    An error in the producer is raised here, in order; closing the consumer stops it."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(("done", None))
        except BaseException as error:  # handed to the consumer, raised there
            slots.put(("error", error))

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "item":
                yield value
            elif kind == "done":
                return
            else:
                raise value
    finally:
        stop.set()
