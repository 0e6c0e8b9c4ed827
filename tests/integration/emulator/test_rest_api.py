"""REST endpoints over real HTTP: spec-exact shapes for success and error, paging and filters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from miro_emulator import RunningEmulator
from tests.fixtures.emulator import MiroSpec
from tests.integration.emulator.conftest_helpers import body_of, rest

pytestmark = pytest.mark.integration


def miro_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def test_organization_matches_spec(emulator: RunningEmulator, miro_spec: MiroSpec) -> None:
    with rest(emulator) as client:
        response = client.get(f"/v2/orgs/{emulator.org_id}")
    assert response.status_code == 200
    miro_spec.validate("enterprise-get-organization", 200, response.json())
    assert response.json()["id"] == emulator.org_id
    for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert header in response.headers


def test_member_pages_walk_the_whole_org_exactly_once(emulator: RunningEmulator, miro_spec: MiroSpec) -> None:
    seen: list[str] = []
    cursor: str | None = None
    with rest(emulator) as client:
        while True:
            params: dict[str, str | int] = {"limit": 37, **({"cursor": cursor} if cursor else {})}
            response = client.get(f"/v2/orgs/{emulator.org_id}/members", params=params)
            assert response.status_code == 200
            page = response.json()
            miro_spec.validate("enterprise-get-organization-members", 200, page)
            assert page["size"] == len(page["data"]) <= 37
            seen.extend(member["id"] for member in page["data"])
            cursor = page.get("cursor")
            if not cursor:
                break
    truth = sorted(m.id for m in emulator.state.all_members if not m.deleted)
    assert seen == truth


@pytest.mark.parametrize(
    ("params", "check"),
    [
        ({"role": "organization_external_user"}, lambda m: m["role"] == "organization_external_user"),
        ({"license": "occasional"}, lambda m: m["license"] == "occasional"),
        ({"active": "false"}, lambda m: m["active"] is False),
    ],
)
def test_member_filters(
    emulator: RunningEmulator, params: dict[str, str], check: Callable[[dict[str, object]], bool]
) -> None:
    with rest(emulator) as client:
        page = client.get(f"/v2/orgs/{emulator.org_id}/members", params=params).json()
    assert page["data"], "the generated org should contain members for every filter"
    assert all(check(member) for member in page["data"])


def test_emails_returns_a_bare_array(emulator: RunningEmulator, miro_spec: MiroSpec) -> None:
    wanted = [m.email for m in emulator.state.all_members[:3]]
    with rest(emulator) as client:
        response = client.get(
            f"/v2/orgs/{emulator.org_id}/members", params={"emails": ",".join([*wanted, "nobody@x.example"])}
        )
    assert response.status_code == 200
    miro_spec.validate("enterprise-get-organization-members", 200, response.json())
    assert sorted(m["email"] for m in response.json()) == sorted(wanted)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"active": "maybe"},
        {"role": "superuser"},
        {"emails": ",".join(f"u{i}@acme.example" for i in range(11))},
    ],
)
def test_bad_member_parameters_get_miro_400(
    emulator: RunningEmulator, miro_spec: MiroSpec, params: dict[str, str]
) -> None:
    with rest(emulator) as client:
        response = client.get(f"/v2/orgs/{emulator.org_id}/members", params=params)
    assert response.status_code == 400
    miro_spec.validate("enterprise-get-organization-members", 400, response.json())
    assert response.json()["code"] == "invalidParameters"


def test_member_by_id_and_unknown_id(emulator: RunningEmulator, miro_spec: MiroSpec) -> None:
    member = emulator.state.all_members[5]
    with rest(emulator) as client:
        found = client.get(f"/v2/orgs/{emulator.org_id}/members/{member.id}")
        missing = client.get(f"/v2/orgs/{emulator.org_id}/members/1234")
    miro_spec.validate("enterprise-get-organization-member", 200, found.json())
    assert found.json()["email"] == member.email
    assert missing.status_code == 404
    miro_spec.validate("enterprise-get-organization-member", 404, missing.json())


def test_auth_errors_match_spec(emulator: RunningEmulator, miro_spec: MiroSpec) -> None:
    path = f"/v2/orgs/{emulator.org_id}/members"
    with rest(emulator, token="wrong") as client:
        wrong = client.get(path)
        missing = client.get(path, headers={"Authorization": ""})
    with rest(emulator, token=emulator.scim_token) as client:
        scim_token_on_rest = client.get(path)
    with rest(emulator) as client:
        other_org = client.get("/v2/orgs/999/members")
    assert (wrong.status_code, missing.status_code, scim_token_on_rest.status_code) == (401, 401, 403)
    assert other_org.status_code == 403
    for response in (wrong, missing, scim_token_on_rest, other_org):
        miro_spec.validate("enterprise-get-organization-members", response.status_code, response.json())


def test_wrong_method_is_405_and_unknown_path_404(emulator: RunningEmulator) -> None:
    with rest(emulator) as client:
        wrong_method = client.put(f"/v2/orgs/{emulator.org_id}/members")
        unknown = client.get("/v2/unknown")
    assert wrong_method.status_code == 405
    assert "GET" in wrong_method.headers["Allow"]
    assert wrong_method.json()["status"] == 405
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "notFound"


def test_teams_and_team_members(emulator: RunningEmulator, miro_spec: MiroSpec) -> None:
    with rest(emulator) as client:
        teams = client.get(f"/v2/orgs/{emulator.org_id}/teams", params={"limit": 2})
        miro_spec.validate("enterprise-get-teams", 200, teams.json())
        assert teams.json()["cursor"]
        named = client.get(f"/v2/orgs/{emulator.org_id}/teams", params={"name": "engin"}).json()
        assert [t["name"] for t in named["data"]] == ["Engineering"]
        team_id = teams.json()["data"][0]["id"]
        admins = client.get(f"/v2/orgs/{emulator.org_id}/teams/{team_id}/members", params={"role": "admin"})
        miro_spec.validate("enterprise-get-team-members", 200, admins.json())
        assert admins.json()["data"]
        assert all(m["role"] == "admin" for m in admins.json()["data"])
        bad_role = client.get(f"/v2/orgs/{emulator.org_id}/teams/{team_id}/members", params={"role": "boss"})
        miro_spec.validate("enterprise-get-team-members", 400, bad_role.json())
        unknown = client.get(f"/v2/orgs/{emulator.org_id}/teams/42/members")
        miro_spec.validate("enterprise-get-team-members", 404, unknown.json())


def test_delete_team_member_and_last_team_admin(emulator: RunningEmulator, miro_spec: MiroSpec) -> None:
    state = emulator.state
    team = next(t for t in state.teams if sum(tm.role == "admin" for tm in t.memberships.values()) == 1)
    admin_index = next(i for i, tm in team.memberships.items() if tm.role == "admin")
    plain_index = next(i for i, tm in team.memberships.items() if tm.role != "admin")
    base = f"/v2/orgs/{emulator.org_id}/teams/{team.id}/members"
    with rest(emulator) as client:
        removed = client.delete(f"{base}/{state.all_members[plain_index].id}")
        last_admin = client.delete(f"{base}/{state.all_members[admin_index].id}")
    assert removed.status_code == 204
    assert plain_index not in team.memberships
    assert last_admin.status_code == 409
    miro_spec.validate("enterprise-delete-team-member", 409, last_admin.json())


def test_boards_filter_and_offset(emulator: RunningEmulator, miro_spec: MiroSpec) -> None:
    owner = emulator.state.all_members[emulator.state.boards[0].owner_index]
    with rest(emulator) as client:
        page = client.get("/v2/boards", params={"limit": 5, "offset": 5})
        owned = client.get("/v2/boards", params={"owner": owner.id, "limit": 50})
        bad = client.get("/v2/boards", params={"limit": 51})
    miro_spec.validate("get-boards", 200, page.json())
    assert page.json()["offset"] == 5
    assert page.json()["size"] == 5
    assert "next" in page.json()["links"]
    assert owned.json()["data"]
    assert all(b["owner"]["id"] == owner.id for b in owned.json()["data"])
    assert bad.status_code == 400
    miro_spec.validate("get-boards", 400, bad.json())


def test_board_listing_follows_changes_to_boards(emulator: RunningEmulator) -> None:
    """The listing's order is built once and reused: a board that changes must still move."""
    state = emulator.state
    with rest(emulator) as client:
        before = client.get("/v2/boards", params={"limit": 50}).json()
        last_id = client.get("/v2/boards", params={"limit": 1, "offset": before["total"] - 1}).json()["data"][
            0
        ]["id"]
        with state.lock:
            board = state.boards_by_id[last_id]
            newest = max(b.modified_ms for b in state.boards)
            board.modified_ms = newest + 1_000
        first = client.get("/v2/boards", params={"limit": 1}).json()
        with state.lock:
            state.delete_board(board)
        after = client.get("/v2/boards", params={"limit": 50}).json()
    assert first["data"][0]["id"] == last_id
    assert after["total"] == before["total"] - 1
    assert last_id not in {b["id"] for b in after["data"]}


