"""Live audit events (`add_live_audit_events`): made as the generator makes them, dated now, last."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime

import pytest

from miro_emulator.audit import EVENT_TYPES
from miro_emulator.config import Clock, EmulatorConfig
from miro_emulator.generator import (
    ACTIVITY_EVENTS,
    LIVE_AUDIT_SPREAD_MS,
    MAX_LIVE_AUDIT_EVENTS,
    add_live_audit_events,
    build_org,
)
from miro_emulator.state import INTERNAL_USER, OrgState, StateError

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def org(members: int = 300, seed: int = 5) -> OrgState:
    config = EmulatorConfig(members=members, seed=seed, now=NOW)
    return build_org(config, Clock(config.now))


def test_new_events_come_after_every_old_one_within_the_last_second() -> None:
    state = org()
    audit = state.audit
    old_count, old_last = len(audit), audit.created_ms[-1]
    before_ms = state.clock.now_ms()
    added = add_live_audit_events(state, 5000)
    after_ms = state.clock.now_ms()
    assert added == range(old_count, old_count + 5000)
    assert len(audit) == old_count + 5000
    times = audit.created_ms[added.start :]
    assert times[0] > old_last
    assert all(earlier <= later for earlier, later in itertools.pairwise(times))
    assert before_ms - LIVE_AUDIT_SPREAD_MS < times[0]
    assert times[-1] <= after_ms
    ids = [audit.event_id(position) for position in range(len(audit))]
    assert len(set(ids)) == len(ids)


def test_actors_are_active_members_and_events_look_generated() -> None:
    state = org()
    added = add_live_audit_events(state, 5000)
    kinds: Counter[str] = Counter()
    for position in added:
        created, event_type, actor, target, team = state.audit.describe(position)
        member = state.all_members[actor]
        assert member.active
        assert not member.deleted
        assert member.last_activity_ms is not None
        assert created <= member.last_activity_ms
        assert team == member.primary_team
        if event_type.object_kind == "user":
            assert target == actor
        else:
            assert not state.boards[target].deleted
        kinds[event_type.name] += 1
    assert set(kinds) == set(ACTIVITY_EVENTS)
    assert kinds["board_opened"] > kinds["sign_in_succeeded"] > kinds["sign_in_failed"]


def test_never_signed_in_and_inactive_members_do_not_act() -> None:
    state = org()
    idle = {m.index for m in state.all_members if m.last_activity_ms is None or not m.active}
    assert idle
    added = add_live_audit_events(state, 3000)
    assert not {state.audit.actor[position] for position in added} & idle
    assert all(m.last_activity_ms is None for m in state.all_members if m.index in idle and m.active)


def test_one_event_type_and_no_boards_left() -> None:
    state = org()
    added = add_live_audit_events(state, 50, "board_shared")
    assert {EVENT_TYPES[state.audit.event_type[p]].name for p in added} == {"board_shared"}
    for board in state.boards:
        board.deleted = True
    with pytest.raises(StateError) as refused:
        add_live_audit_events(state, 1, "board_opened")
    assert refused.value.kind == "conflict"
    added = add_live_audit_events(state, 200)
    assert {EVENT_TYPES[state.audit.event_type[p]].object_kind for p in added} == {"user"}


def test_an_event_in_this_very_millisecond_is_still_followed_and_the_clock_never_passed() -> None:
    state = org()
    member = next(m for m in state.all_members if m.active and m.role == INTERNAL_USER)
    state.set_active(member, False)  # a SCIM event dated the clock's now
    last = state.audit.created_ms[-1]
    added = add_live_audit_events(state, 10)
    assert state.audit.created_ms[added.start] > last
    state.set_active(member, True)  # the next SCIM event is not dated before the new ones
    assert state.audit.created_ms[-1] >= state.audit.created_ms[added.stop - 1]


@pytest.mark.parametrize(
    ("count", "event"), [(0, None), (-1, None), (MAX_LIVE_AUDIT_EVENTS + 1, None), (1, "user_deleted")]
)
def test_bad_arguments_are_refused_and_change_nothing(count: int, event: str | None) -> None:
    state = org()
    before = len(state.audit)
    with pytest.raises(StateError) as refused:
        add_live_audit_events(state, count, event)
    assert refused.value.kind == "invalid"
    assert len(state.audit) == before


def test_nobody_left_to_act_is_a_conflict() -> None:
    state = org(members=20)
    for member in state.all_members:
        member.active = False
    with pytest.raises(StateError) as refused:
        add_live_audit_events(state, 1)
    assert refused.value.kind == "conflict"


def test_an_empty_log_gets_its_first_events() -> None:
    config = EmulatorConfig(members=20, seed=5, now=NOW, audit_events=0)
    state = build_org(config, Clock(config.now))
    assert len(state.audit) == 0
    assert add_live_audit_events(state, 3) == range(3)
    assert state.audit.created_ms[0] > state.clock.now_ms() - LIVE_AUDIT_SPREAD_MS
