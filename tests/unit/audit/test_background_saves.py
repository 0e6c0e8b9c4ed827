"""Checkpoint saves and signal flushes off the main loop (sync/audit_checkpoint.py, AuditLogSync).

Two kinds of tests:

* real threads (the production saver, writers and signal thread) over thread-safe in-memory adapters,
  where a save (or a signal write) can only finish after the main loop fetched another page: had the
  main loop waited for it, the run could not finish (a guard turns that deadlock into a failure, and the
  same run with inline saves shows the guard firing);
* the moto harness with `DeferredSaves`, the background saver at its slowest (a state is saved only when
  something must wait for it), with processes killed between writes that landed and the save that would
  have recorded them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from moto import mock_aws

from miro_sync.continuation import NoDeadline
from miro_sync.store.audit import AuditRecord, AuditRepository
from miro_sync.store.state import LeaseLostError
from miro_sync.sync.audit import AuditLogSync, AuditSyncConfig, inline_writes
from miro_sync.sync.audit_checkpoint import BackgroundSaves, CheckpointSaverFactory, inline_saves
from tests.unit.audit.fakes import (
    T0,
    DeferredSaves,
    DeferredWrites,
    FakeAuditApi,
    FakeClock,
    Killed,
    KillSwitch,
    MemoryAuditStore,
    MemoryCheckpoints,
    MemoryMembers,
    MemoryRejects,
    Page,
    PagesDeadline,
    make_event,
)
from tests.unit.audit.harness import Harness, run_to_completion
from tests.unit.audit.tables import Tables, create_tables
from tests.unit.audit.test_exactly_once_property import MEMBERS, _drive, _parse, scenarios

PAGE = 10
EVENTS = 95  # 10 pages, in one window
# Only a deadlock guard: a save or a signal write the main loop waits for never finishes.
GUARD_S = 30.0
FLUSH_LIMIT_S = 0.5


def seed(api: FakeAuditApi, count: int = EVENTS, *, actors: int = 1) -> list[str]:
    """`count` events 30 minutes apart, the last one 30 minutes before now; actors m0.. in turn."""
    ids = []
    for number in range(count):
        at = T0 - timedelta(minutes=30 * (count - number))
        api.add(
            at, make_event(f"e{number:05d}", at, event="sign_in_succeeded", actor_id=f"m{number % actors}")
        )
        ids.append(f"e{number:05d}")
    return ids


def config(**changes: Any) -> AuditSyncConfig:
    # One window holds every event; pages are fetched in the main loop's own thread (no prefetch), so
    # "the main loop fetched another page" is something only the main loop can make happen.
    base: dict[str, Any] = {
        "backfill_days": 3,
        "window": timedelta(days=4),
        "page_size": PAGE,
        "prefetch_pages": 0,
        "signal_workers": 1,
    }
    return AuditSyncConfig(**(base | changes))


class MainLoop:
    """How far the main loop got: pages it fetched, and whether it stopped fetching for good."""

    def __init__(self, total_pages: int, guard_s: float = GUARD_S) -> None:
        self._changed = threading.Condition()
        self._total_pages = total_pages
        self._guard_s = guard_s
        self.fetched = 0
        self.stopped = False
        self.busy = 0  # saves / signal writes in progress
        self.fetched_while_busy = 0

    def page_fetched(self) -> None:
        with self._changed:
            self.fetched += 1
            self.fetched_while_busy += 1 if self.busy else 0
            self.stopped = self.stopped or self.fetched >= self._total_pages
            self._changed.notify_all()

    def stop(self) -> None:
        with self._changed:
            self.stopped = True
            self._changed.notify_all()

    def hold_until_it_moves_on(self, what: str) -> None:
        """Block until the main loop fetched one more page (or stopped fetching)."""
        with self._changed:
            start = self.fetched
            self.busy += 1
            try:
                if not self._changed.wait_for(lambda: self.fetched > start or self.stopped, self._guard_s):
                    raise AssertionError(f"{what}: the main loop waited for it instead of fetching on")
            finally:
                self.busy -= 1

    def overlap_with_the_next_fetch(self, limit_s: float) -> None:
        """Last until the main loop fetched one more page or `limit_s` passed, never failing: a main loop
        that legitimately waits for this work (one flush in flight at most) only makes it last longer."""
        with self._changed:
            start = self.fetched
            self.busy += 1
            try:
                self._changed.wait_for(lambda: self.fetched > start or self.stopped, limit_s)
            finally:
                self.busy -= 1

    def hold_until_stopped(self, what: str) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self.stopped, self._guard_s):
                raise AssertionError(f"{what}: the main loop waited for it instead of fetching on")


class TrackedSource:
    def __init__(self, api: FakeAuditApi, loop: MainLoop) -> None:
        self._api = api
        self._loop = loop

    def iter_audit_pages(self, *args: Any, **kwargs: Any) -> Iterator[Page]:
        for page in self._api.iter_audit_pages(*args, **kwargs):
            self._loop.page_fetched()
            yield page


class SlowCheckpoints:
    """The in-memory checkpoint item, whose saves take as long as the main loop lets them: each one
    until the main loop fetched another page (`hold` = "next page") or stopped (`hold` = "stop")."""

    def __init__(self, inner: MemoryCheckpoints, loop: MainLoop, hold: str = "next page") -> None:
        self.inner = inner
        self._loop = loop
        self._hold = hold

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def save_checkpoint(self, name: str, owner: str, state: Mapping[str, Any]) -> None:
        if self._hold == "stop":
            self._loop.hold_until_stopped("a checkpoint save")
        else:
            self._loop.hold_until_it_moves_on("a checkpoint save")
        self.inner.save_checkpoint(name, owner, state)


class SlowMembers(MemoryMembers):
    """Members whose signal writes (their batched read first) last until the main loop fetched on, or
    FLUSH_LIMIT_S: a flush may begin after the main loop already asked for the next one and waits for it
    (one flush in flight), so holding until the next fetch could deadlock by construction."""

    def __init__(self, loop: MainLoop) -> None:
        super().__init__()
        self._loop = loop

    def get_many(self, member_ids: Any) -> Any:
        self._loop.overlap_with_the_next_fetch(FLUSH_LIMIT_S)
        return super().get_many(member_ids)


class StoppingDeadline(PagesDeadline):
    def __init__(self, pages: int | None, loop: MainLoop) -> None:
        super().__init__(pages=pages)
        self._loop = loop

    def running_low(self) -> bool:
        low = super().running_low()
        if low:
            self._loop.stop()
        return low


def build(
    api: FakeAuditApi,
    loop: MainLoop,
    *,
    checkpoints: Any,
    store: MemoryAuditStore | None = None,
    members: MemoryMembers | None = None,
    sync_config: AuditSyncConfig | None = None,
    **options: Any,
) -> AuditLogSync:
    return AuditLogSync(
        source=TrackedSource(api, loop),
        store=store if store is not None else MemoryAuditStore(),
        rejects=MemoryRejects(),
        checkpoints=checkpoints,
        members=members if members is not None else MemoryMembers(),
        config=sync_config or config(),
        clock=api.clock,
        **options,
    )


# --- (a) saves and signal flushes do not hold up the main loop ----------------------------------------


def test_checkpoint_saves_run_alongside_the_main_loop_instead_of_blocking_it() -> None:
    api = FakeAuditApi(clock=FakeClock())
    ids = seed(api)
    loop = MainLoop(total_pages=10)
    store = MemoryAuditStore()
    checkpoints = SlowCheckpoints(MemoryCheckpoints(), loop)

    result = build(api, loop, checkpoints=checkpoints, store=store).run(owner="inv", deadline=NoDeadline())

    # No save could finish before the main loop fetched another page, yet the run finished: the main
    # loop never waited for one while pages were left.
    assert result.outcome == "complete"
    assert loop.fetched == 10
    assert loop.fetched_while_busy >= 1
    assert store.stored_ids() == sorted(ids)
    assert store.writes == EVENTS  # each event written once
    final = checkpoints.inner.state
    assert final is not None
    assert final["run"] is None
    assert final["watermark"] == make_event(ids[-1], T0 - timedelta(minutes=30))["createdAt"]


def test_the_same_slow_store_with_inline_saves_holds_up_the_main_loop() -> None:
    """The guard of the test above fires when saves are on the critical path (as before)."""
    api = FakeAuditApi(clock=FakeClock())
    seed(api)
    loop = MainLoop(total_pages=10, guard_s=0.2)
    checkpoints = SlowCheckpoints(MemoryCheckpoints(), loop)
    sync = build(api, loop, checkpoints=checkpoints, saves=inline_saves)
    with pytest.raises(AssertionError, match="a checkpoint save: the main loop waited"):
        sync.run(owner="inv", deadline=NoDeadline())
    assert loop.fetched == 0


def test_signal_flushes_run_alongside_the_main_loop_and_every_signal_lands() -> None:
    api = FakeAuditApi(clock=FakeClock())
    ids = seed(api, actors=20)
    loop = MainLoop(total_pages=10)
    members = SlowMembers(loop)
    for number in range(20):
        members.add(f"m{number}")
    # A flush every page (10 actors per page), each lasting until the main loop fetched on.
    sync = build(
        api,
        loop,
        checkpoints=MemoryCheckpoints(),
        members=members,
        sync_config=config(max_pending_signals=3),
    )

    result = sync.run(owner="inv", deadline=NoDeadline())

    assert result.outcome == "complete"
    assert loop.fetched_while_busy >= 1
    for number in range(20):
        newest = max(n for n in range(EVENTS) if n % 20 == number)
        expected = T0 - timedelta(minutes=30 * (EVENTS - newest))
        assert members.members[f"m{number}"].last_sign_in_at == expected
    assert result.stored == len(ids)


def test_the_same_slow_members_with_inline_signal_flushes_hold_up_the_main_loop() -> None:
    api = FakeAuditApi(clock=FakeClock())
    seed(api, actors=20)
    loop = MainLoop(total_pages=10, guard_s=0.2)
    members = SlowMembers(loop)
    members.add("m0")
    sync = build(
        api,
        loop,
        checkpoints=MemoryCheckpoints(),
        members=members,
        sync_config=config(max_pending_signals=3),
        signal_flushes=inline_writes,
    )
    result = sync.run(owner="inv", deadline=NoDeadline())
    assert result.outcome == "complete"
    # Inline, the main loop does each flush itself: it never fetches while one is in progress.
    assert loop.fetched_while_busy == 0


# --- (c) the checkpoint saved at hand-over, at the end and at a failure is the last one ---------------


class FailingStore(MemoryAuditStore):
    """Fails the write of the page holding `event_id` (whichever thread and order it comes in)."""

    def __init__(self, event_id: str) -> None:
        super().__init__()
        self._event_id = event_id

    def put(self, records: Any) -> None:
        if any(record.event_id == self._event_id for record in records):
            raise RuntimeError("DynamoDB unavailable")
        super().put(records)


def _sync_for_the_last_state(
    saves: CheckpointSaverFactory | None, store: MemoryAuditStore
) -> tuple[MemoryCheckpoints, AuditLogSync, MainLoop]:
    api = FakeAuditApi(clock=FakeClock())
    seed(api)
    loop = MainLoop(total_pages=10)
    checkpoints = MemoryCheckpoints()
    # Every page write in flight at once and landing only when waited for (so both runs see a failed
    # write at the same point, when the main loop stops); the first background save lasts until then,
    # so every state asked for meanwhile is replaced by a newer one before it could be saved.
    slow = SlowCheckpoints(checkpoints, loop, hold="stop") if saves is None else checkpoints
    options: dict[str, Any] = {} if saves is None else {"saves": saves}
    sync = build(
        api,
        loop,
        checkpoints=slow,
        store=store,
        sync_config=config(write_depth=20),
        writes=DeferredWrites,
        **options,
    )
    return checkpoints, sync, loop


@pytest.mark.parametrize(
    ("pages", "fail_at", "outcome"),
    [(None, None, "complete"), (4, None, "continue"), (None, "e00025", "failed")],
    ids=["end", "hand-over", "failure"],
)
def test_the_checkpoint_left_behind_is_the_last_state_whatever_saves_were_skipped(
    pages: int | None, fail_at: str | None, outcome: str
) -> None:
    def run(saves: CheckpointSaverFactory | None) -> tuple[MemoryCheckpoints, str]:
        store = FailingStore(fail_at) if fail_at else MemoryAuditStore()
        checkpoints, sync, loop = _sync_for_the_last_state(saves, store)
        try:
            result = sync.run(owner="inv", deadline=StoppingDeadline(pages, loop))
        except RuntimeError:
            return checkpoints, "failed"
        return checkpoints, result.outcome

    background, background_outcome = run(None)  # the production saver, held up until the loop stops
    inline, inline_outcome = run(inline_saves)  # every state saved, in order

    assert background_outcome == inline_outcome == outcome
    assert background.state == inline.state  # the same checkpoint, though most saves were skipped
    assert len(background.saved_states()) < len(inline.saved_states())
    # The last call is the lease's release, right after the save of that state.
    assert [call for call, _ in background.calls[-2:]] == ["save", "release"]
    assert background.calls[-2][1] == background.state
    expected_cursor = {"complete": None, "continue": str(4 * PAGE), "failed": str(2 * PAGE)}[outcome]
    assert background.state is not None
    if outcome == "complete":
        assert background.state["run"] is None
    else:
        assert background.state["run"]["cursor"] == expected_cursor


def test_after_a_failed_save_no_write_starts_and_every_stored_event_is_within_the_saved_bound() -> None:
    api = FakeAuditApi(clock=FakeClock())
    seed(api)
    loop = MainLoop(total_pages=10)
    store = MemoryAuditStore()
    checkpoints = MemoryCheckpoints()

    class StolenAtThirdSave:
        """Another invocation takes the lease just before our third save."""

        saves = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(checkpoints, name)

        def save_checkpoint(self, name: str, owner: str, state: Mapping[str, Any]) -> None:
            StolenAtThirdSave.saves += 1
            if StolenAtThirdSave.saves == 3:
                checkpoints.owner, checkpoints.until_ms = "other", 2**62
            checkpoints.save_checkpoint(name, owner, state)

    # Saves paced by the main loop (each lasts until it fetched another page), so pages whose bound
    # is not saved yet are waiting to be written when the third save fails.
    sync = build(api, loop, checkpoints=SlowCheckpoints(StolenAtThirdSave(), loop), store=store)  # type: ignore[arg-type]
    with pytest.raises(LeaseLostError):
        sync.run(owner="inv", deadline=NoDeadline())
    saved = checkpoints.state
    assert saved is not None
    assert saved["writeBound"] is not None
    times = {record.event_id: record.created_at_key for record in store.items.values()}
    assert all(time <= saved["writeBound"] for time in times.values())
    assert loop.fetched > 3  # pages beyond the saved bound were fetched, and not written
    assert len(times) < EVENTS


def test_background_saves_skip_states_only_while_a_save_is_in_flight() -> None:
    release = threading.Event()
    persisted: list[dict[str, Any]] = []

    def persist(state: Mapping[str, Any]) -> None:
        release.wait(GUARD_S)
        persisted.append(dict(state))

    with BackgroundSaves(persist) as saver:
        first = saver.request({"n": 1})
        tickets = [saver.request({"n": n}) for n in range(2, 6)]
        release.set()
        saver.wait_saved(tickets[-1])
        assert saver.saved == tickets[-1] > first
    # The first state was being saved when the others came: only the newest of them was saved next.
    assert persisted[-1] == {"n": 5}
    assert len(persisted) <= 3
    assert persisted[0] == {"n": 1} or persisted[0] == {"n": 5}


def test_a_failed_background_save_is_raised_to_every_later_request_and_wait() -> None:
    def persist(state: Mapping[str, Any]) -> None:
        raise LeaseLostError("taken")

    saver = BackgroundSaves(persist)
    ticket = saver.request({"n": 1})
    with pytest.raises(LeaseLostError):
        saver.wait_saved(ticket)
    with pytest.raises(LeaseLostError):
        saver.request({"n": 2})
    with pytest.raises(LeaseLostError):
        saver.wait_saved(0)  # even a write whose bound was saved before does not start
    saver.close()


# --- (b) a crash between writes that landed and the save recording them ------------------------------


class LandThenDie:
    """The real repository; the process dies right after the `die_after`-th write reached the table."""

    def __init__(self, inner: AuditRepository, switch: KillSwitch, die_after: int, put: list[str]) -> None:
        self._inner = inner
        self._switch = switch
        self._die_after = die_after
        self._put = put
        self.checked: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def filter_new(self, records: Any) -> list[AuditRecord]:
        self.checked.extend(record.event_id for record in records)
        return self._inner.filter_new(records)

    def put(self, records: Any) -> None:
        self._inner.put(records)
        self._put.extend(record.event_id for record in records)
        if self._die_after and len(self._put) >= self._die_after * PAGE:
            self._switch.fired = True
            raise Killed


@pytest.mark.parametrize("die_after_pages", [1, 2, 3, 5, 8])
def test_a_crash_after_writes_landed_before_their_checkpoint_was_saved_loses_nothing_writes_nothing_twice(
    tables: Tables, die_after_pages: int
) -> None:
    clock = FakeClock()
    h = Harness(
        tables=tables,
        api=FakeAuditApi(clock=clock),
        clock=clock,
        config=config(prefetch_pages=12),
        land_writes_on_exit=False,
    )
    ids = seed(h.api)
    h.saves = DeferredSaves  # the state waiting to be saved dies with the process (the kill switch)
    put: list[str] = []
    switch = KillSwitch()
    h.audit_wrapper = lambda repository: LandThenDie(repository, switch, die_after_pages, put)
    with pytest.raises(Killed):
        h.sync(switch).run(owner="dies", deadline=NoDeadline(), lease_ms=60_000)

    stored_at_death = h.stored_ids()
    checkpoint = h.checkpoint()
    times = {event_id: make_event(event_id, _at(event_id))["createdAt"] for event_id in ids}
    watermark = checkpoint.get("watermark")
    committed = [event_id for event_id in ids if watermark and times[event_id] <= watermark]
    # The saved checkpoint lags behind what landed (that is the crash under test) ...
    assert len(stored_at_death) == die_after_pages * PAGE
    assert set(committed) < set(stored_at_death)
    # ... but everything it counts as stored is stored, and its bound covers every stored event.
    bound = max(value for value in (watermark, checkpoint.get("writeBound")) if value)
    assert all(times[event_id] <= bound for event_id in stored_at_death)

    h.audit_wrapper = lambda repository: LandThenDie(repository, KillSwitch(), 0, put)
    clock.advance(timedelta(minutes=2))  # the dead invocation's lease expires
    (result,) = run_to_completion(h, owner_prefix="next")

    assert h.stored_ids() == sorted(ids)
    assert sorted(put) == sorted(ids)  # every event written exactly once over both invocations
    assert result.stored == EVENTS - len(stored_at_death)
    assert result.duplicates == len(stored_at_death) - len(committed)  # re-read, found, not re-written


def _at(event_id: str) -> datetime:
    number = int(event_id[1:])
    return T0 - timedelta(minutes=30 * (EVENTS - number))


# --- the exactly-once property with the background saver at its slowest -----------------------------


@pytest.mark.timeout(2400)
@settings(
    max_examples=int(os.environ.get("AUDIT_SAVER_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(scenario=scenarios())
def test_stored_set_equals_the_api_event_set_with_deferred_saves_and_signal_flushes(
    aws_env: None, scenario: dict[str, Any]
) -> None:
    """test_exactly_once_property's scenarios (faults, hard kills, hand-overs), with every checkpoint
    saved as late as the saver may save it (lost when the process dies before) and signals flushed
    in the background every few actors."""
    with mock_aws():
        tables = create_tables()
        clock = FakeClock()
        api = FakeAuditApi(
            clock=clock,
            max_window=scenario["max_window"],
            unavailable_rate=scenario["unavailable_rate"],
            seed=scenario["seed"],
        )
        sync_config = AuditSyncConfig(
            backfill_days=1,
            overlap=timedelta(minutes=10),
            window=timedelta(hours=6),
            page_size=25,
            signal_workers=1,
            max_pending_signals=2,
        )
        h = Harness(
            tables=tables,
            api=api,
            clock=clock,
            config=sync_config,
            land_writes_on_exit=scenario["land_writes_on_exit"],
        )
        h.saves = DeferredSaves
        for member in MEMBERS:
            h.add_member(member, f"{member}@acme.example")

        truth: dict[str, Any] = {}
        start = T0 - timedelta(days=1) + timedelta(hours=1)
        for number, (offset, actor, kind) in enumerate(
            zip(scenario["offsets"], scenario["actors"], scenario["types"], strict=True)
        ):
            at = start + timedelta(milliseconds=offset)
            event = make_event(f"e{number:05d}", at, event=kind, actor_id=actor)
            api.add(at, event)
            truth[event["id"]] = (at, event)
        for number in range(scenario["bad"]):
            at = start + timedelta(hours=number + 1)
            api.add(at, make_event(f"bad{number}", at) | ({"id": ""} if number % 2 else {"createdAt": "?"}))

        _drive(h, scenario["kills"], scenario["deadline_pages"])

        watermark = h.checkpoint()["watermark"]
        clock.advance(timedelta(hours=1))
        for number, back_ms in enumerate(scenario["late"]):
            at = (
                T0 - timedelta(hours=1)
                if watermark is None
                else _parse(watermark) - timedelta(milliseconds=back_ms)
            )
            event = make_event(
                f"late{number}", at, event="board_opened", actor_id=MEMBERS[number % len(MEMBERS)]
            )
            api.add(at, event)
            truth[event["id"]] = (at, event)
        for number in range(scenario["new"]):
            at = clock.now - timedelta(minutes=50) + timedelta(seconds=number)
            event = make_event(
                f"new{number}", at, event="sign_in_succeeded", actor_id=MEMBERS[number % len(MEMBERS)]
            )
            api.add(at, event)
            truth[event["id"]] = (at, event)
        _drive(h, scenario["kills"][:1], scenario["deadline_pages"])

        stored = h.stored_ids()
        assert stored == sorted(truth), "stored set differs from the API's event set"
        assert {event["id"] for event in h.forwarder.published} == set(truth)
        assert len(h.rejected()) == scenario["bad"]
        # Saves really were deferred and skipped, and signals really were flushed in the background.
        assert sum(saver.requested for saver in h.savers) > sum(len(saver.persisted) for saver in h.savers)
        if len(truth) > 2:
            assert sum(runner.submitted for runner in h.signal_runners) > 0
        for member in MEMBERS:
            record = h.members.get(member)
            assert record is not None
            sign_ins = [
                at
                for at, event in truth.values()
                if event["createdBy"]["id"] == member and event["event"] == "sign_in_succeeded"
            ]
            assert record.last_sign_in_at == (max(sign_ins) if sign_ins else None)
        tables.drop()
