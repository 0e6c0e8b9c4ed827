"""Fakes for the audit sync: an audit-log API with faults, a fake clock, kill switches, a deadline."""

from __future__ import annotations

import bisect
import copy
import random
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from miro_sync.miro.errors import MiroBadRequest, MiroUnavailable
from miro_sync.store.audit import AuditRecord, canonical_time
from miro_sync.store.state import LeaseLostError
from miro_sync.sync.audit_checkpoint import Persist

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Killed(BaseException):
    """Not an Exception: nothing in the code under test may catch and survive it."""


@dataclass
class FakeClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Page:
    data: list[Any]
    cursor: str | None

    @property
    def next_cursor(self) -> str | None:
        return self.cursor


def make_event(
    event_id: str,
    at: datetime,
    *,
    event: str = "board_opened",
    actor_id: str = "m1",
    email: str | None = None,
) -> dict[str, Any]:
    return {
        "id": event_id,
        "createdAt": canonical_time(at),
        "event": event,
        "category": "authentication" if event.startswith("sign_in") else "boards",
        "context": {"ip": "10.0.0.1", "organization": {"id": "org", "name": "Acme"}},
        "object": {"id": "b1", "name": "Roadmap"},
        "createdBy": {
            "type": "user",
            "id": actor_id,
            "name": "Ada",
            "email": email or f"{actor_id}@acme.example",
        },
        "details": {},
    }


@dataclass
class FakeAuditApi:
    """`/v2/audit/logs` semantics: half-open [createdAfter, createdBefore), ASC, positional cursor,
    400 for windows older than 90 days, wider than `max_window`, or a bad cursor."""

    clock: FakeClock
    max_window: timedelta | None = None
    unavailable_rate: float = 0.0
    seed: int = 0
    _times: list[datetime] = field(default_factory=list)
    _events: list[Any] = field(default_factory=list)
    requests: int = 0
    refused: int = 0

    def add(self, at: datetime, raw: Any) -> None:
        """Insert an event that becomes visible at position by time (late events land in the past)."""
        position = bisect.bisect_right(self._times, at)
        self._times.insert(position, at)
        self._events.insert(position, raw)

    def iter_audit_pages(
        self,
        created_after: datetime,
        created_before: datetime,
        cursor: str | None = None,
        limit: int = 100,
        sorting: str = "ASC",
    ) -> Iterator[Page]:
        assert sorting == "ASC"
        rng = random.Random(f"{self.seed}/{self.requests}")
        while True:
            self.requests += 1
            if self.unavailable_rate and rng.random() < self.unavailable_rate:
                raise MiroUnavailable("Miro server error (retries exhausted)", status=503)
            if created_after < self.clock.now - timedelta(days=90):
                self.refused += 1
                raise MiroBadRequest("createdAfter must be within the last 90 days", status=400)
            if self.max_window is not None and created_before - created_after > self.max_window:
                self.refused += 1
                raise MiroBadRequest("time range too large", status=400)
            first = bisect.bisect_left(self._times, created_after)
            end = bisect.bisect_left(self._times, created_before)
            position = first
            if cursor is not None:
                position = int(cursor)
                if not first <= position <= end:
                    raise MiroBadRequest("Parameter 'cursor' is not valid", status=400)
            stop = min(end, position + limit)
            data = list(self._events[position:stop])
            cursor = str(stop) if stop < end else None
            yield Page(data=data, cursor=cursor)
            if cursor is None:
                return


@dataclass
class KillSwitch:
    """Counts operations; the `at`-th one and every one after it raise Killed (the process is gone)."""

    at: int | None = None
    count: int = 0
    fired: bool = False

    def tick(self) -> None:
        if self.fired:
            raise Killed
        self.count += 1
        if self.at is not None and self.count >= self.at:
            self.fired = True
            raise Killed


class KillableStore:
    """Wraps a store/checkpoints/members adapter: every call ticks the kill switch first."""

    def __init__(self, inner: Any, switch: KillSwitch) -> None:
        self._inner = inner
        self._switch = switch

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._switch.tick()
            return attribute(*args, **kwargs)

        return call