def test_audit_logs_page_through_a_range_in_both_orders(
    emulator: RunningEmulator, miro_spec: MiroSpec
) -> None:
    now = emulator.state.clock.now()
    window = {"createdAfter": miro_time(now - timedelta(days=10)), "createdBefore": miro_time(now)}
    collected: dict[str, list[str]] = {}
    with rest(emulator) as client:
        for sorting in ("ASC", "DESC"):
            ids: list[str] = []
            cursor: str | None = None
            while True:
                params = {
                    **window,
                    "limit": 100,
                    "sorting": sorting,
                    **({"cursor": cursor} if cursor else {}),
                }
                response = client.get("/v2/audit/logs", params=params)
                assert response.status_code == 200
                miro_spec.validate("enterprise-get-audit-logs", 200, response.json())
                ids.extend(event["id"] for event in response.json()["data"])
                cursor = response.json().get("cursor")
                if not cursor:
                    break
            collected[sorting] = ids
    assert collected["ASC"], "ten days of a 200-member org must hold audit events"
    assert collected["ASC"] == list(reversed(collected["DESC"]))
    assert len(set(collected["ASC"])) == len(collected["ASC"])


def test_audit_events_include_sign_ins_by_the_member(emulator: RunningEmulator) -> None:
    now = emulator.state.clock.now()
    params: dict[str, str | int] = {
        "createdAfter": miro_time(now - timedelta(days=89)),
        "createdBefore": miro_time(now),
        "limit": 100,
    }
    with rest(emulator) as client:
        events = client.get("/v2/audit/logs", params=params).json()["data"]
    sign_ins = [e for e in events if e["event"] == "sign_in_succeeded"]
    assert sign_ins
    assert all(
        e["createdBy"]["type"] == "user" and e["createdBy"]["id"] == e["object"]["id"] for e in sign_ins
    )


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"createdAfter": "2025-01-01", "createdBefore": "2025-01-02T00:00:00.000Z"},
        {"createdAfter": "2025-01-01T00:00:00Z", "createdBefore": "2025-01-02T00:00:00.000Z"},
        {"createdAfter": "2025-13-01T00:00:00.000Z", "createdBefore": "2025-01-02T00:00:00.000Z"},
    ],
)
def test_audit_bad_dates_are_400(
    emulator: RunningEmulator, miro_spec: MiroSpec, params: dict[str, str]
) -> None:
    with rest(emulator) as client:
        response = client.get("/v2/audit/logs", params=params)
    assert response.status_code == 400
    miro_spec.validate("enterprise-get-audit-logs", 400, response.json())


def test_audit_retention_and_parameter_checks(emulator: RunningEmulator, miro_spec: MiroSpec) -> None:
    now = emulator.state.clock.now().astimezone(UTC)
    recent = {"createdAfter": miro_time(now - timedelta(days=1)), "createdBefore": miro_time(now)}
    cases = [
        {"createdAfter": miro_time(now - timedelta(days=91)), "createdBefore": miro_time(now)},
        {**recent, "limit": "0"},
        {**recent, "sorting": "UP"},
        {**recent, "cursor": "not-a-cursor"},
        {"createdAfter": recent["createdBefore"], "createdBefore": recent["createdAfter"]},
    ]
    with rest(emulator) as client:
        for params in cases:
            response = client.get("/v2/audit/logs", params=params)
            assert response.status_code == 400, params
            miro_spec.validate("enterprise-get-audit-logs", 400, body_of(response))
