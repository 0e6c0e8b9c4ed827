"""OrgState rules behind board sharing, team roles and session resets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from miro_emulator.config import Clock, EmulatorConfig
from miro_emulator.generator import build_org
from miro_emulator.state import ADMIN, EXTERNAL_USER, INTERNAL_USER, Board, Member, OrgState, StateError, Team

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


@pytest.fixture
def state() -> OrgState:
    config = EmulatorConfig(members=120, seed=3, now=NOW)
    return build_org(config, Clock(config.now))


def internal_users(state: OrgState, board: Board) -> list[Member]:
    """Live internal users other than the board's owner, who may all be deleted (no team's only admin)."""
    return [
        m
        for m in state.all_members
        if m.role == INTERNAL_USER
        and m.index != board.owner_index
        and not m.deleted
        and not state.teams_with_sole_admin(m)
    ]


def single_admin_team(state: OrgState) -> tuple[Team, Member]:
    team = next(t for t in state.teams if sum(tm.role == "admin" for tm in t.memberships.values()) == 1)
    index = next(i for i, tm in team.memberships.items() if tm.role == "admin")
    return team, state.all_members[index]


def test_the_token_user_is_the_first_member_an_active_admin(state: OrgState) -> None:
    user = state.token_user()
    assert user is state.all_members[0]
    assert user.role == ADMIN
    assert user.active


def test_sessions_reset_records_the_time(state: OrgState) -> None:
    member = state.all_members[5]
    assert member.sessions_reset_ms is None
    before = state.clock.now_ms()
    state.reset_sessions(member)
    assert member.sessions_reset_ms is not None
    assert before <= member.sessions_reset_ms <= state.clock.now_ms()


def test_sharing_adds_members_updates_roles_and_never_touches_the_owner(state: OrgState) -> None:
    board = state.boards[0]
    owner = state.all_members[board.owner_index]
    guest, other = internal_users(state, board)[:2]
    state.share_board(board, guest, "viewer")
    state.share_board(board, other, "owner")  # "the same effect as the role coowner"
    state.share_board(board, owner, "viewer")
    assert board.members == {guest.index: "viewer", other.index: "coowner"}
    assert state.board_role(board, owner) == "owner"
    state.share_board(board, guest, "editor")
    assert state.board_role(board, guest) == "editor"
    assert state.can_access(board, guest)
    assert state.can_access(board, owner)
    assert not state.can_access(board, internal_users(state, board)[2])


def test_board_roles_change_and_members_leave_but_not_the_owner(state: OrgState) -> None:
    board = state.boards[1]
    owner = state.all_members[board.owner_index]
    guest, stranger = internal_users(state, board)[:2]
    state.share_board(board, guest, "commenter")
    state.set_board_role(board, guest, "owner")
    assert board.members[guest.index] == "coowner"
    with pytest.raises(StateError) as refused:
        state.set_board_role(board, owner, "viewer")
    assert refused.value.kind == "invalid"
    with pytest.raises(StateError) as missing:
        state.set_board_role(board, stranger, "viewer")
    assert missing.value.kind == "not_found"
    with pytest.raises(StateError) as owner_removed:
        state.remove_board_member(board, owner)
    assert owner_removed.value.kind == "invalid"
    state.remove_board_member(board, guest)
    assert board.members == {}
    with pytest.raises(StateError):
        state.remove_board_member(board, guest)


def test_a_deleted_member_leaves_every_board_and_an_heir_member_becomes_owner(state: OrgState) -> None:
    board = next(
        b
        for b in state.boards
        if state.all_members[b.owner_index].role == INTERNAL_USER
        and not state.teams_with_sole_admin(state.all_members[b.owner_index])
    )
    owner = state.all_members[board.owner_index]
    team = state.teams[board.team_index]
    heir_index = min(
        (tm.created_ms, state.all_members[i].id, i)
        for i, tm in team.memberships.items()
        if tm.role == "admin" and i != owner.index
    )[2]
    heir = state.all_members[heir_index]
    leaver = internal_users(state, board)[0]
    other_board = next(b for b in state.boards if b is not board and b.owner_index != leaver.index)
    state.share_board(board, heir, "editor")
    state.share_board(other_board, owner, "viewer")
    state.share_board(other_board, leaver, "viewer")
    state.delete_member(owner)
    assert board.owner_index == heir.index
    assert heir.index not in board.members  # owner now, no longer an invited member
    assert owner.index not in other_board.members
    assert leaver.index in other_board.members


def test_team_invites_refuse_members_already_in_the_team(state: OrgState) -> None:
    team = state.teams[0]
    actor = state.token_user()
    newcomer = next(
        m for m in state.all_members if m.role == INTERNAL_USER and m.index not in team.memberships
    )
    membership = state.add_team_member(team, newcomer, None, actor)
    assert membership.role == "member"
    assert membership.created_by == actor.id
    with pytest.raises(StateError) as refused:
        state.add_team_member(team, newcomer, "admin", actor)
    assert refused.value.kind == "conflict"


def test_external_users_join_teams_only_as_non_team_members(state: OrgState) -> None:
    team = state.teams[0]
    actor = state.token_user()
    outsiders = [m for m in state.all_members if m.role == EXTERNAL_USER and m.index not in team.memberships]
    with pytest.raises(StateError) as refused:
        state.add_team_member(team, outsiders[0], "member", actor)
    assert refused.value.kind == "invalid"
    assert state.add_team_member(team, outsiders[1], None, actor).role == "non_team"
    with pytest.raises(StateError):
        state.set_team_role(team, outsiders[1], "admin", actor)


def test_the_last_admin_of_a_team_cannot_be_demoted_until_another_is_promoted(state: OrgState) -> None:
    team, admin = single_admin_team(state)
    actor = state.token_user()
    with pytest.raises(StateError) as refused:
        state.set_team_role(team, admin, "member", actor)
    assert refused.value.kind == "conflict"
    assert team.memberships[admin.index].role == "admin"
    other_index = next(
        i
        for i, tm in team.memberships.items()
        if tm.role == "member" and state.all_members[i].role != EXTERNAL_USER
    )
    promoted = state.set_team_role(team, state.all_members[other_index], "admin", actor)
    assert promoted.role == "admin"
    assert promoted.modified_by == actor.id
    assert promoted.modified_ms is not None
    assert state.set_team_role(team, admin, "member", actor).role == "member"


def test_team_roles_of_non_members_are_not_found(state: OrgState) -> None:
    team = state.teams[0]
    outsider = next(m for m in state.all_members if m.index not in team.memberships)
    with pytest.raises(StateError) as refused:
        state.set_team_role(team, outsider, "admin", state.token_user())
    assert refused.value.kind == "not_found"
