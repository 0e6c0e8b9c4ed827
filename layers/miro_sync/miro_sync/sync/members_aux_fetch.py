"""Phase 1 of the members sync, the aux: team memberships, board owners, the organization and (on a
full SCIM run) every SCIM user, fetched concurrently by a bounded scheduler, resumable across
invocations (`members_aux.AuxProgress`) and stored for the run as one blob (`members_aux.Aux`)."""

from __future__ import annotations

import threading
import zlib
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime
from functools import partial
from typing import Any

from miro_sync.miro.errors import MiroAuthError
from miro_sync.ports import DeadlineWatch, LogSink
from miro_sync.sync.member_index import CountIndex, StaleIndexFormatError, StringIndex, TeamIndex
from miro_sync.sync.members_aux import AUX_PROGRESS, BOARD_PAGE, Aux, AuxProgress, UnusableProgressError
from miro_sync.sync.members_ports import (
    SYNC_NAME,
    MembersSource,
    MembersSyncError,
    ScimDirectory,
    StateStore,
    auth_failure,
    close,
    first_page,
)

_SCIM_PAGE = 1000  # the most SCIM /Users returns per page (spec: count "maximum value ... is 1000")
_SCIM_STREAMS = 1  # SCIM pages in flight: 1,000 parsed users each, so one (100k members stay <= 128 MB)
_SCIM_ATTRIBUTES = ("userName", "displayName", "name")  # all the sync reads (id always comes)
# How often the aux looks at the deadline while its requests run (also on each one that finishes).
_DEADLINE_POLL_S = 0.5
AuxTask = tuple[str, Callable[[], Any]]


def _guarded(what: str, work: Callable[[], Any]) -> Any:
    try:
        return work()
    except MiroAuthError as error:
        raise auth_failure(error, what) from None


class _MiroListings:
    """The aux's Miro listings as tasks; each records into `progress` page by page, and a listing of
    several pages stops at the next page once `stop` is set (the rest is for the next invocation)."""

    def __init__(self, miro: MembersSource, progress: AuxProgress, stop: threading.Event) -> None:
        self._miro = miro
        self._progress = progress
        self._stop = stop

    def read_organization(self) -> None:
        self._progress.record_organization(self._miro.get_organization())

    def team_members(self, number: int, team_id: str, cursor: str | None) -> None:
        pages = (
            self._miro.iter_team_member_pages(team_id, cursor=cursor)
            if cursor is not None
            else self._miro.iter_team_member_pages(team_id)
        )
        try:
            for page in pages:
                self._progress.record_team_members(number, page.data, page.next_cursor)
                if self._stop.is_set():
                    return  # the rest (if any) from page.next_cursor, next invocation
            self._progress.record_team_members(number, (), None)  # the listing ended: complete
        finally:
            close(pages)

    def board_page(self, offset: int) -> None:
        pages = self._miro.iter_board_pages(offset=offset, limit=BOARD_PAGE)
        try:
            self._progress.record_boards(offset, next(pages))
        finally:
            close(pages)

    def boards_in_order(self, offset: int) -> None:
        """The boards past the first page of a listing without a total, in order, from `offset`."""
        pages = self._miro.iter_board_pages(offset=offset, limit=BOARD_PAGE)
        try:
            for page in pages:
                offset += len(page.data)
                self._progress.record_boards_in_order(page, offset)
                if self._stop.is_set():
                    return
            self._progress.record_boards_in_order(None, None)
        finally:
            close(pages)

    def board_tasks(self) -> Iterator[AuxTask] | None:
        next_offset = self._progress.boards_next
        if next_offset is not None:
            return iter([("listing boards", partial(self.boards_in_order, next_offset))])
        offsets = self._progress.board_offsets_left()
        if not offsets:
            return None
        return (("listing boards", partial(self.board_page, offset)) for offset in offsets)

    def first_boards(self) -> Iterator[AuxTask] | None:
        self._progress.record_first_boards(
            first_page(self._miro.iter_board_pages(offset=0, limit=BOARD_PAGE)), BOARD_PAGE
        )
        return self.board_tasks()

    def boards_source(self) -> Iterator[AuxTask] | None:
        if not self._progress.boards_first:
            return iter([("listing boards", self.first_boards)])
        return self.board_tasks()

    def team_tasks(self) -> Iterator[AuxTask]:
        # Teams an earlier invocation listed whose member lists are not complete, then the team
        # pages not listed yet, here, on the thread that hands out the work, as tasks are needed.
        what = "listing teams and team members"
        progress = self._progress
        for number, cursor in progress.teams_to_finish():
            yield what, partial(self.team_members, number, progress.team_ids[number], cursor)
        if progress.teams_listed:
            return
        try:
            teams_cursor = progress.teams_cursor
            pages = (
                self._miro.iter_team_pages(cursor=teams_cursor)
                if teams_cursor
                else self._miro.iter_team_pages()
            )
            for teams_page in pages:
                numbers = progress.record_teams_page(teams_page)
                for number, team in zip(numbers, teams_page.data, strict=True):
                    yield what, partial(self.team_members, number, team.id, None)
            progress.record_teams_listed()
        except MiroAuthError as error:
            raise auth_failure(error, what) from None


