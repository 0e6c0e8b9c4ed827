from __future__ import annotations

from datetime import timedelta

import pytest

from miro_sync.continuation import NoDeadline
from miro_sync.sync.audit import AuditSyncConfig, AuditWindowRefused
from tests.unit.audit.fakes import T0, FakeAuditApi, FakeClock, PagesDeadline, make_event
from tests.unit.audit.harness import Harness, run_to_completion
from tests.unit.audit.tables import Tables


def harness(tables: Tables, *, backfill_days: int = 3, **api_options: object) -> Harness:
    clock = FakeClock()
    api = FakeAuditApi(clock=clock, **api_options)  # type: ignore[arg-type]
    # moto's in-process DynamoDB is not thread-safe: signals are written from the calling thread.
    config = AuditSyncConfig(
        backfill_days=backfill_days, window=timedelta(hours=12), page_size=10, signal_workers=1
    )
    return Harness(tables=tables, api=api, clock=clock, config=config)


def seed_events(h: Harness, count: int, *, start: timedelta, prefix: str = "e") -> list[str]:
    ids = []
    step = start / (count + 1)
    for number in range(count):
        event_id = f"{prefix}{number:05d}"
        h.api.add(T0 - start + step * (number + 1), make_event(event_id, T0 - start + step * (number + 1)))
        ids.append(event_id)
    return ids


def test_backfill_then_incremental_run_writes_exactly_the_new_events(tables: Tables) -> None:
    h = harness(tables)
    first_ids = seed_events(h, 95, start=timedelta(days=2))
    (first,) = run_to_completion(h)
    assert first.stored == 95
    assert h.stored_ids() == sorted(first_ids)
    newest = max(str(event["createdAt"]) for event in h.forwarder.published)
    assert h.checkpoint()["watermark"] == newest
    assert h.checkpoint()["run"] is None

    h.clock.advance(timedelta(hours=1))
    new_ids = [f"n{number}" for number in range(7)]
    for number, event_id in enumerate(new_ids):
        h.api.add(
            T0 + timedelta(minutes=number + 1), make_event(event_id, T0 + timedelta(minutes=number + 1))
        )
    (second,) = run_to_completion(h)
    assert second.stored == 7
    assert h.stored_ids() == sorted(first_ids + new_ids)
    assert [event["id"] for event in h.forwarder.published] == first_ids + new_ids


def test_first_run_backfills_only_the_configured_days(tables: Tables) -> None:
    h = harness(tables, backfill_days=1)
    h.api.add(T0 - timedelta(days=1, hours=1), make_event("old", T0 - timedelta(days=1, hours=1)))
    h.api.add(T0 - timedelta(hours=23), make_event("recent", T0 - timedelta(hours=23)))
    run_to_completion(h)
    assert h.stored_ids() == ["recent"]


def test_late_event_inside_the_overlap_is_caught_by_the_next_run(tables: Tables) -> None:
    h = harness(tables)
    h.api.add(T0 - timedelta(minutes=30), make_event("a", T0 - timedelta(minutes=30)))
    run_to_completion(h)
    # Miro shows an event 5 minutes older than the watermark only after the first run.
    h.api.add(T0 - timedelta(minutes=35), make_event("late", T0 - timedelta(minutes=35)))
    h.clock.advance(timedelta(minutes=20))
    (second,) = run_to_completion(h)
    assert second.stored == 1
    assert second.duplicates == 1  # "a" re-read in the overlap, not written again
    assert h.stored_ids() == ["a", "late"]


def test_bad_events_are_rejected_with_their_cursor_and_the_run_goes_on(tables: Tables) -> None:
    h = harness(tables)
    seed_events(h, 25, start=timedelta(hours=5))
    h.api.add(T0 - timedelta(hours=2), {"createdAt": "2026-03-01T10:00:00.000Z", "event": "board_opened"})
    h.api.add(T0 - timedelta(hours=1), make_event("baddate", T0) | {"createdAt": "not a date"})
    h.api.add(
        T0 - timedelta(minutes=30), make_event("odd", T0 - timedelta(minutes=30)) | {"surprise": {"x": 1}}
    )
    (result,) = run_to_completion(h)
    assert result.rejected == 2
    assert "odd" in h.stored_ids()
    assert len(h.stored_ids()) == 26
    rejected = h.rejected()
    assert sorted(item["reason"].split(" ")[0] for item in rejected) == ["missing", "unparseable"]
    # Both sit on the third page of 10, which was fetched with a cursor.
    assert all(item.get("cursor") for item in rejected)


