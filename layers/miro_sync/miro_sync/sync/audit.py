"""Audit log sync: Miro's `/v2/audit/logs` into AuditTable, exactly once, resumable at every page.

A run covers [start, end): the first run starts `backfill_days` ago (Miro keeps 90 days), later runs
at the watermark (newest createdAt stored) minus an overlap that catches events Miro makes visible
late. The range is walked in windows (createdAfter/createdBefore), oldest first, each paged with
Miro's cursor in ascending order. After every page the checkpoint (window, cursor, watermark) is
saved under a lease, so a crash or a hand-over to a new invocation resumes at the page that was
being fetched; a re-read page is harmless because events are keyed by Miro's id (see store/audit.py).

Faults: an event without an id or with an unparseable createdAt is recorded as rejected (with the
page cursor) and the run goes on; a window Miro refuses with 400 is halved (and re-read from its
start), never skipped; anything else (auth, persistent 5xx/429, DynamoDB) stops the run with the
checkpoint where it was. The watermark only moves to events that are stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from miro_sync.miro.errors import MiroBadRequest
from miro_sync.store.audit import AuditRecord, RejectedEvent, StoredEvent, canonical_time
from miro_sync.sync.audit_events import as_raw, parse_timestamp, to_record
from miro_sync.sync.audit_prefetch import prefetched
from miro_sync.sync.audit_signals import MemberSignals, SignalAggregator

CHECKPOINT_NAME = "audit"
MIRO_RETENTION = timedelta(days=90)
# Stay this far inside Miro's 90 days: a window planned now may be fetched minutes later.
RETENTION_MARGIN = timedelta(minutes=15)
# Windows are never narrowed below this; a 400 for a window this small is a real error.
MIN_WINDOW = timedelta(seconds=1)
# Ask for events from 1 ms before each window: whether Miro's createdAfter is inclusive or
# exclusive, an event exactly at a window boundary is fetched (twice at worst; stored once).
BOUNDARY_SLACK = timedelta(milliseconds=1)


# --- ports ------------------------------------------------------------------------------------


class AuditPageLike(Protocol):
    @property
    def data(self) -> Sequence[Any]: ...

    @property
    def next_cursor(self) -> str | None: ...


class AuditSource(Protocol):
    """`MiroRestClient.iter_audit_pages`."""

    def iter_audit_pages(
        self,
        created_after: datetime,
        created_before: datetime,
        cursor: str | None = None,
        limit: int = 100,
        sorting: str = "ASC",
    ) -> Iterator[AuditPageLike]: ...


class AuditStore(Protocol):
    def filter_new(self, records: Sequence[AuditRecord]) -> list[AuditRecord]: ...

    def put(self, records: Sequence[AuditRecord]) -> None: ...

    def query_time_range(self, start: datetime, end: datetime) -> Iterator[StoredEvent]: ...


class RejectLog(Protocol):
    def record(self, rejects: Sequence[RejectedEvent], *, now: datetime) -> None: ...


class CheckpointLike(Protocol):
    @property
    def state(self) -> dict[str, Any]: ...


class Checkpoints(Protocol):
    """The part of `StateRepository` used here."""

    def load_checkpoint(self, name: str) -> CheckpointLike | None: ...

    def acquire_lease(self, name: str, owner: str, *, now_ms: int, until_ms: int) -> bool: ...

    def save_checkpoint(self, name: str, owner: str, state: Mapping[str, Any]) -> None: ...

    def release_lease(self, name: str, owner: str) -> None: ...


class Forwarder(Protocol):
    def publish(self, events: Sequence[Mapping[str, Any]]) -> None: ...


class DeadlineLike(Protocol):
    def running_low(self) -> bool: ...


# --- configuration and result -----------------------------------------------------------------


@dataclass(frozen=True)
class AuditSyncConfig:
    backfill_days: int = 90
    overlap: timedelta = timedelta(minutes=10)
    window: timedelta = timedelta(hours=24)
    page_size: int = 100
    # Flush derived signals at least this often (pending actors), besides the end of each invocation.
    max_pending_signals: int = 20_000
    # Threads writing member signals (1 = in the calling thread).
    signal_workers: int = 4
    # Pages fetched ahead by a background thread while the current one is written (0 = none).
    prefetch_pages: int = 2


@dataclass
class AuditSyncResult:
    status: str = "complete"  # complete | continue | busy
    pages: int = 0
    events_seen: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    forwarded: int = 0
    signals_written: int = 0
    signals_replayed: int = 0
    windows_narrowed: int = 0
    retention_clamps: int = 0
    watermark: str | None = None
    run_start: str | None = None
    run_end: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def metrics(self) -> dict[str, float]:
        return {
            "AuditPages": self.pages,
            "AuditEventsSeen": self.events_seen,
            "AuditEventsStored": self.stored,
            "AuditDuplicates": self.duplicates,
            "AuditRejected": self.rejected,
            "AuditForwarded": self.forwarded,
            "AuditSignalsWritten": self.signals_written,
            "AuditWindowsNarrowed": self.windows_narrowed,
        }


class AuditWindowRefused(RuntimeError):  # noqa: N818 - reads as what happened
    """Miro refused a window that cannot be narrowed further; the checkpoint stays before it."""


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _time(value: str) -> datetime:
    moment = parse_timestamp(value)
    if moment is None:  # only our own canonical strings are parsed here
        raise ValueError(f"bad checkpoint timestamp {value!r}")
    return moment


@dataclass
class _Run:
    """The in-progress run as stored in the checkpoint."""

    start: str
    end: str
    window_start: str
    window_end: str
    cursor: str | None = None

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> _Run:
        return cls(
            start=data["start"],
            end=data["end"],
            window_start=data["windowStart"],
            window_end=data["windowEnd"],
            cursor=data.get("cursor") or None,
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "windowStart": self.window_start,
            "windowEnd": self.window_end,
            "cursor": self.cursor,
        }


@dataclass
class _Session:
    owner: str
    lease_ms: int
    lease_until_ms: int
    state: dict[str, Any] = field(default_factory=dict)


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
    ) -> None:
        self._source = source
        self._store = store
        self._rejects = rejects
        self._checkpoints = checkpoints
        self._forwarder = forwarder
        self._config = config or AuditSyncConfig()
        self._signals = SignalAggregator(members, workers=self._config.signal_workers)
        self._clock = clock

    # --- the run ----------------------------------------------------------------------------------

    def run(self, *, owner: str, deadline: DeadlineLike, lease_ms: int = 20 * 60_000) -> AuditSyncResult:
        """Sync until done or until `deadline` runs low (status "continue": call again to resume)."""
        result = AuditSyncResult()
        now_ms = _ms(self._clock())
        if not self._checkpoints.acquire_lease(
            CHECKPOINT_NAME, owner, now_ms=now_ms, until_ms=now_ms + lease_ms
        ):
            result.status = "busy"
            return result
        session = _Session(owner=owner, lease_ms=lease_ms, lease_until_ms=now_ms + lease_ms)
        try:
            stored = self._checkpoints.load_checkpoint(CHECKPOINT_NAME)
            session.state = dict(stored.state) if stored is not None else {}
            self._replay_signals(session, result)
            run = self._current_run(session, result)
            self._walk(run, session, result, deadline)
        finally:
            try:
                self._flush_signals(session, result)
            finally:
                self._checkpoints.release_lease(CHECKPOINT_NAME, owner)
        result.watermark = session.state.get("watermark")
        return result

    def _current_run(self, session: _Session, result: AuditSyncResult) -> _Run:
        existing = session.state.get("run")
        if existing:
            run = _Run.from_state(existing)
        else:
            now = self._clock()
            earliest = now - MIRO_RETENTION + RETENTION_MARGIN
            watermark = session.state.get("watermark") or session.state.get("scannedUntil")
            if watermark:
                start = _time(watermark) - self._config.overlap
            else:
                start = now - timedelta(days=self._config.backfill_days)
            start = max(start, earliest)
            window_end = min(start + self._config.window, now)
            run = _Run(
                start=canonical_time(start),
                end=canonical_time(now),
                window_start=canonical_time(start),
                window_end=canonical_time(window_end),
            )
            session.state["run"] = run.to_state()
            self._save(session)
        result.run_start, result.run_end = run.start, run.end
        return run

    def _walk(self, run: _Run, session: _Session, result: AuditSyncResult, deadline: DeadlineLike) -> None:
        while True:
            if run.window_start >= run.end:
                self._complete(run, session)
                return
            self._clamp_to_retention(run, result)
            window_start, window_end = _time(run.window_start), _time(run.window_end)
            listing = self._source.iter_audit_pages(
                window_start - BOUNDARY_SLACK,
                window_end,
                cursor=run.cursor,
                limit=self._config.page_size,
                sorting="ASC",
            )
            try:
                with self._ahead(listing) as pages:
                    for page in pages:
                        self._process_page(page, run, session, result)
                        if deadline.running_low() and run.window_start < run.end:
                            result.status = "continue"
                            return
                        if run.cursor is None:
                            break  # window done: the next one starts with a new listing
            except MiroBadRequest:
                self._narrow(run, session, result)

    def _ahead(self, listing: Iterator[AuditPageLike]) -> AbstractContextManager[Iterator[AuditPageLike]]:
        if self._config.prefetch_pages > 0:
            return prefetched(listing, depth=self._config.prefetch_pages)
        return nullcontext(listing)

    def _clamp_to_retention(self, run: _Run, result: AuditSyncResult) -> None:
        """Events older than Miro's 90 days are gone there; asking for them is a 400, not a gap to fill."""
        earliest = canonical_time(self._clock() - MIRO_RETENTION + RETENTION_MARGIN)
        if run.window_start < earliest:
            run.window_start = earliest
            run.cursor = None
            if run.window_end <= run.window_start:
                run.window_end = canonical_time(min(_time(earliest) + self._config.window, _time(run.end)))
            result.retention_clamps += 1

    def _narrow(self, run: _Run, session: _Session, result: AuditSyncResult) -> None:
        window_start, window_end = _time(run.window_start), _time(run.window_end)
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

    def _process_page(
        self, page: AuditPageLike, run: _Run, session: _Session, result: AuditSyncResult
    ) -> None:
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
        new = self._store.filter_new(records)
        if new and self._forwarder is not None:
            # Before the write: a crash in between re-publishes (at least once) instead of losing.
            self._forwarder.publish([record.raw for record in new])
            result.forwarded += len(new)
        self._store.put(new)
        result.stored += len(new)
        result.duplicates += len(records) - len(new)
        self._signals.add(records)
        if records:
            newest = max(record.created_at_key for record in records)
            watermark = session.state.get("watermark")
            if watermark is None or newest > watermark:
                session.state["watermark"] = newest
        next_cursor = page.next_cursor
        if next_cursor:
            run.cursor = next_cursor
        else:
            run.window_start = run.window_end
            run.window_end = canonical_time(
                min(_time(run.window_start) + self._config.window, _time(run.end))
            )
            run.cursor = None
        session.state["run"] = run.to_state()
        if self._signals.pending >= self._config.max_pending_signals:
            self._flush_signals(session, result)
        else:
            self._save(session)

    def _complete(self, run: _Run, session: _Session) -> None:
        session.state["scannedUntil"] = run.end
        session.state["run"] = None
        self._save(session)

    # --- derived signals --------------------------------------------------------------------------

    def _flush_signals(self, session: _Session, result: AuditSyncResult) -> None:
        if self._signals.pending:
            result.signals_written += self._signals.flush()
        watermark = session.state.get("watermark")
        if watermark and session.state.get("signalsThrough") != watermark:
            session.state["signalsThrough"] = watermark
        self._save(session)

    def _replay_signals(self, session: _Session, result: AuditSyncResult) -> None:
        """After a crash, signals of events stored past `signalsThrough` were never written: redo them."""
        watermark = session.state.get("watermark")
        through = session.state.get("signalsThrough")
        if not watermark or (through is not None and through >= watermark):
            return
        if through is not None:
            start = _time(through) - self._config.overlap
        else:
            run = session.state.get("run")
            start = _time(run["start"]) if run else _time(watermark) - self._config.overlap
        end = _time(watermark) + timedelta(milliseconds=1)
        for stored in self._store.query_time_range(start, end):
            outcome = to_record(stored.raw)
            if not isinstance(outcome, str):
                self._signals.add([outcome])
                result.signals_replayed += 1
        self._flush_signals(session, result)

    # --- checkpoint -------------------------------------------------------------------------------

    def _save(self, session: _Session) -> None:
        now_ms = _ms(self._clock())
        # Extend the lease when half of it is gone (ours already, so this cannot steal it); a lease
        # lost to another invocation makes save_checkpoint raise.
        if session.lease_until_ms - now_ms < session.lease_ms // 2 and self._checkpoints.acquire_lease(
            CHECKPOINT_NAME, session.owner, now_ms=now_ms, until_ms=now_ms + session.lease_ms
        ):
            session.lease_until_ms = now_ms + session.lease_ms
        self._checkpoints.save_checkpoint(CHECKPOINT_NAME, session.owner, session.state)
