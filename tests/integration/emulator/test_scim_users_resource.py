"""The emulator's SCIM users as the spec shows them (roles typed organization_user_role and
organization_admin_role, groups = the user's teams, userType licence names, `count` capped at 1000,
`attributes`), read by our SCIM client; and the requests a full listing saves at Miro's maximum."""

from __future__ import annotations

import httpx

from miro_emulator import RunningEmulator
from miro_emulator.state import ADMIN, INTERNAL_USER
from miro_sync.miro.models import ScimUser
from miro_sync.miro.scim import MAX_SCIM_COUNT, MiroScimClient
from tests.fixtures.emulator import MiroSpec
from tests.integration.emulator.conftest_helpers import scim


def test_user_resource_has_typed_roles_groups_and_license_names(
    emulator: RunningEmulator, miro_spec: MiroSpec
) -> None:
    state = emulator.state
    admin = next(m for m in state.all_members if m.role == ADMIN and m.admin_roles and m.scim_id)
    with scim(emulator) as client:
        body = client.get(f"/Users/{admin.scim_id}").json()
        listing = client.get("/Users", params={"count": 5}).json()
    miro_spec.validate("listUsers", 200, listing)
    user_roles = [r for r in body["roles"] if r["type"] == "organization_user_role"]
    assert user_roles == [
        {
            "value": "ORGANIZATION_INTERNAL_ADMIN",
            "display": "Company Admin",
            "type": "organization_user_role",
            "primary": True,
        }
    ]
    admin_roles = sorted(r["value"] for r in body["roles"] if r["type"] == "organization_admin_role")
    assert admin_roles == sorted(admin.admin_roles)
    teams = sorted((t.id, t.name) for t in state.teams if admin.index in t.memberships)
    assert sorted((g["value"], g["display"]) for g in body["groups"]) == teams
    assert teams
    user = ScimUser.model_validate(body)
    assert user.organization_role == "organization_internal_admin"
    assert user.admin_role_names == tuple(sorted(admin.admin_roles))
    assert user.license == admin.license
    assert user.full_name == admin.display_name
    assert {g.value for g in user.groups} == {team_id for team_id, _ in teams}


def test_license_names_are_the_specs_user_types(emulator: RunningEmulator) -> None:
    expected = {
        "full": "Full",
        "free": "Free",
        "free_restricted": "Free Restricted",
        "full_trial": "Full (Trial)",
    }
    with scim(emulator) as client:
        users = client.get("/Users", params={"count": 1000}).json()["Resources"]
    by_id = {m.scim_id: m for m in emulator.state.all_members if m.scim_id}
    for body in users:
        member = by_id[body["id"]]
        if member.license in expected:
            assert body["userType"] == expected[member.license]
        assert ScimUser.model_validate(body).license == member.license


def test_count_above_the_maximum_is_capped_and_attributes_select(emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emulator = emulator_factory(members=2600)
    internal = sum(1 for m in emulator.state.all_members if m.role in (ADMIN, INTERNAL_USER))
    assert internal > 1000
    with scim(emulator) as client:
        capped = client.get("/Users", params={"count": 5000}).json()
        slim = client.get(
            "/Users", params={"count": 3, "attributes": "userName,displayName,name.givenName"}
        ).json()
    assert capped["itemsPerPage"] == len(capped["Resources"]) == 1000
    assert capped["totalResults"] == internal
    for body in slim["Resources"]:
        assert set(body) == {"schemas", "id", "userName", "displayName", "name"}
        assert set(body["name"]) == {"givenName"}


def test_full_listing_at_the_maximum_page_size_takes_a_tenth_of_the_requests(emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emulator = emulator_factory(members=2600)
    sent: list[httpx.Request] = []
    with httpx.Client(event_hooks={"request": [sent.append]}) as http:
        client = MiroScimClient(emulator.scim_url, emulator.scim_token, http=http, rate_limit_jitter=0.0)
        at_100 = [u.id for u in client.iter_users(count=100)]
        requests_at_100 = len(sent)
        sent.clear()
        at_max = [u.id for u in client.iter_users(count=5000)]  # capped at MAX_SCIM_COUNT
        requests_at_max = len(sent)
    assert MAX_SCIM_COUNT == 1000
    assert at_max == at_100
    assert len(at_max) > 2000
    assert {r.url.params["count"] for r in sent} == {"1000"}
    assert requests_at_100 == -(-len(at_100) // 100)
    assert requests_at_max == -(-len(at_max) // 1000)
    print(
        f"SCIM listing of {len(at_max)} users: {requests_at_100} requests at 100, {requests_at_max} at 1000"
    )