class _ScimListings:
    """The full SCIM listing as tasks: the first page tells the total, the rest is paged by
    startIndex in at most `_SCIM_STREAMS` ranges, each in order."""

    def __init__(self, scim: ScimDirectory, progress: AuxProgress, stop: threading.Event) -> None:
        self._scim = scim
        self._progress = progress
        self._stop = stop

    def source(self) -> Iterator[AuxTask] | None:
        if not self._progress.scim_first:
            return iter([("listing SCIM users", self.first_scim)])
        return self.scim_tasks()

    def scim_pages(self, number: int) -> None:
        """SCIM range `number`: the pages from its start up to (not including) its stop, in order."""
        start_index, stop_index = self._progress.scim_ranges[number]
        pages = self._scim.iter_user_pages(
            count=_SCIM_PAGE, start_index=start_index, attributes=_SCIM_ATTRIBUTES
        )
        try:
            for page in pages:
                start_index += len(page.resources)
                self._progress.record_scim(number, page, start_index)
                if start_index >= stop_index or self._stop.is_set():
                    return
            self._progress.record_scim(number, None, stop_index)  # fewer users than the total said
        finally:
            close(pages)

    def scim_tasks(self) -> Iterator[AuxTask] | None:
        numbers = self._progress.scim_ranges_left()
        if not numbers:
            return None
        return (("listing SCIM users", partial(self.scim_pages, number)) for number in numbers)

    def first_scim(self) -> Iterator[AuxTask] | None:
        first = first_page(
            self._scim.iter_user_pages(count=_SCIM_PAGE, start_index=1, attributes=_SCIM_ATTRIBUTES)
        )
        if first is None:
            self._progress.record_first_scim(None, ())
            return None
        self._progress.record_first_scim(first, _scim_ranges(1 + len(first.resources), first.total_results))
        return self.scim_tasks()