@dataclass
class PagesDeadline:
    """Runs low after `pages` checks (a Lambda running out of time at a chosen page)."""

    pages: int | None = None
    checks: int = 0

    def running_low(self) -> bool:
        self.checks += 1
        return self.pages is not None and self.checks >= self.pages


@dataclass
class RecordingForwarder:
    published: list[Mapping[str, Any]] = field(default_factory=list)

    def publish(self, events: Sequence[Mapping[str, Any]]) -> None:
        self.published.extend(events)


class _DeferredWrite:
    def __init__(self, fn: Callable[[], object]) -> None:
        self._fn: Callable[[], object] | None = fn

    def result(self) -> object:
        fn, self._fn = self._fn, None
        return fn() if fn is not None else None

    @property
    def waiting(self) -> bool:
        return self._fn is not None

    def done(self) -> bool:
        # Lands only when waited for: the latest a background write can land.
        return not self.waiting


@dataclass
class DeferredWrites:
    """Write-behind without a thread (moto's in-process DynamoDB is not thread-safe).

    A write runs only when the sync first waits for it, i.e. after the next page was fetched, checked
    and published: the latest a background write can land. Leaving the run by an exception either
    lets the writes still waiting land (as the real executor does) or drops them (a process killed
    before they reached DynamoDB).
    """

    land_on_exit: bool = True
    submitted: int = 0
    pending: list[_DeferredWrite] = field(default_factory=list)

    def submit(self, fn: Callable[[], object], /) -> _DeferredWrite:
        self.submitted += 1
        write = _DeferredWrite(fn)
        self.pending.append(write)
        return write

    def __enter__(self) -> DeferredWrites:
        return self

    def __exit__(self, *exc_info: object) -> None:
        waiting = [write for write in self.pending if write.waiting]
        self.pending.clear()
        if not self.land_on_exit:
            return
        for write in waiting:
            try:
                write.result()
            except (Killed, Exception):  # the run is failing anyway; its own error is the one raised
                return


@dataclass
class DeferredSaves:
    """The background checkpoint saver at its slowest, without a thread (moto is not thread-safe).

    A state is saved only when something has to wait for it (a write whose bound it records, the end
    of an invocation), and then the newest state requested is saved, as the real saver does: states
    requested in between are never saved. Leaving by an exception saves the newest state, as the real
    saver does; a killed process (KillableStore) cannot, so its newest state is lost.
    """

    persist: Persist
    requested: int = 0
    saved: int = 0
    # States persisted, in order (each a copy, as saved).
    persisted: list[dict[str, Any]] = field(default_factory=list)
    waiting: dict[str, Any] | None = None
    error: BaseException | None = None

    def request(self, state: Mapping[str, Any]) -> int:
        if self.error is not None:
            raise self.error
        self.requested += 1
        self.waiting = copy.deepcopy(dict(state))
        return self.requested

    def wait_saved(self, ticket: int) -> None:
        if self.error is not None:
            raise self.error
        if self.saved < ticket and self.waiting is not None:
            state, self.waiting = self.waiting, None
            try:
                self.persist(state)
            except BaseException as error:
                self.error = error
                raise
            self.saved = self.requested
            self.persisted.append(state)

    def flush(self) -> None:
        self.wait_saved(self.requested)

    def __enter__(self) -> DeferredSaves:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, traceback: object) -> None:
        if exc is None:
            self.flush()
            return
        try:
            self.flush()
        except (Killed, Exception):  # the run is failing anyway; its own error is the one raised
            return


# --- thread-safe in-memory adapters (for the real background threads; moto is not thread-safe) ---------


