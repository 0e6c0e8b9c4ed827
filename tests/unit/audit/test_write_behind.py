"""Write-behind and the write bound: which events are looked up before writing, and what a page
whose write did not complete (or completed without being checkpointed) leaves behind."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from miro_sync.store.audit import AuditRecord, AuditRepository, StoredEvent, canonical_time
from miro_sync.sync.audit import AuditSyncConfig
from tests.unit.audit.fakes import T0, FakeAuditApi, FakeClock, Killed, make_event
from tests.unit.audit.harness import Harness, run_to_completion
from tests.unit.audit.tables import Tables

PAGE = 10


class SpyStore:
    """The real repository, recording which events were looked up and failing the chosen write."""

    def __init__(self, inner: AuditRepository, log: SpyLog) -> None:
        self._inner = inner
        self._log = log

    def filter_new(self, records: Sequence[AuditRecord]) -> list[AuditRecord]:
        self._log.checked.extend(record.event_id for record in records)
        return self._inner.filter_new(records)

    def put(self, records: Sequence[AuditRecord]) -> None:
        self._log.puts += 1
        if self._log.puts == self._log.fail_put:
            raise RuntimeError("DynamoDB unavailable")
        self._inner.put(records)

    def query_time_range(self, start: datetime, end: datetime) -> Iterator[StoredEvent]:
        return self._inner.query_time_range(start, end)


class SpyLog:
    def __init__(self, fail_put: int | None = None) -> None:
        self.checked: list[str] = []
        self.puts = 0
        self.fail_put = fail_put


class DyingCheckpoints:
    """The real checkpoints; the process dies at the chosen save and stays dead."""

    def __init__(self, inner: Any, counter: list[int], die_at: int) -> None:
        self._inner = inner
        self._counter = counter
        self._die_at = die_at

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def save_checkpoint(self, name: str, owner: str, state: Mapping[str, Any]) -> None:
        self._counter[0] += 1
        if self._counter[0] >= self._die_at:
            raise Killed
        self._inner.save_checkpoint(name, owner, state)

    def release_lease(self, name: str, owner: str) -> None:
        if self._counter[0] >= self._die_at:
            raise Killed  # a dead process releases nothing: its lease expires
        self._inner.release_lease(name, owner)


def harness(tables: Tables, log: SpyLog) -> Harness:
    clock = FakeClock()
    # One window holds every event, so pages are exactly PAGE events each.
    config = AuditSyncConfig(backfill_days=3, window=timedelta(days=4), page_size=PAGE, signal_workers=1)
    h = Harness(tables=tables, api=FakeAuditApi(clock=clock), clock=clock, config=config)
    h.audit_wrapper = lambda repository: SpyStore(repository, log)
    return h


def seed(h: Harness, count: int, *, prefix: str = "e") -> list[str]:
    """`count` events 30 minutes apart, the last one 30 minutes before now."""
    ids = []
    for number in range(count):
        at = T0 - timedelta(minutes=30 * (count - number))
        h.api.add(at, make_event(f"{prefix}{number:05d}", at))
        ids.append(f"{prefix}{number:05d}")
    return ids


def test_only_events_up_to_the_write_bound_are_looked_up(tables: Tables) -> None:
    log = SpyLog()
    h = harness(tables, log)
    first_ids = seed(h, 95)
    (first,) = run_to_completion(h)
    assert first.stored == 95
    assert log.checked == []  # a backfill into an empty table never asks what exists
    assert sum(runner.submitted for runner in h.write_runners) == log.puts == 10

    h.clock.advance(timedelta(hours=1))
    new_ids = []
    for number in range(7):
        at = T0 + timedelta(minutes=number + 1)
        h.api.add(at, make_event(f"n{number}", at))
        new_ids.append(f"n{number}")
    (second,) = run_to_completion(h)
    # The overlap (10 minutes before the watermark) holds only the newest stored event: it alone is
    # looked up; the events past the watermark are written directly.
    assert log.checked == [first_ids[-1]]
    assert second.stored == 7
    assert second.duplicates == 1
    assert h.stored_ids() == sorted(first_ids + new_ids)
    assert [event["id"] for event in h.forwarder.published] == first_ids + new_ids


def test_a_page_written_but_not_checkpointed_is_looked_up_again_and_not_forwarded_twice(
    tables: Tables,
) -> None:
    log = SpyLog()
    h = harness(tables, log)
    ids = seed(h, 35)
    saves = [0]
    # Save 1 starts the run, save 2 reserves the bound of page 1 and starts its write, save 3 would
    # commit page 1: the process dies after page 1 reached the table, before the checkpoint says so.
    h.checkpoints_wrapper = lambda checkpoints: DyingCheckpoints(checkpoints, saves, die_at=3)
    with pytest.raises(Killed):
        h.sync().run(owner="dies", deadline=_no_deadline(), lease_ms=60_000)
    assert h.stored_ids() == ids[:PAGE]
    checkpoint = h.checkpoint()
    assert checkpoint["run"]["cursor"] is None
    assert checkpoint.get("watermark") is None
    assert checkpoint["writeBound"] == _created_at(h, ids[PAGE - 1])

    h.checkpoints_wrapper = lambda checkpoints: checkpoints
    h.clock.advance(timedelta(minutes=2))  # the dead invocation's lease expires
    (result,) = run_to_completion(h, owner_prefix="next")
    assert log.checked == ids[:PAGE]  # exactly the page within the saved bound
    assert result.stored == 35 - PAGE
    assert result.duplicates == PAGE
    assert h.stored_ids() == sorted(ids)
    published = [event["id"] for event in h.forwarder.published]
    assert sorted(published) == sorted(ids)  # each once: page 1 was forwarded before it was written


def test_a_failed_write_leaves_the_checkpoint_at_the_last_written_page(tables: Tables) -> None:
    log = SpyLog(fail_put=2)
    h = harness(tables, log)
    h.config = replace(h.config, write_depth=1)
    ids = seed(h, 35)
    with pytest.raises(RuntimeError, match="DynamoDB unavailable"):
        h.sync().run(owner="fails", deadline=_no_deadline(), lease_ms=60_000)
    # Page 3 was fetched and checked while page 2's write was in flight; neither is committed.
    checkpoint = h.checkpoint()
    assert checkpoint["watermark"] == _created_at(h, ids[PAGE - 1])
    assert checkpoint["run"]["cursor"] == str(PAGE)
    assert h.stored_ids() == ids[:PAGE]

    h.clock.advance(timedelta(minutes=2))
    run_to_completion(h, owner_prefix="next")
    assert h.stored_ids() == sorted(ids)
    # Page 2 was forwarded before its write failed, and again when it was written: at least once.
    published = [event["id"] for event in h.forwarder.published]
    assert sorted(published) == sorted(ids + ids[PAGE : 2 * PAGE])


def test_writes_landing_out_of_order_commit_only_the_written_prefix_and_converge(tables: Tables) -> None:
    log = SpyLog(fail_put=2)
    h = harness(tables, log)
    h.config = replace(h.config, write_depth=3)
    ids = seed(h, 35)
    with pytest.raises(RuntimeError, match="DynamoDB unavailable"):
        h.sync().run(owner="fails", deadline=_no_deadline(), lease_ms=60_000)
    # Pages 2-4 were in flight together; 2 failed, 3 and 4 landed after it: the table has a gap,
    # and the checkpoint stays at page 1, the last page with every write up to it landed.
    assert h.stored_ids() == ids[:PAGE] + ids[2 * PAGE :]
    checkpoint = h.checkpoint()
    assert checkpoint["watermark"] == _created_at(h, ids[PAGE - 1])
    assert checkpoint["run"]["cursor"] == str(PAGE)
    assert checkpoint["writeBound"] == _created_at(h, ids[-1])

    h.clock.advance(timedelta(minutes=2))
    log.checked.clear()
    (result,) = run_to_completion(h, owner_prefix="next")
    assert log.checked == ids[PAGE:]  # everything within the saved bound is looked up
    assert result.stored == PAGE  # only the gap is written
    assert h.stored_ids() == sorted(ids)
    published = [event["id"] for event in h.forwarder.published]
    assert sorted(published) == sorted(ids + ids[PAGE : 2 * PAGE])


def _created_at(h: Harness, event_id: str) -> str:
    (stored,) = [item for item in h.tables.audit.scan()["Items"] if item["eventId"] == event_id]
    return str(stored["createdAt"])


def _no_deadline() -> Any:
    from miro_sync.continuation import NoDeadline

    return NoDeadline()


class DeadAtFirstFlush:
    """Members whose first signal flush kills the process (the run itself had completed)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get_many(self, member_ids: Any) -> Any:
        raise Killed


def test_signals_of_a_first_run_that_died_before_its_first_flush_are_replayed_in_full(
    tables: Tables,
) -> None:
    h = harness(tables, SpyLog())
    h.add_member("m1", "m1@acme.example")
    old_sign_in = T0 - timedelta(days=2)
    h.api.add(old_sign_in, make_event("s1", old_sign_in, event="sign_in_succeeded", actor_id="m1"))
    seed(h, 15)  # newer activity, so the watermark is far from the sign-in
    h.members_wrapper = DeadAtFirstFlush
    with pytest.raises(Killed):
        h.sync().run(owner="dies", deadline=_no_deadline(), lease_ms=60_000)
    assert h.checkpoint()["run"] is None  # the run completed; only its signals are missing
    assert h.checkpoint()["signalsThrough"] < canonical_time(old_sign_in)

    h.members_wrapper = lambda members: members
    h.clock.advance(timedelta(minutes=2))
    (result,) = run_to_completion(h, owner_prefix="next")
    assert result.signals_replayed == 16
    record = h.members.get("m1")
    assert record is not None
    assert record.last_sign_in_at == old_sign_in
