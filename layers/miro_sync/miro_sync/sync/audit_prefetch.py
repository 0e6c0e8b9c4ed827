"""Fetch the next audit page while the current one is being written.

Paging through Miro is latency-bound (one round trip per page) and writing a page is DynamoDB-bound;
overlapping the two takes the slower of them per page instead of their sum. One producer thread walks
the page iterator and hands pages over through a bounded queue (`depth` pages ahead, so memory stays
flat); the consumer processes them in order. Nothing is checkpointed by the producer: pages fetched
ahead but never processed (hand-over, crash, 400) are simply fetched again by the next run.

Hand-written on `threading` + `queue` rather than an executor: a generator must be driven by one
thread from start to end, and the consumer must be able to stop the producer between pages.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL_S = 0.1


@dataclass(frozen=True)
class _Done:
    pass


@dataclass(frozen=True)
class _Failed:
    error: BaseException


class _Item(Generic[T]):
    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


@contextmanager
def prefetched(pages: Iterator[T], *, depth: int = 2, name: str = "audit-prefetch") -> Iterator[Iterator[T]]:
    """Iterate `pages` with up to `depth` items fetched ahead by a background thread.

    Errors of the producer are raised by the consumer at the position they happened. Leaving the
    block (normally, by break, or by an exception) stops the producer and waits for it.
    """
    if depth < 1:
        raise ValueError("depth must be >= 1")
    handoff: queue.Queue[_Item[T] | _Done | _Failed] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: _Item[T] | _Done | _Failed) -> bool:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for page in pages:
                if not offer(_Item(page)):
                    return
            offer(_Done())
        except BaseException as error:  # handed to the consumer, raised there
            offer(_Failed(error))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    def consume() -> Iterator[T]:
        while True:
            entry = handoff.get()
            if isinstance(entry, _Done):
                return
            if isinstance(entry, _Failed):
                raise entry.error
            yield entry.value

    producer = threading.Thread(target=produce, name=name, daemon=True)
    producer.start()
    try:
        yield consume()
    finally:
        stop.set()
        producer.join()
