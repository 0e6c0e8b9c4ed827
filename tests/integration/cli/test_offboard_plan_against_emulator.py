"""`miro-sync offboard`'s plan with a Miro token, end to end: MembersSyncFunction syncs an emulated org
into the local stack (DynamoDB Local), then the plan reads the leaver's boards and team admins from the
emulator; what it lists must be the emulator's truth. Nothing is enqueued without --yes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from miro_emulator import EmulatorConfig, RunningEmulator, start_emulator
from miro_sync_cli.local.stack import LocalStack
from miro_sync_cli.offboard.plan import PLAN_BOARDS_SHOWN
from miro_sync_cli.offboard_cmd import app
from tests.fixtures.sync import sync_members

pytestmark = pytest.mark.integration


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    with start_emulator(EmulatorConfig(members=240, seed=11), port=0) as running:
        yield running


@pytest.fixture
def synced(local_stack: LocalStack, emulator: RunningEmulator) -> LocalStack:
    return sync_members(local_stack, emulator)


def _offboard(stack: LocalStack, emulator: RunningEmulator | None, *args: str) -> Any:
    env = {
        **stack.env,
        "MEMBERS_TABLE": stack.tables["MembersTable"],
        "OFFBOARDING_QUEUE_URL": stack.queue_url,
        "MIRO_SYNC_OPERATOR": "op@example.com",
        "COLUMNS": "250",
        "MIRO_TOKEN": "",
        "MIRO_TOKEN_SECRET": "",
    }
    miro = [] if emulator is None else ["--api-url", emulator.base_url, "--org-id", emulator.org_id]
    miro += [] if emulator is None else ["--token", emulator.token]
    return CliRunner().invoke(app, [*args, *miro], env=env)


def _active_internal(emulator: RunningEmulator) -> list[Any]:
    return [
        m
        for m in emulator.state.all_members
        if not m.deleted and m.active and m.role == "organization_internal_user" and m.license == "full"
    ]


def _boards_of(emulator: RunningEmulator, member: Any) -> list[Any]:
    boards = [b for b in emulator.state.boards if not b.deleted and b.owner_index == member.index]
    return sorted(boards, key=lambda b: (-b.modified_ms, b.id))  # Miro's order with ?owner=


def test_the_plan_lists_the_boards_to_hand_over_read_with_the_token(
    synced: LocalStack, emulator: RunningEmulator
) -> None:
    people = _active_internal(emulator)
    leaver = max(people, key=lambda m: (len(_boards_of(emulator, m)), m.id))
    successor = next(m for m in people if m.index != leaver.index)
    boards = _boards_of(emulator, leaver)
    assert boards, "the emulated org has a member who owns boards"
    result = _offboard(
        synced, emulator, "suspend", leaver.email, "--successor", successor.email, "--reason", "left"
    )
    assert result.exit_code == 1, result.output  # the plan only: nothing enqueued without --yes
    text = result.output
    assert "Nothing enqueued" in text
    assert f"successor: {successor.email.lower()}" in text
    assert "steps: 1. hand_over_boards, 2. deactivate, 3. read_back, 4. reset_sessions" in text
    assert f"boards to hand over: {len(boards)}" in text
    for board in boards[:PLAN_BOARDS_SHOWN]:
        assert f"{board.name} ({board.id})" in text
    if len(boards) > PLAN_BOARDS_SHOWN:
        assert f"and {len(boards) - PLAN_BOARDS_SHOWN} more" in text
    assert "give --token" not in text


def test_without_a_token_the_plan_shows_the_members_tables_count(
    synced: LocalStack, emulator: RunningEmulator
) -> None:
    people = _active_internal(emulator)
    leaver, successor = people[0], people[1]
    result = _offboard(
        synced, None, "delete", leaver.email, "--successor", successor.email, "--reason", "left"
    )
    assert result.exit_code == 1, result.output
    assert "(Members table) (give --token to list the boards and check team admins)" in " ".join(
        result.output.split()
    )


def test_a_delete_of_a_teams_last_admin_without_successor_is_shown_as_refused(
    synced: LocalStack, emulator: RunningEmulator
) -> None:
    sole: list[tuple[Any, Any]] = []
    for team in emulator.state.teams:
        admins = [i for i, membership in team.memberships.items() if membership.role == "admin"]
        if len(admins) == 1:
            member = emulator.state.all_members[admins[0]]
            if not member.deleted and member.active:
                sole.append((member, team))
    if not sole:
        pytest.skip("this emulated org has no team with a single admin")
    leaver, team = sole[0]
    result = _offboard(synced, emulator, "delete", leaver.email, "--reason", "left")
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "✗ the worker will refuse this delete" in text
    assert f"{team.name} ({team.id})" in text
    assert "give --successor EMAIL" in text
