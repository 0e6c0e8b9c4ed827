"""The generated org: deterministic for a seed, and shaped like a real Enterprise org."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from miro_emulator.audit import EVENT_TYPES, NO_INDEX
from miro_emulator.config import Clock, EmulatorConfig, to_ms
from miro_emulator.generator import DAY_MS, build_org
from miro_emulator.state import ADMIN, EXTERNAL_USER, INTERNAL_USER, TEAM_GUEST, OrgState

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def org(members: int = 2000, seed: int = 5) -> OrgState:
    config = EmulatorConfig(members=members, seed=seed, now=NOW)
    return build_org(config, Clock(config.now))


def fingerprint(state: OrgState) -> tuple[object, ...]:
    return (
        [m.to_api() for m in state.all_members],
        [(b.id, b.owner_index, b.team_index) for b in state.boards],
        bytes(state.audit.created_ms),
        bytes(state.audit.actor),
    )


def test_same_seed_same_org_other_seed_other_org() -> None:
    assert fingerprint(org(300, 5)) == fingerprint(org(300, 5))
    assert fingerprint(org(300, 5)) != fingerprint(org(300, 6))


def test_realistic_mix() -> None:
    state = org()
    members = state.all_members
    now_ms = to_ms(NOW)
    assert {m.role for m in members} == {ADMIN, INTERNAL_USER, EXTERNAL_USER, TEAM_GUEST}
    assert {m.license for m in members} >= {"full", "occasional", "free", "free_restricted", "full_trial"}
    assert any(not m.active for m in members)
    assert any(m.last_activity_ms is None for m in members)
    assert any(m.last_activity_ms is not None and now_ms - m.last_activity_ms > 90 * DAY_MS for m in members)
    assert all("lastActivityAt" not in m.to_api() for m in members if m.last_activity_ms is None)


def test_scim_ids_only_for_internal_members_and_distinct() -> None:
    members = org().all_members
    for member in members:
        assert (member.scim_id is not None) == (member.role in (ADMIN, INTERNAL_USER))
    scim_ids = {m.scim_id for m in members if m.scim_id}
    assert not scim_ids & {m.id for m in members}


def test_every_team_has_an_admin_and_every_board_an_owner() -> None:
    state = org()
    assert all(any(tm.role == "admin" for tm in team.memberships.values()) for team in state.teams)
    assert all(state.all_members[b.owner_index].role in (ADMIN, INTERNAL_USER) for b in state.boards)


def test_audit_log_is_sorted_and_never_after_the_actors_last_activity() -> None:
    state = org()
    times = state.audit.created_ms
    assert len(state.audit) >= 2000 * 10
    assert all(earlier <= later for earlier, later in itertools.pairwise(times))
    assert times[0] >= to_ms(NOW) - 100 * DAY_MS
    for position in range(0, len(state.audit), 97):
        created, _, actor, _, _ = state.audit.describe(position)
        if actor != NO_INDEX:
            last = state.all_members[actor].last_activity_ms
            assert last is not None
            assert created <= last
    kinds = {EVENT_TYPES[k].name for k in state.audit.event_type}
    assert {"sign_in_succeeded", "board_opened", "board_created", "user_deactivated"} <= kinds
