"""Derived member signals from audit events: last sign-in and last audit activity.

Signals are "newest wins", so they are aggregated in memory (newest per actor) and written once per
actor per flush instead of once per event or page: a 90-day backfill of 200,000 events touches each
member a handful of times instead of ~100,000 updates. What has been flushed is remembered in the
checkpoint (`signalsThrough`); after a crash the sync replays the stored events past that point.

A flush is two steps, so that the sync can write one batch in the background while it goes on adding
the next: `take` hands over what is pending (and starts a new batch), `write` writes a taken batch.
One batch is written at a time (the email lookups it caches are not shared between threads).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from miro_sync.store.audit import AuditRecord
from miro_sync.sync.audit_events import is_activity, is_sign_in


class MemberRef(Protocol):
    @property
    def member_id(self) -> str: ...


class MemberSignalState(Protocol):
    @property
    def last_sign_in_at(self) -> datetime | None: ...

    @property
    def last_audit_activity_at(self) -> datetime | None: ...


class MemberSignals(Protocol):
    """The part of `MembersRepository` the audit sync uses."""

    def find_by_email(self, email: str) -> MemberRef | None: ...

    def get_many(self, member_ids: Iterable[str]) -> tuple[Mapping[str, MemberSignalState], int]: ...

    def record_sign_in(self, member_id: str, at: datetime) -> bool: ...

    def record_audit_activity(self, member_id: str, at: datetime) -> bool: ...


# (member id, email): the id when the event has one (Miro's createdBy.id is the member id),
# otherwise the email, resolved through the members table at flush time.
ActorKey = tuple[str | None, str | None]


@dataclass(frozen=True)
class SignalBatch:
    """Signals taken from the aggregator (newest per actor), not written yet."""

    sign_in: dict[ActorKey, datetime]
    activity: dict[ActorKey, datetime]

    def __len__(self) -> int:
        return len(self.sign_in) + len(self.activity)


class SignalAggregator:
    def __init__(self, members: MemberSignals, *, workers: int = 4) -> None:
        self._members = members
        self._workers = workers
        self._sign_in: dict[ActorKey, datetime] = {}
        self._activity: dict[ActorKey, datetime] = {}
        self._email_to_id: dict[str, str | None] = {}
        self.written = 0
        self.unknown_actors = 0

    @property
    def pending(self) -> int:
        return len(self._sign_in) + len(self._activity)

    def add(self, records: Iterable[AuditRecord]) -> None:
        for record in records:
            key: ActorKey = (record.actor_id, None) if record.actor_id else (None, record.actor_email)
            if key == (None, None):
                continue
            if is_sign_in(record):
                _keep_newest(self._sign_in, key, record.created_at)
            if is_activity(record):
                _keep_newest(self._activity, key, record.created_at)

    def flush(self) -> int:
        """Write every pending signal; returns how many updates changed a member."""
        return self.write(self.take())

    def take(self) -> SignalBatch:
        """What is pending, to be written by `write`; adding starts a new batch."""
        batch = SignalBatch(sign_in=self._sign_in, activity=self._activity)
        self._sign_in, self._activity = {}, {}
        return batch

    def write(self, batch: SignalBatch) -> int:
        """Write a taken batch; returns how many updates changed a member."""
        # Grouped per member: one member's updates run in order on one thread (no self-contention).
        work: dict[str, list[tuple[str, datetime]]] = {}
        for kind, pending in (("sign_in", batch.sign_in), ("activity", batch.activity)):
            for key, moment in pending.items():
                member_id = self._resolve(key)
                if member_id is None:
                    self.unknown_actors += 1
                    continue
                work.setdefault(member_id, []).append((kind, moment))
        work = self._only_needed(work)
        if not work:
            return 0
        if self._workers <= 1:
            outcomes = [self._write_member(member_id, jobs) for member_id, jobs in work.items()]
        else:
            # A few threads: each update is one small DynamoDB round trip, latency-bound.
            with ThreadPoolExecutor(max_workers=self._workers) as pool:
                outcomes = list(pool.map(lambda entry: self._write_member(*entry), work.items()))
        written = sum(outcomes)
        self.written += written
        return written

    def _only_needed(
        self, work: dict[str, list[tuple[str, datetime]]]
    ) -> dict[str, list[tuple[str, datetime]]]:
        """Drop updates that cannot change anything, read in batches of 100 (BatchGetItem) instead of
        finding out with one or two conditional UpdateItems each: members the table does not know
        (the members sync creates them) and signals already as new. The conditional update stays the
        guard against a concurrent writer; this read only saves round trips."""
        if not work:
            return work
        known, _ = self._members.get_many(work)
        needed: dict[str, list[tuple[str, datetime]]] = {}
        for member_id, jobs in work.items():
            state = known.get(member_id)
            if state is None:
                self.unknown_actors += 1
                continue
            newer = [(kind, moment) for kind, moment in jobs if _is_newer(state, kind, moment)]
            if newer:
                needed[member_id] = newer
        return needed

    def _write_member(self, member_id: str, jobs: list[tuple[str, datetime]]) -> int:
        return sum(self._write(kind, member_id, moment) for kind, moment in jobs)

    def _write(self, kind: str, member_id: str, moment: datetime) -> bool:
        if kind == "sign_in":
            return self._members.record_sign_in(member_id, moment)
        return self._members.record_audit_activity(member_id, moment)

    def _resolve(self, key: ActorKey) -> str | None:
        member_id, email = key
        if member_id:
            return member_id
        if email is None:  # an actor with neither id nor email names nobody
            return None
        if email not in self._email_to_id:
            member = self._members.find_by_email(email)
            self._email_to_id[email] = member.member_id if member is not None else None
        return self._email_to_id[email]


def _keep_newest(pending: dict[ActorKey, datetime], key: ActorKey, moment: datetime) -> None:
    current = pending.get(key)
    if current is None or moment > current:
        pending[key] = moment


def _is_newer(state: MemberSignalState, kind: str, moment: datetime) -> bool:
    current = state.last_sign_in_at if kind == "sign_in" else state.last_audit_activity_at
    return current is None or moment > current
