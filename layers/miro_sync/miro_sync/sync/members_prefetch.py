"""The member listing fetched ahead of its turn: while the aux is collected, a background thread
starts the cursor chain (the run's critical path) and buffers the pages packed; on a hand-over the
pages not written yet are stored (`members_aux.PagesAhead`) for the next invocation, which takes
them first, so no member page is fetched twice across continuations."""

from __future__ import annotations

import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial

from miro_sync.miro.models import MembersPage
from miro_sync.ports import LogSink
from miro_sync.sync.audit_prefetch import prefetched  # generic (shared with the audit sync)
from miro_sync.sync.members_aux import PAGES_AHEAD, PagesAhead, UnusableProgressError
from miro_sync.sync.members_ports import SYNC_NAME, MembersSource, StateStore, close

PREFETCH_THREAD = "members-prefetch"
_HOLD_POLL_S = 0.05
_PAGE_ZLIB_LEVEL = 1  # level 6 saves another ~13% for twice the CPU; the producer thread pays it


def pack_page(page: MembersPage) -> bytes:
    """A members page as zlib'd JSON: measured on emulator members, a page of 100 costs ~4.4 KB
    this way, ~27 KB as plain JSON and ~140 KB as pydantic objects. Every field and extra survives
    `unpack_page` (by alias, so the models parse it back exactly as they parse Miro's own JSON)."""
    return zlib.compress(page.model_dump_json(by_alias=True).encode(), _PAGE_ZLIB_LEVEL)


def unpack_page(data: bytes) -> MembersPage:
    return MembersPage.model_validate_json(zlib.decompress(data))


class PrefetchedPages:
    """Member pages fetched ahead by a background thread (see `prefetched`) and buffered packed;
    iterated by the listing in place of the client's own page iterator. A resumed invocation
    starts with the pages an earlier one fetched ahead and stored (`ahead`) and continues the
    listing after them.

    Every page fetched is in `_pending` from the moment it arrives until it is taken, whichever
    queue it sits in, so `left()` can hand all of them to the next invocation.
    Memory: at most `member_prefetch_pages` packed pages (the producer's `hold` waits while the
    buffer is full). `pack` runs on the producer thread, `__next__` on the consumer; `left()` only
    once the producer has stopped."""

    def __init__(self, ahead: PagesAhead | None = None) -> None:
        self.first_page = ahead.first_page if ahead is not None else 1  # the first page's number
        self.fetched = 0
        self.taken = 0
        self._pending: deque[bytes] = deque(ahead.pages if ahead is not None else ())
        self._preloaded = len(self._pending)
        self.next_cursor = ahead.cursor if ahead is not None else None
        self.ended = ahead.ended if ahead is not None else False
        self._packed: Iterator[bytes] = iter(())

    @property
    def buffered(self) -> int:
        """Pages fetched (or stored by an earlier invocation) but not yet taken."""
        return len(self._pending)

    def pack(
        self, open_pages: Callable[[], Iterator[MembersPage]], hold: Callable[[], bool]
    ) -> Iterator[bytes]:
        """`hold` is called before each page is requested; it may wait; False: stop listing."""
        pages: Iterator[MembersPage] | None = None
        try:
            pages = open_pages()  # opened on the producer thread, at its first step
            while True:
                if not hold():
                    return
                page = next(pages, None)
                if page is None:
                    self.ended = True
                    return
                data = pack_page(page)
                self._pending.append(data)  # before the hand-off: a page is never only in a queue
                self.next_cursor = page.next_cursor
                self.ended = page.next_cursor is None
                self.fetched += 1
                yield data
        finally:
            if pages is not None:
                close(pages)

    def attach(self, packed: Iterator[bytes]) -> None:
        self._packed = packed

    def __iter__(self) -> PrefetchedPages:
        return self

    def __next__(self) -> MembersPage:
        if self._preloaded:
            self._preloaded -= 1
            data = self._pending.popleft()
        else:
            data = next(self._packed)  # the producer's error (e.g. MiroAuthError) is raised here
            self._pending.popleft()  # the same page: pages reach the queue in the order of `_pending`
        self.taken += 1
        return unpack_page(data)

    def left(self) -> PagesAhead | None:
        """The pages fetched and not taken, numbered after those taken (None: none, or only the
        ones an earlier invocation stored, unchanged). Only after the producer stopped."""
        if not self._pending or not (self.fetched or self.taken):
            return None
        return PagesAhead(self.first_page + self.taken, list(self._pending), self.next_cursor, self.ended)