def _scim_ranges(first_start: int, total: int) -> list[tuple[int, int]]:
    """The SCIM pages from `first_start` to `total` in at most _SCIM_STREAMS runs of consecutive
    pages, as [start, stop) index ranges."""
    starts = list(range(first_start, total + 1, _SCIM_PAGE))
    if not starts:
        return []
    per_stream = -(-len(starts) // min(_SCIM_STREAMS, len(starts)))
    runs = [starts[at : at + per_stream] for at in range(0, len(starts), per_stream)]
    end = total + 1
    return [
        (run[0], following[0] if following else end)
        for run, following in zip(runs, [*runs[1:], []], strict=True)
    ]


class _BoundedTasks:
    """Work comes from sources (iterators of tasks), taken in turn and handed to the pool only while
    fewer than `window` tasks are queued or running: a queued task costs ~2 KB, and submitting every
    page up front (6,500 tasks at 100,000 members) held ~14 MB at the peak. A task may return a
    further source (the board and SCIM pages past the first). Once `stop` is set (out of time, or a
    failure: the first is kept in `failure`) no task is handed out and the queued ones are cancelled;
    the running ones finish."""

    def __init__(
        self,
        pool: ThreadPoolExecutor,
        window: int,
        stop: threading.Event,
        deadline: DeadlineWatch,
        sources: Iterable[Iterator[AuxTask]],
    ) -> None:
        self._pool = pool
        self._window = window
        self._stop = stop
        self._deadline = deadline
        self._sources: deque[Iterator[AuxTask]] = deque(sources)
        self._running: set[Future[Any]] = set()
        self.failure: Exception | None = None

    def submit(self, what: str, work: Callable[[], Any]) -> None:
        self._running.add(self._pool.submit(_guarded, what, work))

    def run(self) -> None:
        try:
            while True:
                self._hand_out()
                if not self._running:
                    break
                done, _pending = wait(self._running, timeout=_DEADLINE_POLL_S, return_when=FIRST_COMPLETED)
                self._take(done)
                # Checked only once requests were handed out: every invocation gets somewhere.
                if not self._stop.is_set() and self._deadline.running_low():
                    self._stop_handing_out()
        finally:
            for future in self._running:  # something not an Exception (the process ending): no more
                future.cancel()
            for source in self._sources:
                close(source)

    def _hand_out(self) -> None:
        sources = self._sources
        while not self._stop.is_set() and sources and len(self._running) < self._window:
            try:
                what, work = next(sources[0])
            except StopIteration:
                sources.popleft()
                continue
            except Exception as error:  # listing the teams failed
                sources.popleft()
                self._fail(error)
                break
            self.submit(what, work)
            sources.rotate(-1)

    def _take(self, done: Iterable[Future[Any]]) -> None:
        for future in done:
            self._running.discard(future)
            if future.cancelled():
                continue
            try:
                more = future.result()
            except Exception as error:  # the first failure is raised once the rest stopped
                self._fail(error)
                continue
            if more is not None:
                self._sources.append(more)

    def _fail(self, error: Exception) -> None:
        self.failure = self.failure or error
        self._stop_handing_out()

    def _stop_handing_out(self) -> None:
        self._stop.set()
        for future in self._running:
            future.cancel()  # queued, not started: left for the next invocation


class AuxCollector:
    def __init__(
        self,
        *,
        miro: MembersSource,
        scim: ScimDirectory | None,
        state: StateStore,
        log: LogSink,
        fetch_workers: int,
    ) -> None:
        self._miro = miro
        self._scim = scim
        self._state = state
        self._log = log
        # Independent listings (team members, board and SCIM pages) are fetched this many at a time.
        self._fetch_workers = fetch_workers

    def load(self, run_id: str) -> Aux | None:
        """The run's aux as stored by `collect`; None when absent (expired or never stored) or
        stored in an older format (a run begun before an upgrade): the caller collects it again."""
        data = self._state.load_bytes(SYNC_NAME, run_id, "aux")
        if data is None:
            return None
        try:
            return Aux.from_bytes(data)
        except StaleIndexFormatError as stale:
            self._log.info(
                "members sync collects the aux again", extra={"runId": run_id, "reason": str(stale)}
            )
            return None

    def _load_progress(self, run_id: str, full_scim: bool) -> AuxProgress:
        """What earlier invocations of the run collected of the aux, or a fresh start: a progress that
        is missing, damaged or of another format starts the aux over (its pages are fetched again)."""
        try:
            data = self._state.load_bytes(SYNC_NAME, run_id, AUX_PROGRESS)
            if data is None:
                return AuxProgress(full_scim=full_scim)
            progress = AuxProgress.from_bytes(data, full_scim=full_scim)
        except (zlib.error, UnusableProgressError) as unusable:  # zlib: chunks that do not fit together
            self._log.info(
                "members sync collects the aux from the start",
                extra={"runId": run_id, "reason": str(unusable)},
            )
            return AuxProgress(full_scim=full_scim)
        del data  # the decoded arrays are copies: the blob goes now, not at the end of the aux
        self._log.info("members sync resumes the aux", extra={"runId": run_id, **progress.counts()})
        return progress

    def collect(self, run_id: str, full_scim: bool, now: datetime, deadline: DeadlineWatch) -> Aux | None:
        """Fetch the independent listings concurrently: team member lists per team, board pages by
        offset and SCIM pages by startIndex once the first page tells the total. Each listing still
        raises if it cannot be completed. Stores the result for the run's later invocations.

        None when time ran low first: no new request is started, the running ones finish (a SCIM or
        team member listing at its next page), and what was fetched is stored ("aux-progress") for
        the next invocation, which fetches only the rest. A failure stores it too, then raises."""
        stored = self.load(run_id)
        if stored is not None:
            return stored  # collected before an interruption
        scim = self._scim if full_scim else None
        progress = self._load_progress(run_id, scim is not None)
        stop = threading.Event()  # out of time or failed: listings of several pages stop at the next
        listings = _MiroListings(self._miro, progress, stop)
        sources = [listings.boards_source()]
        if scim is not None:
            sources.append(_ScimListings(scim, progress, stop).source())
        sources.append(listings.team_tasks())
        with ThreadPoolExecutor(self._fetch_workers, thread_name_prefix="members-aux") as pool:
            tasks = _BoundedTasks(
                pool,
                4 * self._fetch_workers,
                stop,
                deadline,
                (source for source in sources if source is not None),
            )
            if not progress.organization_read:
                tasks.submit("reading the organization", listings.read_organization)
            tasks.run()
        if tasks.failure is not None:
            self._keep_progress_after(tasks.failure, run_id, progress, now)
            raise tasks.failure
        if not progress.complete():
            if not stop.is_set():
                raise MembersSyncError("the teams, boards and SCIM listings ended incomplete; retry the run")
            if progress.changed:
                self._state.put_bytes(SYNC_NAME, run_id, AUX_PROGRESS, progress.to_parts(), now=now)
            self._log.info(
                "members sync hands over during the aux", extra={"runId": run_id, **progress.counts()}
            )
            return None
        return self._build(run_id, progress, now)

    def _keep_progress_after(
        self, failure: Exception, run_id: str, progress: AuxProgress, now: datetime
    ) -> None:
        """Store what the failed aux fetched, so the retry does not fetch it again; the failure is
        what the caller raises, whether or not this works."""
        if not progress.changed:
            return
        try:
            self._state.put_bytes(SYNC_NAME, run_id, AUX_PROGRESS, progress.to_parts(), now=now)
        except Exception as storing:
            self._log.info(
                "members sync could not keep the aux progress",
                extra={"runId": run_id, "failure": repr(failure), "error": repr(storing)},
            )

    def _build(self, run_id: str, progress: AuxProgress, now: datetime) -> Aux:
        """The aux of a complete progress, stored for the run's later invocations; the progress's
        arrays are handed over and emptied on the way (each freed once its index is built)."""
        scim_ids = (
            StringIndex.build_packed(progress.scim_hashes, progress.scim_values, progress.scim_ends)
            if progress.full_scim
            else None
        )
        progress.scim_hashes, progress.scim_values, progress.scim_ends = array("q"), bytearray(), array("L")
        team_pairs = TeamIndex.join_pairs(progress.pair_keys, progress.pair_codes)
        progress.pair_keys, progress.pair_codes = array("q"), array("l")
        aux = Aux(
            teams=TeamIndex.build(
                progress.team_ids, team_pairs, team_names=progress.team_names, roles=progress.team_roles
            ),
            boards_owned=CountIndex.build(progress.board_owners),
            boards_total=progress.boards_total,
            full_licenses_purchased=progress.full_licenses_purchased,
            scim_ids=scim_ids,
        )
        team_pairs.clear()
        progress.board_owners = array("q")
        self._state.put_bytes(SYNC_NAME, run_id, "aux", aux.to_parts(), now=now)
        self._log.info(
            "members sync collected teams and boards",
            extra={
                "runId": run_id,
                "teams": len(progress.team_ids),
                "boards": progress.boards_total,
                "scimUsers": len(scim_ids) if scim_ids is not None else 0,
            },
        )
        return aux
