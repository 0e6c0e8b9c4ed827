"""Fetch audit pages ahead of the consumer: the next pages of a window, and the next windows.

Paging through Miro is latency-bound (one round trip per page, cursor-chained within a window) and
writing a page is DynamoDB-bound. Two kinds of overlap:

* ``prefetched``: one producer thread walks one page iterator `depth` pages ahead of the consumer.
* ``lookahead``: several windows at once. Windows are independent listings (createdAfter /
  createdBefore), so up to `windows` of them are paged concurrently, each by its own producer into
  its own bounded queue, while the consumer still takes them strictly in order. The cursor chain of
  one window then no longer bounds the run; Miro's credit budget does (the pacer is shared).

Nothing is checkpointed by a producer: pages fetched ahead but never processed (hand-over, crash,
400, a plan that changed) are simply fetched again by the next run. Memory stays flat: at most
`windows` x (`depth` + 1) pages exist at any time.

Hand-written on `threading` + `queue` rather than an executor: a generator must be driven by one
thread from start to end, and the consumer must be able to stop a producer between pages.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K")

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


class _Producer(Generic[T]):
    """One thread driving one page iterator into a queue of at most `depth` pages."""

    def __init__(self, open_pages: Callable[[], Iterator[T]], *, depth: int, name: str) -> None:
        self._open_pages = open_pages
        self._handoff: queue.Queue[_Item[T] | _Done | _Failed] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._thread.start()

    def _offer(self, entry: _Item[T] | _Done | _Failed) -> bool:
        while not self._stop.is_set():
            try:
                self._handoff.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        pages: Iterator[T] | None = None
        try:
            pages = self._open_pages()
            for page in pages:
                if not self._offer(_Item(page)):
                    return
            self._offer(_Done())
        except BaseException as error:  # handed to the consumer, raised there
            self._offer(_Failed(error))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    def consume(self) -> Iterator[T]:
        """The pages in order; the producer's error is raised where it happened."""
        while True:
            entry = self._handoff.get()
            if isinstance(entry, _Done):
                return
            if isinstance(entry, _Failed):
                raise entry.error
            yield entry.value

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def prefetched(pages: Iterator[T], *, depth: int = 2, name: str = "audit-prefetch") -> Iterator[Iterator[T]]:
    """Iterate `pages` with up to `depth` items fetched ahead by a background thread.

    Errors of the producer are raised by the consumer at the position they happened. Leaving the
    block (normally, by break, or by an exception) stops the producer and waits for it.
    """
    if depth < 1:
        raise ValueError("depth must be >= 1")
    producer = _Producer(lambda: pages, depth=depth, name=name)
    try:
        yield producer.consume()
    finally:
        producer.stop()


@contextmanager
def lookahead(
    listings: Iterable[tuple[K, Callable[[], Iterator[T]]]],
    *,
    windows: int = 4,
    depth: int = 2,
    name: str = "audit-window",
) -> Iterator[Iterator[tuple[K, Iterator[T]]]]:
    """Page up to `windows` listings concurrently; yield (key, pages) for each listing in order.

    `listings` is consumed lazily: a listing is opened (its factory called in its producer thread)
    only when it is among the next `windows`. Taking the next listing stops the previous one's
    producer, whether or not its pages were all read. Leaving the block stops every producer.
    """
    if windows < 1 or depth < 1:
        raise ValueError("windows and depth must be >= 1")
    planned = iter(listings)
    running: deque[tuple[K, _Producer[T]]] = deque()

    def top_up() -> None:
        while len(running) < windows:
            nxt = next(planned, None)
            if nxt is None:
                return
            key, open_pages = nxt
            running.append((key, _Producer(open_pages, depth=depth, name=f"{name}-{len(running)}")))

    def in_order() -> Iterator[tuple[K, Iterator[T]]]:
        top_up()
        while running:
            key, producer = running[0]
            yield key, producer.consume()
            running.popleft()
            producer.stop()
            top_up()

    try:
        yield in_order()
    finally:
        while running:
            running.popleft()[1].stop()
