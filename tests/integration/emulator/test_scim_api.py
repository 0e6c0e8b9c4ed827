"""SCIM /Users over real HTTP, and the Miro semantics SCIM changes carry into the REST API."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from miro_emulator import RunningEmulator
from miro_emulator.state import ADMIN, EXTERNAL_USER, INTERNAL_USER, TEAM_GUEST, Member, Team
from tests.fixtures.emulator import MiroSpec
from tests.integration.emulator.conftest_helpers import rest, scim

pytestmark = pytest.mark.integration
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def first(emulator: RunningEmulator, role: str, active: bool = True) -> Member:
    return next(
        m for m in emulator.state.all_members if m.role == role and m.active == active and not m.deleted
    )


def deactivate_body(value: object) -> dict[str, object]:
    return {"schemas": [PATCH_OP], "Operations": [{"op": "Replace", "path": "active", "value": value}]}


def test_list_and_filters(emulator: RunningEmulator, miro_spec: MiroSpec) -> None:
    user = first(emulator, INTERNAL_USER)
    with scim(emulator) as client:
        everyone = client.get("/Users", params={"startIndex": 3, "count": 5})
        by_name = client.get("/Users", params={"filter": f'userName eq "{user.email.upper()}"'})
        inactive = client.get(
            "/Users", params={"filter": 'active eq false and userName co "@"', "count": 1000}
        )
        invalid = client.get("/Users", params={"filter": "userName equals x"})
    miro_spec.validate("listUsers", 200, everyone.json())
    internal = [m for m in emulator.state.all_members if m.role in (ADMIN, INTERNAL_USER)]
    assert everyone.json()["totalResults"] == len(internal)
    assert everyone.json()["startIndex"] == 3
    assert everyone.json()["itemsPerPage"] == 5
    assert [r["id"] for r in by_name.json()["Resources"]] == [user.scim_id]
    expected_inactive = sorted(m.scim_id or "" for m in internal if not m.active)
    assert sorted(r["id"] for r in inactive.json()["Resources"]) == expected_inactive
    assert invalid.status_code == 400
    miro_spec.validate("listUsers", 400, invalid.json())


def test_scim_ids_differ_from_member_ids(emulator: RunningEmulator) -> None:
    user = first(emulator, INTERNAL_USER)
    with scim(emulator) as client:
        by_member_id = client.get(f"/Users/{user.id}")
        by_scim_id = client.get(f"/Users/{user.scim_id}")
    assert user.scim_id != user.id
    assert by_member_id.status_code == 404
    assert by_scim_id.json()["userName"] == user.email


@pytest.mark.parametrize("role", [EXTERNAL_USER, TEAM_GUEST])
def test_guests_and_external_users_are_invisible(
    emulator: RunningEmulator, miro_spec: MiroSpec, role: str
) -> None:
    outsider = first(emulator, role)
    with scim(emulator) as client:
        response = client.get("/Users", params={"filter": f'userName eq "{outsider.email}"'})
        assert response.json()["totalResults"] == 0
        for scim_id in (outsider.id, "3074457350000000000"):
            missing = client.get(f"/Users/{scim_id}")
            assert missing.status_code == 404
            miro_spec.validate("getUser", 404, missing.json())


@pytest.mark.parametrize("value", [False, "False", "false"])
def test_deactivation_shows_in_members(emulator: RunningEmulator, miro_spec: MiroSpec, value: object) -> None:
    user = first(emulator, INTERNAL_USER)
    with scim(emulator) as client:
        patched = client.patch(f"/Users/{user.scim_id}", json=deactivate_body(value))
    assert patched.status_code == 200
    miro_spec.validate("patchUser", 200, patched.json())
    assert patched.json()["active"] is False
    with rest(emulator) as client:
        member = client.get(f"/v2/orgs/{emulator.org_id}/members/{user.id}").json()
    assert member["active"] is False


def test_deactivated_user_name_cannot_change(emulator: RunningEmulator, miro_spec: MiroSpec) -> None:
    user = first(emulator, INTERNAL_USER, active=False)
    rename = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "userName", "value": "new@acme.example"}],
    }
    with scim(emulator) as client:
        response = client.patch(f"/Users/{user.scim_id}", json=rename)
    assert response.status_code == 400
    miro_spec.validate("patchUser", 400, response.json())
    assert response.json()["scimType"] == "mutability"
    assert emulator.state.member(user.id) is not None
    assert emulator.state.members_by_id[user.id].email == user.email


def test_bad_patch_bodies_are_400(emulator: RunningEmulator, miro_spec: MiroSpec) -> None:
    user = first(emulator, INTERNAL_USER)
    bodies = [
        {"Operations": [{"op": "replace", "path": "active", "value": False}]},
        {"schemas": [PATCH_OP], "Operations": [{"op": "Explode", "path": "active", "value": False}]},
        {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": "nope"}]},
    ]
    with scim(emulator) as client:
        for body in bodies:
            response = client.patch(f"/Users/{user.scim_id}", json=body)
            assert response.status_code == 400, body
            miro_spec.validate("patchUser", 400, response.json())
        not_json = client.patch(f"/Users/{user.scim_id}", content=b"{nope")
    assert not_json.status_code == 400


def sole_admin_teams(emulator: RunningEmulator, member: Member) -> list[Team]:
    """The teams in which `member` is the only admin, read straight from the team memberships."""
    return [
        team
        for team in emulator.state.teams
        if [i for i, tm in team.memberships.items() if tm.role == "admin"] == [member.index]
    ]


def test_delete_removes_member_and_hands_boards_to_oldest_team_admin(
    emulator: RunningEmulator, miro_spec: MiroSpec
) -> None:
    state = emulator.state
    board = next(
        b
        for b in state.boards
        if state.all_members[b.owner_index].role == INTERNAL_USER
        and not sole_admin_teams(emulator, state.all_members[b.owner_index])
    )
    owner = state.all_members[board.owner_index]
    team = state.teams[board.team_index]
    admins = [
        (tm.created_ms, state.all_members[i].id, i)
        for i, tm in team.memberships.items()
        if tm.role == "admin" and i != owner.index
    ]
    expected_heir = state.all_members[min(admins)[2]] if admins else None
    with scim(emulator) as client:
        deleted = client.delete(f"/Users/{owner.scim_id}")
        again = client.delete(f"/Users/{owner.scim_id}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert again.status_code == 404
    miro_spec.validate("deleteUser", 404, again.json())
    with rest(emulator) as client:
        gone = client.get(f"/v2/orgs/{emulator.org_id}/members/{owner.id}")
        moved = client.get("/v2/boards", params={"owner": owner.id}).json()
    assert gone.status_code == 404
    assert moved["total"] == 0
    assert expected_heir is not None
    assert state.all_members[board.owner_index] is expected_heir


def test_last_admin_cannot_be_deleted(
    emulator_factory: Callable[..., RunningEmulator], miro_spec: MiroSpec
) -> None:
    emulator: RunningEmulator = emulator_factory(members=40)
    admins = [m for m in emulator.state.all_members if m.role == ADMIN and m.active]
    with scim(emulator) as client:
        for admin in admins[:-1]:
            assert client.delete(f"/Users/{admin.scim_id}").status_code == 204
        refused = client.delete(f"/Users/{admins[-1].scim_id}")
    assert refused.status_code == 409
    miro_spec.validate("deleteUser", 409, refused.json())
    assert "organization" in refused.json()["detail"]
    assert emulator.state.member(admins[-1].id) is not None


def test_last_admin_of_a_team_can_be_deactivated_but_not_deleted(
    emulator: RunningEmulator, miro_spec: MiroSpec
) -> None:
    state = emulator.state
    # An ordinary internal user (not an org admin: the org-level rule stays out of the way) who is
    # the only admin of a team.
    user = next(
        m
        for m in state.all_members
        if m.role == INTERNAL_USER and m.active and not m.deleted and sole_admin_teams(emulator, m)
    )
    [team] = sole_admin_teams(emulator, user)
    owned = [b.id for b in state.boards if b.owner_index == user.index and not b.deleted]
    with scim(emulator) as client:
        deactivated = client.patch(f"/Users/{user.scim_id}", json=deactivate_body(False))
        refused = client.delete(f"/Users/{user.scim_id}")
        still_there = client.get(f"/Users/{user.scim_id}")
    assert deactivated.status_code == 200
    assert deactivated.json()["active"] is False
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/scim+json")
    miro_spec.validate("deleteUser", 409, refused.json())
    error = refused.json()
    assert error["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert error["status"] == "409"
    assert "last admin of a team" in error["detail"]
    assert team.id in error["detail"]
    assert still_there.status_code == 200
    assert still_there.json()["active"] is False
    with rest(emulator) as client:
        member = client.get(f"/v2/orgs/{emulator.org_id}/members/{user.id}")
        admins = client.get(
            f"/v2/orgs/{emulator.org_id}/teams/{team.id}/members", params={"role": "admin"}
        ).json()
        boards = client.get("/v2/boards", params={"owner": user.id, "limit": 50}).json()
    assert member.status_code == 200
    assert [m["id"] for m in admins["data"]] == [user.id]
    assert sorted(b["id"] for b in boards["data"]) == sorted(owned)

    # Once the team has another admin, the same DELETE goes through.
    heir_index = next(i for i, tm in team.memberships.items() if i != user.index)
    team.memberships[heir_index].role = "admin"
    with scim(emulator) as client:
        deleted = client.delete(f"/Users/{user.scim_id}")
    assert deleted.status_code == 204
    assert state.member(user.id) is None


def test_scim_auth(emulator: RunningEmulator, miro_spec: MiroSpec) -> None:
    with scim(emulator, token="nope") as client:
        unknown = client.get("/Users")
    with scim(emulator, token=emulator.token) as client:
        rest_token = client.get("/Users")
    assert unknown.status_code == 401
    assert rest_token.status_code == 403
    miro_spec.validate("listUsers", 401, unknown.json())
    miro_spec.validate("listUsers", 403, rest_token.json())
