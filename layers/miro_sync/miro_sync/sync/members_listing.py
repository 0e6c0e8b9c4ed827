"""Phase 2 of the members sync: the member listing, from the last page record on. Pages are written
by a pool of writers while the main thread fetches the next page; the page records (the checkpoints)
are written strictly in page order by one recorder thread."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from miro_sync.miro.errors import MiroAuthError
from miro_sync.miro.models import MembersPage
from miro_sync.ports import DeadlineWatch, LogSink
from miro_sync.sync.members_aux import Aux
from miro_sync.sync.members_ports import SYNC_NAME, MembersSyncResult, StateStore, auth_failure, close
from miro_sync.sync.members_prefetch import MemberPrefetch, PrefetchedPages
from miro_sync.sync.members_snapshot import Totals
from miro_sync.sync.members_writer import PageOutcome, PageWriter


class _PageRecorder:
    """Merges each page's outcome into the run's totals and result, then writes its page record;
    called on the recorder thread, one page after the other."""

    def __init__(
        self, state: StateStore, run_id: str, started: datetime, running: Totals, result: MembersSyncResult
    ) -> None:
        self._state = state
        self.run_id = run_id
        self._started = started
        self.running = running
        self._result = result
        self._merge_lock = threading.Lock()

    def record_after(
        self, previous: Future[None] | None, number: int, page: MembersPage, stored: Future[PageOutcome]
    ) -> None:
        outcome = stored.result()
        if previous is not None:
            previous.result()
        with self._merge_lock:
            self.running.merge(outcome.totals)
            totals_json = self.running.to_json()
            result = self._result
            result.written += outcome.written
            result.unchanged += outcome.unchanged
            result.write_requests += outcome.write_requests
            result.read_requests += outcome.read_requests
            result.scim_lookups += outcome.scim_lookups
        self._state.put_run_page(
            SYNC_NAME,
            self.run_id,
            number,
            outcome.member_ids,
            {"cursor": page.next_cursor, "totals": totals_json},
            now=self._started,
        )


class MemberListing:
    def __init__(
        self,
        *,
        state: StateStore,
        writer: PageWriter,
        prefetch: MemberPrefetch,
        log: LogSink,
        write_workers: int,
    ) -> None:
        self._state = state
        self._writer = writer
        self._prefetch = prefetch
        self._log = log
        # This many member pages are written at once while the next page is fetched.
        self._write_workers = write_workers

    def run(
        self,
        run_id: str,
        aux: Aux,
        started: datetime,
        deadline: DeadlineWatch,
        result: MembersSyncResult,
        *,
        pages: PrefetchedPages | None = None,
    ) -> bool:
        """Page through members from the last checkpoint. True when the listing is complete.

        `pages`: the listing from cursor None, already under way (`MemberPrefetch.pages`); used
        only when the run has no page records, i.e. when the listing starts from cursor None.
        Without it, pages an earlier invocation fetched ahead and stored come first.

        Up to `write_workers` pages are written at once (BatchGetItem, fingerprint comparison,
        batched puts / conditional updates) while the main thread fetches the next page. Page
        records (the checkpoints) are still written strictly in page order: each page's task waits
        for the previous page's record before writing its own, so the last record is always a valid
        resume point (a record without its predecessors would make the skipped members look removed).
        """
        last_page = self._state.last_run_page(SYNC_NAME, run_id)
        if last_page is not None and last_page.state.get("cursor") is None:
            return True
        cursor: str | None = last_page.state["cursor"] if last_page else None
        page_number = last_page.number if last_page else 0
        running = Totals.from_json(last_page.state["totals"]) if last_page else Totals()
        if pages is not None and cursor is not None:
            pages = None  # fetched from cursor None: cannot continue a listing from a checkpoint
        self._log.info(
            "members sync listing",
            extra={
                "runId": run_id,
                "fromPage": page_number + 1,
                "bufferedPages": pages.buffered if pages is not None else 0,
            },
        )
        listing: Iterator[MembersPage] = (
            pages if pages is not None else self._prefetch.listing_after(run_id, page_number, cursor)
        )
        recorder = _PageRecorder(self._state, run_id, started, running, result)
        last_number = self._write_pages(listing, page_number, aux, started, deadline, result, recorder)
        if last_number is None:
            return False
        if last_number == 0:
            # Not even one page (an empty organization has its caller at least): record the
            # completed, empty listing so removals can judge it.
            self._state.put_run_page(
                SYNC_NAME, run_id, 1, [], {"cursor": None, "totals": running.to_json()}, now=started
            )
        return True

    def _write_pages(
        self,
        listing: Iterator[MembersPage],
        page_number: int,
        aux: Aux,
        started: datetime,
        deadline: DeadlineWatch,
        result: MembersSyncResult,
        recorder: _PageRecorder,
    ) -> int | None:
        """Write the listing's pages after page `page_number`; the number of the last page recorded,
        or None when time ran low first (every page taken is recorded before it returns)."""
        # Two pools: page writes run in parallel; records wait in their own single thread, in order,
        # so a waiting record never holds a writer.
        in_flight: deque[Future[None]] = deque()
        with (
            ThreadPoolExecutor(self._write_workers, thread_name_prefix="members-writer") as writers,
            ThreadPoolExecutor(1, thread_name_prefix="members-checkpoint") as records,
        ):
            previous: Future[None] | None = None
            try:
                for page in _auth_checked(listing):
                    page_number += 1
                    result.pages += 1
                    result.fetched += len(page.data)
                    stored = writers.submit(self._writer.store_page, page, aux, started)
                    previous = records.submit(recorder.record_after, previous, page_number, page, stored)
                    in_flight.append(previous)
                    # Bounded memory: at most `write_workers` pages wait to be stored.
                    while len(in_flight) > self._write_workers or (in_flight and in_flight[0].done()):
                        in_flight.popleft().result()
                    if page.next_cursor is None:
                        break
                    if deadline.running_low():
                        _drain(in_flight)
                        self._log.info(
                            "members sync hands over", extra={"runId": recorder.run_id, "page": page_number}
                        )
                        return None
                _drain(in_flight)
            finally:
                close(listing)  # a prefetch is stopped by its owner (`MembersSync._run_locked`)
        return page_number


def _auth_checked(listing: Iterator[MembersPage]) -> Iterator[MembersPage]:
    """The listing's pages; Miro refusing the listing is a MembersSyncError that says what to fix."""
    while True:
        try:
            page = next(listing)
        except StopIteration:
            return
        except MiroAuthError as error:
            raise auth_failure(error, "listing organization members") from None
        yield page


def _drain(in_flight: deque[Future[None]]) -> None:
    while in_flight:
        in_flight.popleft().result()
