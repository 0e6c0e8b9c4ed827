"""Session resets, board sharing and board members, team member roles and invites, board visibility
without Content Admin, and what `/_emulator/state/...` tells about them: over real HTTP, spec-checked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from miro_emulator import RunningEmulator
from miro_emulator.state import EXTERNAL_USER, INTERNAL_USER, Board, Member, Team
from tests.fixtures.emulator import MiroSpec
from tests.integration.emulator.conftest_helpers import body_of, rest, scim

pytestmark = pytest.mark.integration


def internal_users(emulator: RunningEmulator, board: Board) -> list[Member]:
    """Live internal users other than the board's owner who are no team's only admin (deletable)."""
    state = emulator.state
    return [
        m
        for m in state.all_members
        if m.role == INTERNAL_USER
        and m.index != board.owner_index
        and m.index != 0
        and not m.deleted
        and not state.teams_with_sole_admin(m)
    ]


def member_truth(client: httpx.Client, member: Member) -> dict[str, Any]:
    [truth] = client.get("/_emulator/state/members", params={"id": member.id}).json()["data"]
    return dict(truth)


def single_admin_team(emulator: RunningEmulator) -> tuple[Team, Member, Member]:
    """A team with one admin, that admin and an internal plain member of it."""
    state = emulator.state
    team = next(
        t
        for t in state.teams
        if sum(tm.role == "admin" for tm in t.memberships.values()) == 1
        and any(
            tm.role == "member" and state.all_members[i].role == INTERNAL_USER
            for i, tm in t.memberships.items()
        )
    )
    admin = next(state.all_members[i] for i, tm in team.memberships.items() if tm.role == "admin")
    plain = next(
        state.all_members[i]
        for i, tm in team.memberships.items()
        if tm.role == "member" and state.all_members[i].role == INTERNAL_USER
    )
    return team, admin, plain


# ---- sessions --------------------------------------------------------------------------------------
def test_sessions_reset_signs_a_member_out_and_shows_when(
    emulator: RunningEmulator, miro_spec: MiroSpec
) -> None:
    member = emulator.state.all_members[3]
    with rest(emulator) as client:
        before = member_truth(client, member)
        reset = client.post("/v2/sessions/reset_all", params={"email": member.email.upper()})
        after = member_truth(client, member)
        unknown = client.post("/v2/sessions/reset_all", params={"email": "nobody@nowhere.example"})
        missing = client.post("/v2/sessions/reset_all")
        blank = client.post("/v2/sessions/reset_all", params={"email": " "})
        stats = client.get("/_emulator/stats").json()
    assert reset.status_code == 200
    assert reset.content == b""
    miro_spec.validate("enterprise-post-user-sessions-reset", 200, body_of(reset))
    assert before["sessionsResetAt"] is None
    assert after["sessionsResetAt"].endswith("Z")
    assert unknown.status_code == 404
    miro_spec.validate("enterprise-post-user-sessions-reset", 404, unknown.json())
    for refused in (missing, blank):
        assert refused.status_code == 400
        miro_spec.validate("enterprise-post-user-sessions-reset", 400, refused.json())
    assert stats["byOperationStatus"]["enterprise-post-user-sessions-reset 200"] == 1
    assert stats["byOperationStatus"]["enterprise-post-user-sessions-reset 404"] == 1
    assert stats["creditsSpent"] == 4 * 500  # Level 3, charged before the request is looked at


def test_sessions_of_a_deleted_member_are_unknown(emulator: RunningEmulator) -> None:
    board = emulator.state.boards[0]
    member = internal_users(emulator, board)[0]
    with scim(emulator) as client:
        assert client.delete(f"/Users/{member.scim_id}").status_code == 204
    with rest(emulator) as client:
        assert client.post("/v2/sessions/reset_all", params={"email": member.email}).status_code == 404


# ---- board members ---------------------------------------------------------------------------------
def test_sharing_a_board_with_org_members_and_strangers(
    emulator: RunningEmulator, miro_spec: MiroSpec
) -> None:
    state = emulator.state
    board = state.boards[0]
    owner = state.all_members[board.owner_index]
    first, second = internal_users(emulator, board)[:2]
    emails = [first.email, second.email.upper(), "stranger@elsewhere.example", owner.email, first.email]
    with rest(emulator) as client:
        shared = client.post(f"/v2/boards/{board.id}/members", json={"emails": emails, "role": "editor"})
        again = client.post(f"/v2/boards/{board.id}/members", json={"emails": [first.email], "role": "owner"})
        listed = client.get(f"/v2/boards/{board.id}/members")
        stats = client.get("/_emulator/stats").json()
    assert shared.status_code == 201
    miro_spec.validate("share-board", 201, shared.json())
    assert shared.json() == {
        "successful": [int(first.id), int(second.id), int(owner.id)],
        "failed": [{"email": "stranger@elsewhere.example", "reason": "INVITATION_FAILED"}],
    }
    assert again.status_code == 201
    assert listed.status_code == 200
    miro_spec.validate("get-board-members", 200, listed.json())
    page = listed.json()
    assert page["total"] == page["size"] == 3
    assert page["data"][0] == {
        "id": owner.id,
        "name": owner.display_name,
        "role": "owner",
        "type": "board_member",
    }
    roles = {m["id"]: m["role"] for m in page["data"]}
    assert roles == {owner.id: "owner", first.id: "coowner", second.id: "editor"}
    assert stats["byOperationStatus"]["share-board 201"] == 2
    assert stats["requests"]["get-board-members"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"emails": []},
        {"emails": "someone@example.com"},
        {"emails": [f"user{i}@example.com" for i in range(21)]},
        {"emails": [""]},
        {"emails": ["someone@example.com"], "role": "admin"},
        {"emails": ["someone@example.com"], "message": 3},
    ],
)
def test_bad_share_bodies_are_400_and_share_nothing(
    emulator: RunningEmulator, miro_spec: MiroSpec, body: dict[str, object]
) -> None:
    board = emulator.state.boards[0]
    with rest(emulator) as client:
        refused = client.post(f"/v2/boards/{board.id}/members", json=body)
    assert refused.status_code == 400
    miro_spec.validate("share-board", 400, refused.json())
    assert board.members == {}


def test_board_member_endpoints_on_an_unknown_board_are_404(
    emulator: RunningEmulator, miro_spec: MiroSpec
) -> None:
    member = emulator.state.all_members[1]
    with rest(emulator) as client:
        shared = client.post("/v2/boards/uXjVnope=/members", json={"emails": [member.email]})
        listed = client.get("/v2/boards/uXjVnope=/members")
        one = client.get(f"/v2/boards/uXjVnope=/members/{member.id}")
    for operation_id, response in (("share-board", shared), ("get-board-members", listed)):
        assert response.status_code == 404
        miro_spec.validate(operation_id, 404, response.json())
    assert one.status_code == 404


def test_board_members_page_by_offset(emulator: RunningEmulator, miro_spec: MiroSpec) -> None:
    board = emulator.state.boards[2]
    invited = internal_users(emulator, board)[:24]
    with rest(emulator) as client:
        for start in (0, 20):
            emails = [m.email for m in invited[start : start + 20]]
            assert client.post(f"/v2/boards/{board.id}/members", json={"emails": emails}).status_code == 201
        first = client.get(f"/v2/boards/{board.id}/members").json()
        second = client.get(f"/v2/boards/{board.id}/members", params={"offset": 20, "limit": 50}).json()
        too_many = client.get(f"/v2/boards/{board.id}/members", params={"limit": 51})
    miro_spec.validate("get-board-members", 200, first)
    assert (first["total"], first["size"], first["limit"], first["offset"]) == (25, 20, 20, 0)
    assert "offset=20" in first["links"]["next"]
    assert (second["size"], second["offset"]) == (5, 20)
    assert "next" not in second["links"]
    ids = [m["id"] for m in first["data"] + second["data"]]
    assert ids[1:] == sorted(m.id for m in invited)
    assert {m["role"] for m in first["data"][1:] + second["data"]} == {"commenter"}  # the spec's default
    assert too_many.status_code == 400
    miro_spec.validate("get-board-members", 400, too_many.json())


def test_one_board_member_read_updated_and_removed(emulator: RunningEmulator, miro_spec: MiroSpec) -> None:
    state = emulator.state
    board = state.boards[3]
    owner = state.all_members[board.owner_index]
    member, stranger = internal_users(emulator, board)[:2]
    base = f"/v2/boards/{board.id}/members"
    with rest(emulator) as client:
        client.post(base, json={"emails": [member.email], "role": "viewer"})
        read = client.get(f"{base}/{member.id}")
        read_owner = client.get(f"{base}/{owner.id}")
        not_member = client.get(f"{base}/{stranger.id}")
        updated = client.patch(f"{base}/{member.id}", json={"role": "editor"})
        bad_role = client.patch(f"{base}/{member.id}", json={"role": "boss"})
        owner_role = client.patch(f"{base}/{owner.id}", json={"role": "viewer"})
        update_stranger = client.patch(f"{base}/{stranger.id}", json={"role": "viewer"})
        removed = client.delete(f"{base}/{member.id}")
        removed_again = client.delete(f"{base}/{member.id}")
    assert read.status_code == 200
    miro_spec.validate("get-specific-board-member", 200, read.json())
    assert read.json()["role"] == "viewer"
    assert read.json()["links"]["self"].endswith(f"{base}/{member.id}")
    assert read_owner.json()["role"] == "owner"
    assert not_member.status_code == 404
    miro_spec.validate("get-specific-board-member", 404, not_member.json())
    assert updated.status_code == 200
    miro_spec.validate("update-board-member", 200, updated.json())
    assert updated.json()["role"] == "editor"
    for refused in (bad_role, owner_role):
        assert refused.status_code == 400
        miro_spec.validate("update-board-member", 400, refused.json())
    assert update_stranger.status_code == 404
    assert removed.status_code == 204
    assert removed.content == b""
    assert removed_again.status_code == 404
    assert board.members == {}


def test_a_deleted_member_leaves_the_boards_shared_with_them(emulator: RunningEmulator) -> None:
    board = emulator.state.boards[4]
    member = internal_users(emulator, board)[0]
    with rest(emulator) as client:
        client.post(f"/v2/boards/{board.id}/members", json={"emails": [member.email]})
        shared = client.get("/_emulator/state/boards", params={"member": member.id}).json()
        with scim(emulator) as scim_client:
            assert scim_client.delete(f"/Users/{member.scim_id}").status_code == 204
        after = client.get("/_emulator/state/boards", params={"member": member.id}).json()
        members = client.get(f"/v2/boards/{board.id}/members").json()
    assert board.id in {b["id"] for b in shared["data"]}
    assert board.id not in {b["id"] for b in after["data"]}
    assert member.id not in {m["id"] for m in members["data"]}


# ---- board visibility ------------------------------------------------------------------------------
def test_boards_filter_by_owner(emulator: RunningEmulator) -> None:
    state = emulator.state
    owner = state.all_members[state.boards[0].owner_index]
    expected = {b.id for b in state.boards if b.owner_index == owner.index and not b.deleted}
    with rest(emulator) as client:
        owned = client.get("/v2/boards", params={"owner": owner.id, "limit": 50}).json()
        nobody = client.get("/v2/boards", params={"owner": "1"}).json()
    assert {b["id"] for b in owned["data"]} == expected
    assert owned["total"] == len(expected)
    assert nobody["total"] == 0


def test_without_content_admin_the_token_user_sees_only_its_own_and_shared_boards(
    emulator_factory: Callable[..., RunningEmulator], miro_spec: MiroSpec
) -> None:
    emulator = emulator_factory(content_admin=False)
    state = emulator.state
    me = state.token_user()
    own = {b.id for b in state.boards if b.owner_index == me.index}
    foreign, invited_to = [b for b in state.boards if b.owner_index != me.index][:2]
    other_owner = state.all_members[foreign.owner_index]
    state.share_board(invited_to, me, "viewer")  # as if someone had shared it with the token's user
    with rest(emulator) as client:
        listed = client.get("/v2/boards", params={"limit": 50})
        by_team = client.get(
            "/v2/boards", params={"team_id": state.teams[foreign.team_index].id, "limit": 50}
        )
        by_owner = client.get("/v2/boards", params={"owner": other_owner.id, "limit": 50}).json()
        hidden_members = client.get(f"/v2/boards/{foreign.id}/members")
        hidden_member = client.get(f"/v2/boards/{foreign.id}/members/{other_owner.id}")
        hidden_share = client.post(f"/v2/boards/{foreign.id}/members", json={"emails": [me.email]})
        visible = client.get(f"/v2/boards/{invited_to.id}/members")
    assert listed.status_code == 200
    miro_spec.validate("get-boards", 200, listed.json())
    assert {b["id"] for b in listed.json()["data"]} == own | {invited_to.id}
    assert foreign.id not in {b["id"] for b in by_team.json()["data"]}
    assert foreign.id not in {b["id"] for b in by_owner["data"]}
    for response in (hidden_members, hidden_member, hidden_share):
        assert response.status_code == 404
    miro_spec.validate("get-board-members", 404, hidden_members.json())
    assert foreign.members == {}
    assert visible.status_code == 200
    assert {m["id"]: m["role"] for m in visible.json()["data"]}[me.id] == "viewer"


def test_a_content_admin_sees_every_board(emulator: RunningEmulator) -> None:
    with rest(emulator) as client:
        listed = client.get("/v2/boards").json()
    assert listed["total"] == sum(1 for b in emulator.state.boards if not b.deleted)


# ---- team members ----------------------------------------------------------------------------------
def test_one_team_member_and_role_changes(emulator: RunningEmulator, miro_spec: MiroSpec) -> None:
    team, admin, plain = single_admin_team(emulator)
    outsider = next(m for m in emulator.state.all_members if m.index not in team.memberships)
    base = f"/v2/orgs/{emulator.org_id}/teams/{team.id}/members"
    with rest(emulator) as client:
        read = client.get(f"{base}/{plain.id}")
        not_in_team = client.get(f"{base}/{outsider.id}")
        unknown_team = client.get(f"/v2/orgs/{emulator.org_id}/teams/42/members/{plain.id}")
        demote_last = client.patch(f"{base}/{admin.id}", json={"role": "member"})
        bad_role = client.patch(f"{base}/{plain.id}", json={"role": "non_team"})
        promoted = client.patch(f"{base}/{plain.id}", json={"role": "admin"})
        unchanged = client.patch(f"{base}/{plain.id}", json={})
        demoted = client.patch(f"{base}/{admin.id}", json={"role": "member"})
        patch_outsider = client.patch(f"{base}/{outsider.id}", json={"role": "admin"})
        admins = client.get(base, params={"role": "admin"}).json()
        members = client.get(base, params={"role": "member"}).json()
        stats = client.get("/_emulator/stats").json()
    assert read.status_code == 200
    miro_spec.validate("enterprise-get-team-member", 200, read.json())
    assert (read.json()["id"], read.json()["teamId"], read.json()["role"]) == (plain.id, team.id, "member")
    for response in (not_in_team, unknown_team):
        assert response.status_code == 404
        miro_spec.validate("enterprise-get-team-member", 404, response.json())
    assert demote_last.status_code == 409
    miro_spec.validate("enterprise-update-team-member", 409, demote_last.json())
    assert bad_role.status_code == 400
    miro_spec.validate("enterprise-update-team-member", 400, bad_role.json())
    assert promoted.status_code == 200
    miro_spec.validate("enterprise-update-team-member", 200, promoted.json())
    assert promoted.json()["role"] == "admin"
    assert promoted.json()["modifiedBy"] == emulator.state.token_user().id
    assert unchanged.json()["role"] == "admin"
    assert demoted.status_code == 200
    assert demoted.json()["role"] == "member"
    assert patch_outsider.status_code == 404
    miro_spec.validate("enterprise-update-team-member", 404, patch_outsider.json())
    assert [m["id"] for m in admins["data"]] == [plain.id]
    assert admin.id in {m["id"] for m in members["data"]}
    assert all(m["role"] == "member" for m in members["data"])
    assert stats["byOperationStatus"]["enterprise-update-team-member 200"] == 3
    assert stats["byOperationStatus"]["enterprise-update-team-member 409"] == 1


def test_inviting_org_members_to_a_team(emulator: RunningEmulator, miro_spec: MiroSpec) -> None:
    state = emulator.state
    team = state.teams[0]
    newcomer, admin_to_be = [
        m for m in state.all_members if m.role == INTERNAL_USER and m.index not in team.memberships
    ][:2]
    external = next(
        m for m in state.all_members if m.role == EXTERNAL_USER and m.index not in team.memberships
    )
    base = f"/v2/orgs/{emulator.org_id}/teams/{team.id}/members"
    with rest(emulator) as client:
        invited = client.post(base, json={"email": newcomer.email, "role": "member"})
        as_admin = client.post(base, json={"email": admin_to_be.email.upper(), "role": "admin"})
        again = client.post(base, json={"email": newcomer.email, "role": "admin"})
        stranger = client.post(base, json={"email": "nobody@nowhere.example"})
        no_email = client.post(base, json={"role": "member"})
        bad_role = client.post(base, json={"email": newcomer.email, "role": "owner"})
        external_member = client.post(base, json={"email": external.email, "role": "member"})
        external_default = client.post(base, json={"email": external.email})
        unknown_team = client.post(
            f"/v2/orgs/{emulator.org_id}/teams/42/members", json={"email": newcomer.email}
        )
        read = client.get(f"{base}/{newcomer.id}")
        truth = member_truth(client, admin_to_be)
    assert invited.status_code == 201
    miro_spec.validate("enterprise-invite-team-member", 201, invited.json())
    assert invited.json()["role"] == "member"
    assert invited.json()["createdBy"] == state.token_user().id
    assert as_admin.json()["role"] == "admin"
    assert again.status_code == 409
    miro_spec.validate("enterprise-invite-team-member", 409, again.json())
    for response in (stranger, unknown_team):
        assert response.status_code == 404
        miro_spec.validate("enterprise-invite-team-member", 404, response.json())
    for response in (no_email, bad_role, external_member):
        assert response.status_code == 400
        miro_spec.validate("enterprise-invite-team-member", 400, response.json())
    assert external_default.status_code == 201
    assert external_default.json()["role"] == "non_team"
    assert read.json()["role"] == "member"
    assert {"id": team.id, "name": team.name, "role": "admin"} in truth["teams"]


# ---- introspection ---------------------------------------------------------------------------------
def test_state_members_tell_team_memberships(emulator: RunningEmulator) -> None:
    state = emulator.state
    member = state.all_members[7]
    expected = [
        {"id": t.id, "name": t.name, "role": t.memberships[member.index].role}
        for t in state.teams
        if member.index in t.memberships
    ]
    with rest(emulator, token="ignored") as client:
        truth = member_truth(client, member)
        everyone = client.get("/_emulator/state/members").json()
    assert expected
    assert truth["teams"] == expected
    assert truth["sessionsResetAt"] is None
    assert all("teams" in m and "sessionsResetAt" in m for m in everyone["data"])


def test_state_boards_by_owner_and_member(emulator: RunningEmulator) -> None:
    state = emulator.state
    board = state.boards[5]
    owner = state.all_members[board.owner_index]
    member = internal_users(emulator, board)[0]
    with rest(emulator) as client:
        client.post(f"/v2/boards/{board.id}/members", json={"emails": [member.email], "role": "editor"})
    with httpx.Client(base_url=emulator.base_url, timeout=10) as client:  # never authenticated
        by_owner = client.get("/_emulator/state/boards", params={"owner": owner.id})
        by_member = client.get("/_emulator/state/boards", params={"member": member.id}).json()
        as_member_owner = client.get("/_emulator/state/boards", params={"member": owner.id}).json()
        unknown = client.get("/_emulator/state/boards", params={"owner": "1"}).json()
        everything = client.get("/_emulator/state/boards").json()
    assert by_owner.status_code == 200
    owned = {b.id for b in state.boards if b.owner_index == owner.index and not b.deleted}
    assert {b["id"] for b in by_owner.json()["data"]} == owned
    entry = next(b for b in by_owner.json()["data"] if b["id"] == board.id)
    assert entry == {
        "id": board.id,
        "ownerId": owner.id,
        "teamId": state.teams[board.team_index].id,
        "members": [{"id": owner.id, "role": "owner"}, {"id": member.id, "role": "editor"}],
    }
    assert board.id in {b["id"] for b in by_member["data"]}
    assert all(
        b["ownerId"] == member.id or member.id in {m["id"] for m in b["members"]} for b in by_member["data"]
    )
    assert {b["id"] for b in as_member_owner["data"]} >= owned
    assert unknown == {"data": [], "size": 0}
    assert everything["size"] == sum(1 for b in state.boards if not b.deleted)
    assert emulator.stats()["totalRequests"] == 1  # only the share: introspection is not counted
