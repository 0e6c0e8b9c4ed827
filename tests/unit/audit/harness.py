"""Wires the audit sync to real repositories (moto) and the fake audit API."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from miro_sync.store.audit import AuditRepository, RejectedEventsRepository
from miro_sync.store.members import MemberRecord, MembersRepository
from miro_sync.store.state import StateRepository
from miro_sync.sync.audit import AuditLogSync, AuditSyncConfig, AuditSyncResult
from miro_sync.sync.audit_checkpoint import CheckpointSaver, Persist, inline_saves
from tests.unit.audit.fakes import (
    DeferredWrites,
    FakeAuditApi,
    FakeClock,
    KillableStore,
    KillSwitch,
    RecordingForwarder,
)
from tests.unit.audit.tables import Tables


@dataclass
class Harness:
    tables: Tables
    api: FakeAuditApi
    clock: FakeClock
    config: AuditSyncConfig
    forwarder: RecordingForwarder = field(default_factory=RecordingForwarder)
    # Whether writes still waiting when an invocation fails land (see DeferredWrites).
    land_writes_on_exit: bool = True
    # Every write runner handed out, so a test can see that writes really were deferred.
    write_runners: list[DeferredWrites] = field(default_factory=list)
    # Signal batches written "in the background" (deferred like the writes), one runner per invocation.
    signal_runners: list[DeferredWrites] = field(default_factory=list)
    # How checkpoints are saved: inline (each save at its request) unless a test hands in another
    # saver, e.g. DeferredSaves (the background saver at its slowest); every saver handed out.
    saves: Callable[[Persist], AbstractContextManager[CheckpointSaver]] = inline_saves
    savers: list[Any] = field(default_factory=list)
    # Wraps the audit repository / the checkpoints of every invocation (spies and faults in tests).
    audit_wrapper: Callable[[Any], Any] = field(default=lambda adapter: adapter)
    checkpoints_wrapper: Callable[[Any], Any] = field(default=lambda adapter: adapter)
    members_wrapper: Callable[[Any], Any] = field(default=lambda adapter: adapter)

    @property
    def audit(self) -> AuditRepository:
        return AuditRepository(self.tables.audit, retention_days=400)

    @property
    def members(self) -> MembersRepository:
        return MembersRepository(self.tables.members)

    def sync(self, switch: KillSwitch | None = None) -> AuditLogSync:
        def wrap(adapter: Any) -> Any:
            return KillableStore(adapter, switch) if switch is not None else adapter

        return AuditLogSync(
            source=self.api,
            store=wrap(self.audit_wrapper(self.audit)),
            rejects=wrap(RejectedEventsRepository(self.tables.state)),
            checkpoints=wrap(self.checkpoints_wrapper(StateRepository(self.tables.state))),
            members=wrap(self.members_wrapper(self.members)),
            forwarder=wrap(self.forwarder),
            config=self.config,
            clock=self.clock,
            writes=self._deferred_writes,
            saves=self._saver,
            signal_flushes=self._deferred_signal_flushes,
        )

    def _deferred_writes(self) -> DeferredWrites:
        runner = DeferredWrites(land_on_exit=self.land_writes_on_exit)
        self.write_runners.append(runner)
        return runner

    def _deferred_signal_flushes(self) -> DeferredWrites:
        runner = DeferredWrites(land_on_exit=self.land_writes_on_exit)
        self.signal_runners.append(runner)
        return runner

    def _saver(self, persist: Persist) -> AbstractContextManager[CheckpointSaver]:
        saver = self.saves(persist)
        self.savers.append(saver)
        return saver

    def stored_ids(self) -> list[str]:
        items: list[dict[str, Any]] = []
        # Only the ids: moto spends most of a scan serializing items, and `raw` is the bulk of them.
        kwargs: dict[str, Any] = {"ProjectionExpression": "eventId"}
        while True:
            response = self.tables.audit.scan(**kwargs)
            items.extend(response["Items"])
            if "LastEvaluatedKey" not in response:
                return sorted(item["eventId"] for item in items)
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def rejected(self) -> list[dict[str, Any]]:
        return RejectedEventsRepository(self.tables.state).list(limit=1000)

    def checkpoint(self) -> dict[str, Any]:
        stored = StateRepository(self.tables.state).load_checkpoint("audit")
        assert stored is not None
        return stored.state

    def add_member(self, member_id: str, email: str) -> None:
        record = MemberRecord(
            member_id=member_id,
            email=email,
            role="organization_internal_user",
            license="full",
            active=True,
            status="active",
        )
        self.members.put_new([record])


def run_to_completion(
    harness: Harness, *, max_invocations: int = 500, owner_prefix: str = "inv"
) -> list[AuditSyncResult]:
    from miro_sync.continuation import NoDeadline

    results = []
    for number in range(max_invocations):
        result = harness.sync().run(owner=f"{owner_prefix}-{number}", deadline=NoDeadline(), lease_ms=60_000)
        results.append(result)
        if result.outcome == "complete":
            return results
    raise AssertionError("the sync did not complete")


def day(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


ONE_MINUTE = timedelta(minutes=1)
