"""MembersSyncFunction stores each member's teams with the team's name and the member's team role
(`teamMemberships`), compared with the emulator's own team listings over its REST API; and
MembersRepository round-trips them through DynamoDB Local."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest

from miro_emulator import EmulatorConfig, RunningEmulator, start_emulator
from miro_sync.store.members import MemberRecord, MembersRepository, TeamMembership, build_member_record
from miro_sync_cli.local.stack import LocalStack
from tests.integration.sync.test_members_sync import SCHEDULED_EVENT, _connect, _table
from tests.unit.sync.fakes import member

pytestmark = pytest.mark.integration
MEMBERS = 230
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    with start_emulator(EmulatorConfig(members=MEMBERS, seed=7, window_s=5), port=0) as running:
        yield running


def _pages(client: httpx.Client, path: str) -> Iterator[dict[str, Any]]:
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, params=params)
        response.raise_for_status()
        body = response.json()
        yield from body["data"]
        cursor = body.get("cursor")
        if not cursor:
            return


def _memberships_over_the_api(emulator: RunningEmulator) -> dict[str, list[dict[str, str]]]:
    """member id -> [{id, name, role}] sorted by team id, from GET teams and GET team members."""
    truth: dict[str, list[dict[str, str]]] = {}
    org = f"/v2/orgs/{emulator.org_id}"
    headers = {"Authorization": f"Bearer {emulator.token}"}
    with httpx.Client(base_url=emulator.base_url, headers=headers, timeout=30) as client:
        for team in _pages(client, f"{org}/teams"):
            for team_member in _pages(client, f"{org}/teams/{team['id']}/members"):
                membership = {"id": team["id"], "name": team["name"], "role": team_member["role"]}
                truth.setdefault(team_member["id"], []).append(membership)
    return {member_id: sorted(teams, key=lambda m: m["id"]) for member_id, teams in truth.items()}


def _stored_memberships(table: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
    return {
        member_id: [TeamMembership.from_item(value).model_dump() for value in item["teamMemberships"]]
        for member_id, item in table.items()
        if "teamMemberships" in item
    }


def test_each_member_has_the_team_names_and_roles_the_api_lists_and_changes_are_written(
    local_stack: LocalStack, emulator: RunningEmulator
) -> None:
    _connect(local_stack, emulator)

    first = local_stack.invoke("MembersSyncFunction", SCHEDULED_EVENT)

    assert first[-1]["outcome"] == "complete"
    table = _table(local_stack)
    truth = _memberships_over_the_api(emulator)
    assert _stored_memberships(table) == truth
    roles = {membership["role"] for teams in truth.values() for membership in teams}
    assert {"admin", "member", "non_team"} <= roles  # the seed exercises every stored role
    for member_id, item in table.items():
        assert item.get("teams", []) == [m["id"] for m in truth.get(member_id, [])]
        record = MemberRecord.from_item(item)
        assert record.admin_team_ids == tuple(
            m["id"] for m in truth.get(member_id, []) if m["role"] == "admin"
        )

    # A promotion (over the API) and a team rename are written on the next sync, nothing else.
    promoted_id, promoted_teams = next(
        (member_id, teams) for member_id, teams in truth.items() if teams[0]["role"] == "member"
    )
    headers = {"Authorization": f"Bearer {emulator.token}"}
    team_id = promoted_teams[0]["id"]
    response = httpx.patch(
        f"{emulator.base_url}/v2/orgs/{emulator.org_id}/teams/{team_id}/members/{promoted_id}",
        json={"role": "admin"},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 200
    renamed = emulator.state.teams[-1]
    with emulator.state.lock:
        renamed.name = f"{renamed.name} (renamed)"
    affected = {promoted_id} | {
        member_id for member_id, teams in truth.items() if any(m["id"] == renamed.id for m in teams)
    }

    again = local_stack.invoke("MembersSyncFunction", SCHEDULED_EVENT)

    assert again[-1]["outcome"] == "complete"
    assert again[-1]["written"] == len(affected)
    assert again[-1]["unchanged"] == MEMBERS - len(affected)
    after = _table(local_stack)
    assert _stored_memberships(after) == _memberships_over_the_api(emulator)
    assert next(m for m in _stored_memberships(after)[promoted_id] if m["id"] == team_id)["role"] == "admin"
    unaffected = next(member_id for member_id in truth if member_id not in affected)
    assert after[unaffected] == table[unaffected]


@pytest.fixture
def table(local_stack: LocalStack) -> Any:
    environment = local_stack.servers.endpoint_environment()
    session = boto3.session.Session(
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=environment.get("AWS_SESSION_TOKEN"),
        region_name=environment.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
    resource = session.resource("dynamodb", endpoint_url=local_stack.servers.dynamodb_url)
    return resource.Table(local_stack.tables["MembersTable"])


def test_the_repository_round_trips_memberships_and_a_rewrite_replaces_or_removes_them(table: Any) -> None:
    repository = MembersRepository(table)
    memberships = (
        TeamMembership(id="t2", name="Sales", role="admin"),
        TeamMembership(id="t1", name="Design", role="member"),
    )

    def record(
        teams: tuple[TeamMembership, ...], existing: MemberRecord | None, now: datetime
    ) -> MemberRecord:
        return build_member_record(
            member("m1"),
            existing,
            teams=[m.id for m in teams],
            team_memberships=teams,
            boards_owned=0,
            scim_id=None,
            scim_checked_at=None,
            now=now,
        )

    first = record(memberships, None, T0)
    repository.put_new([first])
    stored = repository.get("m1")
    assert stored == first
    raw = table.get_item(Key={"memberId": "m1"}, ConsistentRead=True)["Item"]
    assert raw["teamMemberships"] == ["t1:member:Design", "t2:admin:Sales"]
    assert stored is not None
    assert stored.admin_team_ids == ("t2",)

    demoted = record((TeamMembership(id="t2", name="Sales", role="member"),), stored, T0 + timedelta(days=1))
    assert demoted.fingerprint != stored.fingerprint
    repository.replace_synced(demoted, expected_last_seen=stored.last_seen_key)
    assert repository.get("m1") == demoted

    teamless = record((), demoted, T0 + timedelta(days=2))
    repository.replace_synced(teamless, expected_last_seen=demoted.last_seen_key)
    raw = table.get_item(Key={"memberId": "m1"}, ConsistentRead=True)["Item"]
    assert "teamMemberships" not in raw
    assert "teams" not in raw
    assert repository.get("m1") == teamless
