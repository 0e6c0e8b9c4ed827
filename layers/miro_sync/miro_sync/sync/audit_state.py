"""The audit sync's configuration, result and run state: the run position kept in the checkpoint,
the lease, the signal flush in progress, and the write pipeline that commits pages in order."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from miro_sync.store.audit import AuditRecord
from miro_sync.sync.audit_checkpoint import CheckpointSaver
from miro_sync.sync.audit_events import parse_timestamp
from miro_sync.sync.audit_ports import InlineWrites, PendingWrite, WriteRunner, Written

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
    # Pages fetched ahead per window by background threads while the current one is written
    # (0 = none: fetch in the calling thread, one window at a time).
    prefetch_pages: int = 12
    # Windows paged concurrently (consumed in order); their cursor chains overlap, the pacer is shared.
    prefetch_windows: int = 3
    # Write pages, save checkpoints and flush signals in background threads while the next pages are
    # processed (False = all of it inline, in the calling thread).
    write_behind: bool = True
    # Page writes in flight at once (each covered by the saved write bound before it starts).
    write_depth: int = 3


@dataclass
class AuditSyncResult:
    outcome: str = "complete"  # complete | continue | busy
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

    def counters(self) -> dict[str, float]:
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


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def checkpoint_time(value: str) -> datetime:
    moment = parse_timestamp(value)
    if moment is None:  # only our own canonical strings are parsed here
        raise ValueError(f"bad checkpoint timestamp {value!r}")
    return moment


@dataclass
class RunPosition:
    """The in-progress run as stored in the checkpoint."""

    start: str
    end: str
    window_start: str
    window_end: str
    cursor: str | None = None

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> RunPosition:
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
class Lease:
    owner: str
    length_ms: int
    until_ms: int


@dataclass
class SignalFlush:
    """A batch of signals being written; `signalsThrough` may move to `through` once it is."""

    through: str | None
    write: PendingWrite = field(default_factory=Written)
    written: int = 0


@dataclass
class Session:
    lease: Lease
    saver: CheckpointSaver
    state: dict[str, Any] = field(default_factory=dict)
    signal_runner: WriteRunner = field(default_factory=InlineWrites)
    signal_flush: SignalFlush | None = None


# A listing of the plan: (window start, window end, cursor), as in the checkpoint.
WindowKey = tuple[str, str, str | None]

# Larger than any canonical timestamp: "every event may be stored".
EVERYTHING = "9999"


def created_at_of(sk: str) -> str:
    """The createdAt a key starts with (canonical, fixed width: keys sort as their times)."""
    return sk.partition("#")[0]


@dataclass
class PreparedPage:
    """A parsed page: what to write, and what the checkpoint says once it is written."""

    records: list[AuditRecord]
    new: list[AuditRecord]
    position: dict[str, Any]
    # The newest createdAt of the page (the watermark once committed) and of its new events (the
    # write bound its write needs); the keys of the new events.
    newest: str | None
    newest_new: str | None
    new_keys: frozenset[str]


@dataclass(frozen=True)
class InFlight:
    page: PreparedPage
    write: PendingWrite


@dataclass
class WritePipeline:
    """Page writes in flight, oldest first. Writes may land in any order; pages are committed (their
    position, watermark and signals taken into the checkpoint) strictly in order, each once every
    write up to it landed."""

    writes: WriteRunner
    # Events newer than this cannot be stored (see the module docstring); None: nothing ever written.
    bound: str | None
    depth: int = 1
    in_flight: deque[InFlight] = field(default_factory=deque)
    # The checkpoint save that records `bound`: a write starts once it is saved (0: saved before).
    bound_ticket: int = 0

    @classmethod
    def resume(cls, writes: WriteRunner, state: Mapping[str, Any], depth: int = 1) -> WritePipeline:
        if state.get("run") and "writeBound" not in state:
            # A run checkpointed before write bounds existed: anything may have been written.
            return cls(writes, EVERYTHING, max(1, depth))
        candidates = [value for value in (state.get("watermark"), state.get("writeBound")) if value]
        return cls(writes, max(candidates) if candidates else None, max(1, depth))

    def is_being_written(self, sk: str) -> bool:
        return any(sk in entry.page.new_keys for entry in self.in_flight)