@dataclass
class MemoryAuditStore:
    """AuditTable as a dict keyed like the table (day/sk); `writes` counts every item written."""

    items: dict[str, AuditRecord] = field(default_factory=dict)
    writes: int = 0
    fail_put: int | None = None
    puts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def filter_new(self, records: Sequence[AuditRecord]) -> list[AuditRecord]:
        with self._lock:
            unique: dict[str, AuditRecord] = {}
            for record in records:
                unique.setdefault(record.sk, record)
            return [record for sk, record in unique.items() if sk not in self.items]

    def put(self, records: Sequence[AuditRecord]) -> None:
        with self._lock:
            self.puts += 1
            if self.puts == self.fail_put:
                raise RuntimeError("DynamoDB unavailable")
            for record in records:
                self.items[record.sk] = record
            self.writes += len(records)

    def query_time_range(self, start: datetime, end: datetime) -> Iterator[Any]:
        low, high = canonical_time(start), canonical_time(end)
        with self._lock:
            found = sorted((sk, record) for sk, record in self.items.items() if low <= sk <= high)
        for _, record in found:
            yield StoredRaw(raw=dict(record.raw))

    def stored_ids(self) -> list[str]:
        with self._lock:
            return sorted(record.event_id for record in self.items.values())


@dataclass(frozen=True)
class StoredRaw:
    raw: dict[str, Any]


@dataclass
class MemoryRejects:
    rejects: list[Any] = field(default_factory=list)

    def record(self, rejects: Sequence[Any], *, now: datetime) -> None:
        self.rejects.extend(rejects)


@dataclass
class _Checkpoint:
    state: dict[str, Any]


@dataclass
class MemoryCheckpoints:
    """StateTable's checkpoint item with its lease; `calls` logs every call in order."""

    state: dict[str, Any] | None = None
    owner: str | None = None
    until_ms: int = 0
    calls: list[tuple[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def load_checkpoint(self, name: str) -> _Checkpoint | None:
        with self._lock:
            return None if self.state is None else _Checkpoint(copy.deepcopy(self.state))

    def acquire_lease(self, name: str, owner: str, *, now_ms: int, until_ms: int) -> bool:
        with self._lock:
            if self.owner not in (None, owner) and self.until_ms >= now_ms:
                return False
            self.owner, self.until_ms = owner, until_ms
            self.calls.append(("acquire", owner))
            return True

    def save_checkpoint(self, name: str, owner: str, state: Mapping[str, Any]) -> None:
        with self._lock:
            if self.owner != owner:
                raise LeaseLostError(f"{owner} lost the lease")
            self.state = copy.deepcopy(dict(state))
            self.calls.append(("save", copy.deepcopy(dict(state))))

    def release_lease(self, name: str, owner: str) -> None:
        with self._lock:
            if self.owner == owner:
                self.until_ms = 0
            self.calls.append(("release", owner))

    def saved_states(self) -> list[dict[str, Any]]:
        with self._lock:
            return [state for call, state in self.calls if call == "save"]


@dataclass
class _Member:
    member_id: str
    last_sign_in_at: datetime | None = None
    last_audit_activity_at: datetime | None = None


@dataclass
class MemoryMembers:
    """Members whose signals only move forward (as the conditional updates of the real table)."""

    members: dict[str, _Member] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, member_id: str) -> None:
        self.members[member_id] = _Member(member_id)

    def find_by_email(self, email: str) -> _Member | None:
        return None

    def get_many(self, member_ids: Iterable[str]) -> tuple[dict[str, _Member], int]:
        with self._lock:
            found = {m: copy.copy(self.members[m]) for m in member_ids if m in self.members}
        return found, 1

    def record_sign_in(self, member_id: str, at: datetime) -> bool:
        return self._move(member_id, "last_sign_in_at", at)

    def record_audit_activity(self, member_id: str, at: datetime) -> bool:
        return self._move(member_id, "last_audit_activity_at", at)

    def _move(self, member_id: str, attribute: str, at: datetime) -> bool:
        with self._lock:
            member = self.members.get(member_id)
            current = getattr(member, attribute) if member is not None else None
            if member is None or (current is not None and current >= at):
                return False
            setattr(member, attribute, at)
            return True
