"""Audit log sync: Miro's `/v2/audit/logs` into AuditTable, exactly once, resumable at every page.

A run covers [start, end): the first run starts `backfill_days` ago (Miro keeps 90 days), later runs
at the watermark (newest createdAt stored) minus an overlap that catches events Miro makes visible
late. The range is walked in windows (createdAfter/createdBefore), oldest first, each paged with
Miro's cursor in ascending order. After every page the checkpoint (window, cursor, watermark) is
saved under a lease, so a crash or a hand-over to a new invocation resumes at the page that was
being fetched; a re-read page is harmless because events are keyed by Miro's id (see store/audit.py).

Saving: the checkpoint is saved by one background thread (audit_checkpoint), off the main loop. The
main loop asks for a save after every page and goes on; the saver always saves the newest state asked
for (older ones it has not started are dropped: each state is a complete checkpoint). Every state
handed to it holds only committed pages, so whichever of them is the last one saved before a crash,
its events are stored. The main loop waits for a save only at the end of an invocation (hand-over,
completion, failure), where the last state is saved before the lease is released.

Fetching: windows are independent listings, so the next few are paged concurrently (audit_prefetch)
and consumed strictly in order; the credit budget, not one cursor chain, bounds the run.

Write-behind: up to `write_depth` page writes run in the background while the next pages are parsed,
checked and published; they may land in any order. A page's position, watermark and signals are
committed to the checkpoint only once its write and every earlier page's write landed, so the
checkpoint never moves past an unwritten page.

Write bound: the existence check (BatchGetItem) is only needed for events that may be stored already.
Before a page's write is submitted, the checkpoint state asked for just before it records `writeBound`,
the newest createdAt of everything submitted so far, and the write (in its writer thread) waits until
that state, or a newer one, is saved: no write ever starts beyond the saved bound (saves are
conditional on the lease, and after a failed save no write starts at all, so an invocation that lost
the lease writes nothing more). Hence an
event newer than max(watermark, writeBound) cannot be stored and is written without the check. That
covers the page that was in flight when an invocation died (its events are within writeBound, so
they are checked again), the overlap re-read by every run (it lies before the watermark), window
boundaries read twice and windows re-read after narrowing (within the bound of this invocation).

Signals: when `max_pending_signals` actors are pending, the batch is taken and written by a
background thread while the next pages are processed; `signalsThrough` moves to the watermark of the
moment it was taken only once that write has finished (one batch is written at a time).

Faults: an event without an id or with an unparseable createdAt is recorded as rejected (with the
page cursor) and the run goes on; a window Miro refuses with 400 is halved (and re-read from its
start), never skipped; anything else (auth, persistent 5xx/429, DynamoDB) stops the run with the
checkpoint where it was. The watermark only moves to events that are stored.

Layout: the ports and write runners are in audit_ports, the configuration, result and run state
(checkpointed position, lease, write pipeline) in audit_state; this module is the run itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from miro_sync.miro.errors import MiroBadRequest
from miro_sync.store.audit import AuditRecord, RejectedEvent, canonical_time
from miro_sync.sync.audit_checkpoint import (
    CheckpointSaver,
    CheckpointSaverFactory,
    background_saves,
    inline_saves,
)
from miro_sync.sync.audit_events import as_raw, to_record
from miro_sync.sync.audit_ports import (
    AuditPageLike,
    AuditSource,
    AuditStore,
    Checkpoints,
    DeadlineLike,
    Forwarder,
    RejectLog,
    WriteRunnerFactory,
    Written,
    background_signal_flushes,
    background_writes,
    inline_writes,
)
from miro_sync.sync.audit_prefetch import lookahead
from miro_sync.sync.audit_signals import MemberSignals, SignalAggregator
from miro_sync.sync.audit_state import (
    AuditSyncConfig,
    AuditSyncResult,
    AuditWindowRefused,
    InFlight,
    Lease,
    PreparedPage,
    RunPosition,
    Session,
    SignalFlush,
    WindowKey,
    WritePipeline,
    checkpoint_time,
    created_at_of,
    epoch_ms,
)

__all__ = [
    "CHECKPOINT_NAME",
    "AuditLogSync",
    "AuditSyncConfig",
    "AuditSyncResult",
    "AuditWindowRefused",
    "inline_writes",
]

CHECKPOINT_NAME = "audit"
MIRO_RETENTION = timedelta(days=90)
# Stay this far inside Miro's 90 days: a window planned now may be fetched minutes later.
RETENTION_MARGIN = timedelta(minutes=15)
# Windows are never narrowed below this; a 400 for a window this small is a real error.
MIN_WINDOW = timedelta(seconds=1)
# Ask for events from 1 ms before each window: whether Miro's createdAfter is inclusive or
# exclusive, an event exactly at a window boundary is fetched (twice at worst; stored once).
BOUNDARY_SLACK = timedelta(milliseconds=1)


class AuditLogSync:
    def __init__(
        self,
        *,
        source: AuditSource,
        store: AuditStore,
        rejects: RejectLog,
        checkpoints: Checkpoints,
        members: MemberSignals,
        forwarder: Forwarder | None = None,
        config: AuditSyncConfig | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        writes: WriteRunnerFactory | None = None,
        saves: CheckpointSaverFactory | None = None,
        signal_flushes: WriteRunnerFactory | None = None,
    ) -> None:
        self._source = source
        self._store = store
        self._rejects = rejects
        self._checkpoints = checkpoints
        self._forwarder = forwarder
        self._config = config or AuditSyncConfig()
        self._signals = SignalAggregator(members, workers=self._config.signal_workers)
        self._clock = clock
        self._write_depth = max(1, self._config.write_depth) if self._config.write_behind else 1
        background = self._config.write_behind
        if writes is None:
            writes = partial(background_writes, self._write_depth) if background else inline_writes
        if saves is None:
            saves = background_saves if background else inline_saves
        if signal_flushes is None:
            signal_flushes = background_signal_flushes if background else inline_writes
        self._writes = writes
        self._saves = saves
        self._signal_flushes = signal_flushes

    # --- the run ----------------------------------------------------------------------------------

    def run(self, *, owner: str, deadline: DeadlineLike, lease_ms: int = 20 * 60_000) -> AuditSyncResult:
        """Sync until done or until `deadline` runs low (outcome "continue": call again to resume)."""
        result = AuditSyncResult()
        now_ms = epoch_ms(self._clock())
        if not self._checkpoints.acquire_lease(
            CHECKPOINT_NAME, owner, now_ms=now_ms, until_ms=now_ms + lease_ms
        ):
            result.outcome = "busy"
            return result
        lease = Lease(owner=owner, length_ms=lease_ms, until_ms=now_ms + lease_ms)
        try:
            # Leaving this block (normally or by an error) waits until the last state is saved.
            with self._saves(partial(self._persist, lease)) as saver:
                session = Session(lease=lease, saver=saver)
                try:
                    stored = self._checkpoints.load_checkpoint(CHECKPOINT_NAME)
                    session.state = dict(stored.state) if stored is not None else {}
                    self._replay_signals(session, result)
                    run = self._current_run(session, result)
                    with self._writes() as writes, self._signal_flushes() as signal_runner:
                        session.signal_runner = signal_runner
                        pipe = WritePipeline.resume(writes, session.state, self._write_depth)
                        self._walk(run, session, result, deadline, pipe)
                finally:
                    self._flush_signals(session, result)
        finally:
            self._checkpoints.release_lease(CHECKPOINT_NAME, owner)
        result.watermark = session.state.get("watermark")
        return result

    def _current_run(self, session: Session, result: AuditSyncResult) -> RunPosition:
        existing = session.state.get("run")
        if existing:
            run = RunPosition.from_state(existing)
        else:
            now = self._clock()
            earliest = now - MIRO_RETENTION + RETENTION_MARGIN
            watermark = session.state.get("watermark") or session.state.get("scannedUntil")
            if watermark:
                start = checkpoint_time(watermark) - self._config.overlap
            else:
                start = now - timedelta(days=self._config.backfill_days)
            start = max(start, earliest)
            window_end = min(start + self._config.window, now)
            run = RunPosition(
                start=canonical_time(start),
                end=canonical_time(now),
                window_start=canonical_time(start),
                window_end=canonical_time(window_end),
            )
            session.state["run"] = run.to_state()
            session.state.setdefault("writeBound", None)
            if not session.state.get("watermark") and session.state.get("signalsThrough") is None:
                # Nothing is stored yet, so signals are complete up to here. Without this, a first
                # run that completes but dies before its first signal flush would be replayed only
                # from watermark - overlap (see _replay_signals) and lose older signals.
                session.state["signalsThrough"] = run.start
            self._save(session)
        result.run_start, result.run_end = run.start, run.end
        return run

    def _walk(
        self,
        run: RunPosition,
        session: Session,
        result: AuditSyncResult,
        deadline: DeadlineLike,
        pipe: WritePipeline,
    ) -> None:
        while True:
            if run.window_start >= run.end:
                self._drain(pipe, session, result)
                self._complete(run, session)
                return
            self._clamp_to_retention(run, result)
            try:
                with self._listings(run) as windows:
                    for planned, pages in windows:
                        if planned != (run.window_start, run.window_end, run.cursor):
                            break  # the plan no longer matches the run (retention clamp): plan again
                        for page in pages:
                            prepared = self._prepare(page, run, result, pipe)
                            self._submit(prepared, pipe, session, result)
                            if deadline.running_low() and run.window_start < run.end:
                                self._drain(pipe, session, result)
                                result.outcome = "continue"
                                return
                            if run.cursor is None:
                                break  # window done: the next one is the next listing
                        if run.window_start >= run.end or self._clamp_to_retention(run, result):
                            break
            except MiroBadRequest:
                self._drain(pipe, session, result)
                self._narrow(run, session, result)

    def _plan(self, run: RunPosition) -> Iterator[tuple[WindowKey, Callable[[], Iterator[AuditPageLike]]]]:
        """The listings from the run's position on: the current window (at its cursor), then the
        following windows exactly as `_prepare` will move to them."""
        start, end, cursor = run.window_start, run.window_end, run.cursor
        run_end = checkpoint_time(run.end)
        while start < run.end:
            yield (
                (start, end, cursor),
                partial(
                    self._source.iter_audit_pages,
                    checkpoint_time(start) - BOUNDARY_SLACK,
                    checkpoint_time(end),
                    cursor=cursor,
                    limit=self._config.page_size,
                    sorting="ASC",
                ),
            )
            start, end, cursor = (
                end,
                canonical_time(min(checkpoint_time(end) + self._config.window, run_end)),
                None,
            )

    def _listings(
        self, run: RunPosition
    ) -> AbstractContextManager[Iterator[tuple[WindowKey, Iterator[AuditPageLike]]]]:
        plan = self._plan(run)
        if self._config.prefetch_pages <= 0:
            return nullcontext((key, open_pages()) for key, open_pages in plan)
        return lookahead(
            plan, windows=max(1, self._config.prefetch_windows), depth=self._config.prefetch_pages
        )

    def _clamp_to_retention(self, run: RunPosition, result: AuditSyncResult) -> bool:
        """Events older than Miro's 90 days are gone there; asking for them is a 400, not a gap to fill."""
        earliest = canonical_time(self._clock() - MIRO_RETENTION + RETENTION_MARGIN)
        if run.window_start < earliest:
            run.window_start = earliest
            run.cursor = None
            if run.window_end <= run.window_start:
                run.window_end = canonical_time(
                    min(checkpoint_time(earliest) + self._config.window, checkpoint_time(run.end))
                )
            result.retention_clamps += 1
            return True
        return False

    def _narrow(self, run: RunPosition, session: Session, result: AuditSyncResult) -> None:
        window_start, window_end = checkpoint_time(run.window_start), checkpoint_time(run.window_end)
        span = window_end - window_start
        if span <= MIN_WINDOW:
            raise AuditWindowRefused(
                f"Miro refuses the audit window {run.window_start} .. {run.window_end} even at its smallest"
            )
        # Re-read the narrowed window from its start: the cursor belonged to the wider one.
        run.window_end = canonical_time(window_start + max(span / 2, MIN_WINDOW))
        run.cursor = None
        result.windows_narrowed += 1
        session.state["run"] = run.to_state()
        self._save(session)

    def _prepare(
        self, page: AuditPageLike, run: RunPosition, result: AuditSyncResult, pipe: WritePipeline
    ) -> PreparedPage:
        """Parse a page, record its rejects, pick its new events and move the fetch position past it."""
        records: list[AuditRecord] = []
        rejects: list[RejectedEvent] = []
        for item in page.data:
            outcome = to_record(item)
            if isinstance(outcome, str):
                rejects.append(
                    RejectedEvent(
                        reason=outcome,
                        raw=as_raw(item),
                        cursor=run.cursor,
                        window_start=run.window_start,
                        window_end=run.window_end,
                    )
                )
            else:
                records.append(outcome)
        result.pages += 1
        result.events_seen += len(page.data)
        if rejects:
            self._rejects.record(rejects, now=self._clock())
            result.rejected += len(rejects)
        keys = [record.sk for record in records]  # each event's timestamp formatted once
        new = self._select_new(records, keys, pipe)
        result.duplicates += len(records) - len(new)
        next_cursor = page.next_cursor
        if next_cursor:
            run.cursor = next_cursor
        else:
            run.window_start = run.window_end
            run.window_end = canonical_time(
                min(checkpoint_time(run.window_start) + self._config.window, checkpoint_time(run.end))
            )
            run.cursor = None
        return PreparedPage(
            records=records,
            new=list(new.values()),
            position=run.to_state(),
            newest=created_at_of(max(keys)) if keys else None,
            newest_new=created_at_of(max(new)) if new else None,
            new_keys=frozenset(new),
        )

    def _select_new(
        self, records: Sequence[AuditRecord], keys: Sequence[str], pipe: WritePipeline
    ) -> dict[str, AuditRecord]:
        """Each event once (by key), minus those stored or being written; only those within the bound
        are looked up."""
        unique: dict[str, AuditRecord] = {}
        for sk, record in zip(keys, records, strict=True):
            if sk not in unique and not pipe.is_being_written(sk):
                unique[sk] = record
        bound = pipe.bound
        if bound is None:
            return unique
        to_check = [record for sk, record in unique.items() if created_at_of(sk) <= bound]
        if not to_check:
            return unique
        absent = {record.sk for record in self._store.filter_new(to_check)}
        return {sk: record for sk, record in unique.items() if sk in absent or created_at_of(sk) > bound}

    def _submit(
        self, prepared: PreparedPage, pipe: WritePipeline, session: Session, result: AuditSyncResult
    ) -> None:
        """Commit the pages whose writes landed (waiting while the pipeline is full), reserve the bound
        for this page's write, then start it."""
        self._commit_landed(pipe, session, result, keep=pipe.depth - 1)
        raises_bound = False
        newest_new = prepared.newest_new
        if newest_new is not None and (pipe.bound is None or newest_new > pipe.bound):
            pipe.bound = newest_new
            session.state["writeBound"] = newest_new
            raises_bound = True
        # This save both commits the pages that landed and records the bound; the write below waits
        # for it in its writer thread (no write may start before a saved bound covers it), the main
        # loop goes on.
        ticket = self._save_or_flush(session, result)
        if raises_bound:
            pipe.bound_ticket = ticket
        if not prepared.new:
            pipe.in_flight.append(InFlight(prepared, Written()))
            return
        if self._forwarder is not None:
            # Before the write: a crash in between re-publishes (at least once) instead of losing.
            self._forwarder.publish([record.raw for record in prepared.new])
            result.forwarded += len(prepared.new)
        new = prepared.new
        write = pipe.writes.submit(partial(self._write_page, session.saver, pipe.bound_ticket, new))
        pipe.in_flight.append(InFlight(prepared, write))

    def _write_page(self, saver: CheckpointSaver, bound_ticket: int, records: Sequence[AuditRecord]) -> None:
        saver.wait_saved(bound_ticket)  # raises after a failed save: nothing is written then
        self._store.put(records)

    def _commit_landed(
        self, pipe: WritePipeline, session: Session, result: AuditSyncResult, *, keep: int
    ) -> None:
        """Commit pages in order while their writes have landed, waiting for the oldest while more than
        `keep` are in flight; committed pages count as stored (in memory, saved by the caller)."""
        while pipe.in_flight and (len(pipe.in_flight) > keep or pipe.in_flight[0].write.done()):
            entry = pipe.in_flight[0]
            entry.write.result()  # a failed write raises here: nothing of its page is committed
            pipe.in_flight.popleft()
            self._commit(entry.page, session, result)

    def _commit(self, prepared: PreparedPage, session: Session, result: AuditSyncResult) -> None:
        result.stored += len(prepared.new)
        self._signals.add(prepared.records)
        newest = prepared.newest
        if newest is not None:
            watermark = session.state.get("watermark")
            if watermark is None or newest > watermark:
                session.state["watermark"] = newest
        session.state["run"] = prepared.position

    def _drain(self, pipe: WritePipeline, session: Session, result: AuditSyncResult) -> None:
        if pipe.in_flight:
            self._commit_landed(pipe, session, result, keep=0)
            self._save_or_flush(session, result)

    def _save_or_flush(self, session: Session, result: AuditSyncResult) -> int:
        """Ask for a checkpoint save (the ticket), first taking the signals out when enough are pending."""
        self._collect_signal_flush(session, result, wait=False)
        if self._signals.pending >= self._config.max_pending_signals:
            self._start_signal_flush(session, result)
            self._collect_signal_flush(session, result, wait=False)  # inline: already written
        return self._save(session)

    def _complete(self, run: RunPosition, session: Session) -> None:
        session.state["scannedUntil"] = run.end
        session.state["run"] = None
        self._save(session)

    # --- derived signals --------------------------------------------------------------------------

    def _flush_signals(self, session: Session, result: AuditSyncResult) -> None:
        """Write every pending signal now (in this thread), then save."""
        self._collect_signal_flush(session, result, wait=True)
        if self._signals.pending:
            result.signals_written += self._signals.flush()
        self._signals_through(session, session.state.get("watermark"))
        self._save(session)

    def _start_signal_flush(self, session: Session, result: AuditSyncResult) -> None:
        """Hand the pending signals to the signal runner; the watermark now covers all of them (their
        pages are committed)."""
        self._collect_signal_flush(session, result, wait=True)  # one batch at a time
        batch = self._signals.take()
        flush = SignalFlush(through=session.state.get("watermark"))

        def write_batch() -> None:
            flush.written = self._signals.write(batch)

        flush.write = session.signal_runner.submit(write_batch)
        session.signal_flush = flush

    def _collect_signal_flush(self, session: Session, result: AuditSyncResult, *, wait: bool) -> None:
        """Take in the batch being written once it is (waiting for it if `wait`); a failed write raises."""
        flush = session.signal_flush
        if flush is None or not (wait or flush.write.done()):
            return
        session.signal_flush = None
        flush.write.result()
        result.signals_written += flush.written
        self._signals_through(session, flush.through)

    @staticmethod
    def _signals_through(session: Session, watermark: str | None) -> None:
        if watermark and session.state.get("signalsThrough") != watermark:
            session.state["signalsThrough"] = watermark

    def _replay_signals(self, session: Session, result: AuditSyncResult) -> None:
        """After a crash, signals of events stored past `signalsThrough` were never written: redo them."""
        watermark = session.state.get("watermark")
        through = session.state.get("signalsThrough")
        if not watermark or (through is not None and through >= watermark):
            return
        if through is not None:
            start = checkpoint_time(through) - self._config.overlap
        else:
            run = session.state.get("run")
            start = (
                checkpoint_time(run["start"]) if run else checkpoint_time(watermark) - self._config.overlap
            )
        end = checkpoint_time(watermark) + timedelta(milliseconds=1)
        for stored in self._store.query_time_range(start, end):
            outcome = to_record(stored.raw)
            if not isinstance(outcome, str):
                self._signals.add([outcome])
                result.signals_replayed += 1
        self._flush_signals(session, result)

    # --- checkpoint -------------------------------------------------------------------------------

    def _save(self, session: Session) -> int:
        """Ask for the current state to be saved (by the saver, now or soon); the ticket to wait for."""
        return session.saver.request(session.state)

    def _persist(self, lease: Lease, state: Mapping[str, Any]) -> None:
        """One save, in the saver's thread."""
        now_ms = epoch_ms(self._clock())
        # Extend the lease when half of it is gone (ours already, so this cannot steal it); a lease
        # lost to another invocation makes save_checkpoint raise.
        if lease.until_ms - now_ms < lease.length_ms // 2 and self._checkpoints.acquire_lease(
            CHECKPOINT_NAME, lease.owner, now_ms=now_ms, until_ms=now_ms + lease.length_ms
        ):
            lease.until_ms = now_ms + lease.length_ms
        self._checkpoints.save_checkpoint(CHECKPOINT_NAME, lease.owner, state)