def test_a_refused_window_is_narrowed_not_skipped(tables: Tables) -> None:
    h = harness(tables, max_window=timedelta(hours=2))
    ids = seed_events(h, 60, start=timedelta(days=2))
    (result,) = run_to_completion(h)
    assert result.windows_narrowed > 0
    assert h.stored_ids() == sorted(ids)


def test_a_window_refused_even_at_its_smallest_stops_the_run_without_moving_on(tables: Tables) -> None:
    h = harness(tables, max_window=timedelta(milliseconds=500))
    seed_events(h, 3, start=timedelta(hours=1))
    with pytest.raises(AuditWindowRefused):
        h.sync().run(owner="x", deadline=NoDeadline())
    assert h.stored_ids() == []
    assert h.checkpoint()["run"]["windowStart"] == h.checkpoint()["run"]["start"]


def test_running_low_hands_over_and_the_next_invocation_resumes(tables: Tables) -> None:
    h = harness(tables, backfill_days=1)
    ids = seed_events(h, 40, start=timedelta(hours=6))
    # Page 1: the empty window [T0-24h, T0-12h); pages 2-3: the first 20 events.
    first = h.sync().run(owner="one", deadline=PagesDeadline(pages=3))
    assert first.outcome == "continue"
    assert first.pages == 3
    assert len(h.stored_ids()) == 20
    assert 0 < len(h.stored_ids()) < 40
    (rest,) = run_to_completion(h)
    assert rest.duplicates == 0  # resumed at the cursor, nothing re-read
    assert h.stored_ids() == sorted(ids)


def test_a_second_invocation_while_the_lease_is_held_does_nothing(tables: Tables) -> None:
    h = harness(tables)
    seed_events(h, 5, start=timedelta(hours=1))
    from miro_sync.store.state import StateRepository

    StateRepository(tables.state).acquire_lease("audit", "other", now_ms=0, until_ms=10**15)
    result = h.sync().run(owner="me", deadline=NoDeadline())
    assert result.outcome == "busy"
    assert h.stored_ids() == []


def test_signals_update_members_with_the_newest_sign_in_and_activity(tables: Tables) -> None:
    h = harness(tables)
    h.add_member("m1", "m1@acme.example")
    h.add_member("m2", "m2@acme.example")
    sign_in = T0 - timedelta(hours=3)
    opened = T0 - timedelta(hours=2)
    failed = T0 - timedelta(hours=1)
    h.api.add(
        sign_in - timedelta(hours=1),
        make_event("s0", sign_in - timedelta(hours=1), event="sign_in_succeeded"),
    )
    h.api.add(sign_in, make_event("s1", sign_in, event="sign_in_succeeded"))
    h.api.add(opened, make_event("o1", opened, event="board_opened"))
    h.api.add(failed, make_event("f1", failed, event="sign_in_failed"))
    # Only an email (no id): resolved through the members table.
    by_email = make_event("o2", opened, actor_id="ignored", email="M2@acme.example")
    by_email["createdBy"].pop("id")
    h.api.add(opened, by_email)
    run_to_completion(h)
    m1 = h.members.get("m1")
    m2 = h.members.get("m2")
    assert m1 is not None
    assert m2 is not None
    assert m1.last_sign_in_at == sign_in
    assert m1.last_audit_activity_at == opened  # the failed sign-in is not activity
    assert m2.last_audit_activity_at == opened
    assert m2.last_sign_in_at is None


def test_forwarding_publishes_only_new_events(tables: Tables) -> None:
    h = harness(tables)
    ids = seed_events(h, 12, start=timedelta(hours=3))
    run_to_completion(h)
    h.clock.advance(timedelta(minutes=5))
    run_to_completion(h)
    assert [event["id"] for event in h.forwarder.published] == ids