class MemberPrefetch:
    """Starts the listing ahead (`pages`) and keeps or reads back what it fetched (`store_left`,
    `load_ahead`, `listing_after`)."""

    def __init__(
        self,
        *,
        miro: MembersSource,
        state: StateStore,
        log: LogSink,
        page_size: int,
        depth: int,
        credit_headroom: Callable[[], float | None] | None,
        listing_holdback: float,
    ) -> None:
        self._miro = miro
        self._state = state
        self._log = log
        self._page_size = page_size
        self._depth = depth
        # While the aux is collected, member pages are requested only while more than
        # `listing_holdback` of the credit limit is usable (`credit_headroom`: the share usable now,
        # None when unknown). The member records wait for the aux and the writes after it are the
        # longest stretch of a first sync, so when credits run short the aux goes first.
        self._credit_headroom = credit_headroom
        self._listing_holdback = listing_holdback

    @contextmanager
    def pages(
        self, aux_collected: threading.Event, leaving: threading.Event, ahead: PagesAhead | None
    ) -> Iterator[PrefetchedPages]:
        """The member listing, fetched on a background thread from now on: after the pages in `ahead`
        (stored by an earlier invocation), from cursor None without them. At most `depth` packed
        pages wait. Leaving the block stops the thread."""
        buffer = PrefetchedPages(ahead)
        if buffer.ended:  # an earlier invocation fetched the listing to its end
            yield buffer
            return
        open_pages = partial(self._miro.iter_member_pages, limit=self._page_size, cursor=buffer.next_cursor)
        packed = buffer.pack(open_pages, partial(self._hold, buffer, aux_collected, leaving))
        with prefetched(packed, depth=self._depth, name=PREFETCH_THREAD) as taken:
            buffer.attach(taken)
            yield buffer

    def _hold(
        self, buffer: PrefetchedPages, aux_collected: threading.Event, leaving: threading.Event
    ) -> bool:
        """Wait while the buffer is full, or while credits are short and the aux still needs them;
        False once the run leaves."""
        headroom = self._credit_headroom
        while not leaving.is_set():
            if buffer.buffered >= self._depth:
                leaving.wait(_HOLD_POLL_S)
                continue
            if headroom is None or aux_collected.is_set():
                break
            share = headroom()
            if share is None or share >= self._listing_holdback:
                break
            leaving.wait(_HOLD_POLL_S)
        return not leaving.is_set()

    def load_ahead(self, run_id: str, *, first_page: int) -> PagesAhead | None:
        """The member pages an earlier invocation fetched ahead and stored, from `first_page` on (None:
        none stored, none of them left, or unreadable: the listing continues from the page records)."""
        try:
            data = self._state.load_bytes(SYNC_NAME, run_id, PAGES_AHEAD)
            stored = PagesAhead.from_bytes(data) if data is not None else None
        except (zlib.error, UnusableProgressError) as unusable:
            self._log.info(
                "members sync lists the pages fetched ahead again",
                extra={"runId": run_id, "reason": str(unusable)},
            )
            return None
        return stored.from_page(first_page) if stored is not None else None

    def store_left(self, run_id: str, pages: PrefetchedPages, now: datetime) -> None:
        left = pages.left()
        if left is None:
            return
        self._state.put_bytes(SYNC_NAME, run_id, PAGES_AHEAD, left.to_parts(), now=now)
        self._log.info(
            "members sync keeps the pages fetched ahead",
            extra={"runId": run_id, "fromPage": left.first_page, "pages": len(left.pages)},
        )

    def listing_after(self, run_id: str, page_number: int, cursor: str | None) -> Iterator[MembersPage]:
        """The member pages after page record `page_number` (at `cursor`): first those an earlier
        invocation fetched ahead and stored, then Miro's, from where the stored ones end."""
        ahead = self.load_ahead(run_id, first_page=page_number + 1)
        if ahead is not None:
            for data in ahead.pages:
                yield unpack_page(data)
            if ahead.ended:
                return
            cursor = ahead.cursor
        yield from self._miro.iter_member_pages(limit=self._page_size, cursor=cursor)
