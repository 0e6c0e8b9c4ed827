"""The audit sync's ports (what it is handed: Miro, the tables, the forwarder, the deadline) and the
runners its page writes and signal flushes go through (inline, or background threads)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any, Protocol

from miro_sync.store.audit import AuditRecord, RejectedEvent, StoredEvent

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


class PendingWrite(Protocol):
    def result(self) -> object: ...

    def done(self) -> bool: ...


class WriteRunner(Protocol):
    """Runs page writes in the background (`ThreadPoolExecutor`); they may land in any order."""

    def submit(self, fn: Callable[[], object], /) -> PendingWrite: ...


WriteRunnerFactory = Callable[[], AbstractContextManager[WriteRunner]]


class Written:
    """A write that already happened (or had nothing to write)."""

    def result(self) -> object:
        return None

    def done(self) -> bool:
        return True


class InlineWrites:
    """Each write runs at submit, in the calling thread (no write-behind)."""

    def submit(self, fn: Callable[[], object], /) -> PendingWrite:
        fn()
        return Written()


def inline_writes() -> AbstractContextManager[WriteRunner]:
    return nullcontext(InlineWrites())


def background_writes(workers: int = 1) -> AbstractContextManager[WriteRunner]:
    # Writes may land out of order; pages are committed in order (see WritePipeline). Leaving the block
    # waits for the writes in flight, so no thread outlives the run.
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="audit-write")


def background_signal_flushes() -> AbstractContextManager[WriteRunner]:
    # One thread: one signal batch is written at a time (see audit_signals).
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-signals")
