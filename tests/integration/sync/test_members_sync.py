"""MembersSyncFunction end to end: the handler (as `miro-sync invoke` runs it, continuations
included) against the Miro emulator over HTTP and the local AWS stack, compared with the
emulator's truth."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from miro_emulator import EmulatorConfig, RunningEmulator, start_emulator
from miro_sync_cli.local.invoke import FunctionError
from miro_sync_cli.local.stack import LocalStack, MiroConnection

pytestmark = pytest.mark.integration

SCHEDULED_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "8c1bd5a9-2f2b-4c4e-9f0a-1a2b3c4d5e6f",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-03-01T12:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/miro-sync-members"],
    "detail": {},
}
MEMBERS = 230


def _connect(stack: LocalStack, emulator: RunningEmulator) -> None:
    stack.connect_miro(
        MiroConnection(
            emulator.base_url, emulator.scim_url, emulator.org_id, emulator.token, emulator.scim_token
        )
    )


def _table(stack: LocalStack) -> dict[str, dict[str, Any]]:
    dynamodb = stack.client("dynamodb")
    from boto3.dynamodb.types import TypeDeserializer

    deserialize = TypeDeserializer().deserialize
    items: dict[str, dict[str, Any]] = {}
    # A Scan is fine in a test: it reads what the function wrote, the function itself never scans.
    paginator = dynamodb.get_paginator("scan")
    for page in paginator.paginate(TableName=stack.tables["MembersTable"], ConsistentRead=True):
        for raw in page["Items"]:
            item = {key: deserialize(value) for key, value in raw.items()}
            items[item["memberId"]] = item
    return items


def _truth(emulator: RunningEmulator) -> dict[str, dict[str, Any]]:
    state = emulator.state
    boards_owned: dict[str, int] = {}
    for board in state.boards:
        if not board.deleted:
            owner = state.all_members[board.owner_index].id
            boards_owned[owner] = boards_owned.get(owner, 0) + 1
    teams: dict[str, list[str]] = {}
    for team in state.teams:
        for member_index in team.memberships:
            teams.setdefault(state.all_members[member_index].id, []).append(team.id)
    truth = {}
    for member in state.all_members:
        status = "deprovisioned" if member.deleted else ("active" if member.active else "suspended")
        truth[member.id] = {
            "email": member.email.lower(),
            "role": member.role,
            "license": member.license,
            "status": status,
            "seat": f"{status}#{member.license}",
            "scimId": member.scim_id,
            "teams": sorted(teams.get(member.id, [])),
            "boardsOwned": boards_owned.get(member.id, 0),
            # Stored by name ("Content Admin"), as GET members' adminRoles[].name carries it.
            "adminRoles": sorted(member.admin_roles),
        }
    return truth


def _observed(table: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        member_id: {
            "email": item["email"],
            "role": item["role"],
            "license": item["license"],
            "status": item["status"],
            "seat": item["seat"],
            "scimId": item.get("scimId"),
            "teams": sorted(item.get("teams", [])),
            "boardsOwned": int(item["boardsOwned"]),
            "adminRoles": sorted(item.get("adminRoles", [])),
        }
        for member_id, item in table.items()
    }


TRANSIENT = {"MiroRateLimited", "MiroUnavailable", "MiroProtocolError"}


def _invoke_until_complete(stack: LocalStack, attempts: int = 6) -> list[Any]:
    """What the schedule does: an invocation that gave up on a transient fault (after the client's
    own retries) is followed by another, which resumes from the checkpoint."""
    for _ in range(attempts):
        try:
            return stack.invoke("MembersSyncFunction", SCHEDULED_EVENT)
        except FunctionError as failure:
            if failure.payload["errorType"] not in TRANSIENT:
                raise
    raise AssertionError(f"no complete run in {attempts} invocations")


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    # A short rate-limit window: 429 storms wait for the window reset, which would take 60 s each.
    with start_emulator(EmulatorConfig(members=MEMBERS, seed=7, window_s=5), port=0) as running:
        yield running


@pytest.mark.parametrize("profile", ["none", "flaky", "429-storm", "truncated", "slow", "chaos"])
def test_sync_matches_the_emulator_under_each_fault_profile(
    local_stack: LocalStack, emulator: RunningEmulator, profile: str
) -> None:
    _connect(local_stack, emulator)
    emulator.set_faults(profile)

    results = _invoke_until_complete(local_stack)

    assert results[-1]["outcome"] == "complete"
    truth = _truth(emulator)
    assert _observed(_table(local_stack)) == {
        k: v for k, v in truth.items() if v["status"] != "deprovisioned"
    }
    snapshot = results[-1]["snapshot"]
    assert snapshot["members"] == sum(1 for m in emulator.state.all_members if not m.deleted)


def test_continues_itself_and_marks_removed_members_deprovisioned(
    local_stack: LocalStack, emulator: RunningEmulator
) -> None:
    _connect(local_stack, emulator)
    first = local_stack.invoke("MembersSyncFunction", SCHEDULED_EVENT)
    assert first[-1]["outcome"] == "complete"
    removed = [m for m in emulator.state.all_members if m.role == "organization_internal_user"][:3]
    for member in removed:
        emulator.state.delete_member(member)

    # Every invocation runs low on time at once, so each does one step and hands over.
    runs = local_stack.invoke(
        "MembersSyncFunction", SCHEDULED_EVENT, {"SYNC_MIN_REMAINING_MS": "1000"}, timeout_s=0.001
    )

    assert [run["outcome"] for run in runs[:-1]] == ["continue"] * (len(runs) - 1)
    assert runs[-1]["outcome"] == "complete"
    assert len(runs) >= 1 + MEMBERS // 100
    assert all(run["resumed"] for run in runs[1:])
    table = _table(local_stack)
    # Deprovisioned members keep their last known teams, boards and SCIM id (history is kept),
    # while Miro has already moved those away: compare them on identity and seat only.
    kept = ("email", "role", "license", "status", "seat")
    observed, truth = _observed(table), _truth(emulator)
    for member in removed:
        observed[member.id] = {key: observed[member.id][key] for key in kept}
        truth[member.id] = {key: truth[member.id][key] for key in kept}
    assert observed == truth
    for member in removed:
        assert table[member.id]["status"] == "deprovisioned"
        assert "removedAt" in table[member.id]
    assert runs[-1]["removed"] == 3
    assert runs[-1]["snapshot"]["removedSinceLastRun"] == 3


def test_a_first_sync_handed_over_at_every_step_requests_each_page_once(
    local_stack: LocalStack, emulator: RunningEmulator
) -> None:
    _connect(local_stack, emulator)

    # Every invocation runs low at once: the aux itself spans invocations, its progress kept in
    # StateTable between them, and the member pages fetched ahead are kept too.
    runs = local_stack.invoke(
        "MembersSyncFunction", SCHEDULED_EVENT, {"SYNC_MIN_REMAINING_MS": "1000"}, timeout_s=0.001
    )

    assert runs[-1]["outcome"] == "complete"
    progress = local_stack.client("dynamodb").query(
        TableName=local_stack.tables["StateTable"],
        KeyConditionExpression="pk = :pk AND begins_with(sk, :kind)",
        ExpressionAttributeValues={
            ":pk": {"S": f"sync#members#run#{runs[-1]['runId']}"},
            ":kind": {"S": "aux-progress#"},
        },
    )
    assert progress["Items"]  # the aux was handed over part way
    charged_gets = Counter(
        (request["listing"], request["position"])
        for request in emulator.emulator.requests_log.snapshot()["requests"]
        if request["budget"] and request["method"] == "GET"
    )
    assert [page for page, count in charged_gets.items() if count > 1] == []
    assert _observed(_table(local_stack)) == _truth(emulator)


def test_resync_of_an_unchanged_org_writes_nothing(
    local_stack: LocalStack, emulator: RunningEmulator
) -> None:
    _connect(local_stack, emulator)
    local_stack.invoke("MembersSyncFunction", SCHEDULED_EVENT)
    before = _table(local_stack)

    again = local_stack.invoke("MembersSyncFunction", SCHEDULED_EVENT)

    assert again[-1]["written"] == 0
    assert again[-1]["unchanged"] == MEMBERS
    assert _table(local_stack) == before


def test_a_token_that_stops_working_fails_the_run_and_deprovisions_nobody(
    local_stack: LocalStack, emulator: RunningEmulator
) -> None:
    _connect(local_stack, emulator)
    local_stack.invoke("MembersSyncFunction", SCHEDULED_EVENT)
    emulator.state.delete_member(emulator.state.all_members[0])
    emulator.set_faults("expired-token")

    # The tokens stop working after a fixed number of requests: some invocation meets it mid-run.
    for _ in range(6):
        deprovisioned_before = sum(1 for i in _table(local_stack).values() if i["status"] == "deprovisioned")
        try:
            local_stack.invoke("MembersSyncFunction", SCHEDULED_EVENT)
        except FunctionError as failure:
            payload = failure.payload
            break
    else:
        raise AssertionError("the expired token never failed a run")

    assert payload["errorType"] == "MembersSyncError"
    assert "Nothing was marked deprovisioned" in payload["errorMessage"]
    assert emulator.token not in str(payload)
    after = sum(1 for i in _table(local_stack).values() if i["status"] == "deprovisioned")
    assert after == deprovisioned_before


def test_missing_configuration_fails_at_start_naming_the_variable(local_stack: LocalStack) -> None:
    with pytest.raises(FunctionError) as failure:
        local_stack.invoke("MembersSyncFunction", SCHEDULED_EVENT, {"MEMBERS_TABLE": ""})

    assert failure.value.payload["errorType"] == "ConfigurationError"
    assert "MEMBERS_TABLE" in failure.value.payload["errorMessage"]
