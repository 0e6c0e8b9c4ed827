"""A conditional write that loses (ConditionalCheckFailedException) is an expected answer each
repository turns into its own result; every other failure still raises (store.dynamo.
is_conditional_check_failed)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from miro_sync.store.actions import ActionConflictError, ActionRecord, ActionsRepository
from miro_sync.store.blast_radius import BlastRadiusCounter
from miro_sync.store.board_events import BoardEventRecord, BoardEventsRepository
from miro_sync.store.dynamo import is_conditional_check_failed
from miro_sync.store.member_activity import MemberActivityRepository
from miro_sync.store.members import ConcurrentChangeError, MemberRecord, MembersRepository
from miro_sync.store.state import LeaseLostError, StateRepository
from tests.unit.store.fakes import CONDITION_FAILED, THROTTLED, PagedTable, client_error, page

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def test_a_failed_condition_is_recognised() -> None:
    assert is_conditional_check_failed(client_error("ConditionalCheckFailedException", "PutItem"))


@pytest.mark.parametrize(
    "error",
    [
        client_error("ProvisionedThroughputExceededException"),
        client_error("TransactionCanceledException"),
        client_error("ValidationException"),
        ClientError({}, "UpdateItem"),  # an answer without an error code
        RuntimeError("ConditionalCheckFailedException"),  # the name in a message is not the code
    ],
    ids=["throttled", "transaction", "validation", "no-code", "not-a-client-error"],
)
def test_anything_else_is_not_a_failed_condition(error: Exception) -> None:
    assert not is_conditional_check_failed(error)


# --- what each repository makes of it -------------------------------------------------------------


def action_record() -> ActionRecord:
    stamp = "2025-06-01T12:00:00.000Z"
    return ActionRecord.model_validate(
        {
            "requestId": "r1",
            "action": "suspend",
            "memberKey": "email#ada@acme.example",
            "requestedBy": "it@acme.example",
            "reason": "left",
            "outcome": "received",
            "createdAt": stamp,
            "updatedAt": stamp,
            "body": "{}",
        }
    )


def member_record() -> MemberRecord:
    return MemberRecord(
        member_id="m1",
        email="ada@acme.example",
        role="organization_internal_user",
        license="full",
        active=True,
        status="active",
    )


def board_event() -> BoardEventRecord:
    return BoardEventRecord(
        board_id="b1", event_time=NOW, item_id="i1", item_type="sticky_note", event_type="create"
    )


# (name, write, what it answers when its condition fails: one request, no retry)
LOSING_WRITES: list[tuple[str, Callable[[PagedTable], Any], Any]] = [
    ("action create", lambda table: ActionsRepository(table).create(action_record()), False),  # type: ignore[arg-type]
    (
        "lease acquire",
        lambda table: StateRepository(table).acquire_lease("members", "me", now_ms=1, until_ms=2),
        False,
    ),
    ("lease release", lambda table: StateRepository(table).release_lease("members", "me"), None),
    (
        "board event",
        lambda table: BoardEventsRepository(table, retention_days=30).put_once(board_event()),
        False,
    ),
]


@pytest.mark.parametrize(("name", "write", "answer"), LOSING_WRITES, ids=[case[0] for case in LOSING_WRITES])
def test_a_lost_condition_is_an_answer(name: str, write: Callable[[PagedTable], Any], answer: Any) -> None:
    table = PagedTable(write_errors=[CONDITION_FAILED])

    assert write(table) == answer
    assert len(table.writes) == 1


@pytest.mark.parametrize(("name", "write", "answer"), LOSING_WRITES, ids=[case[0] for case in LOSING_WRITES])
def test_other_failures_of_the_same_writes_raise(
    name: str, write: Callable[[PagedTable], Any], answer: Any
) -> None:
    table = PagedTable(write_errors=[THROTTLED])

    with pytest.raises(ClientError) as raised:
        write(table)
    assert raised.value is THROTTLED


def test_an_action_in_another_state_is_a_conflict() -> None:
    table = PagedTable(write_errors=[CONDITION_FAILED])

    with pytest.raises(ActionConflictError, match="r1 is not in any of"):
        ActionsRepository(table).update("r1", at=NOW, expected=["received"], outcome="done")  # type: ignore[arg-type]


def test_a_checkpoint_saved_without_the_lease_is_a_lost_lease() -> None:
    table = PagedTable(write_errors=[CONDITION_FAILED])

    with pytest.raises(LeaseLostError):
        StateRepository(table).save_checkpoint("members", "me", {"phase": "idle"})


def test_a_sync_rewrite_racing_a_signal_is_a_concurrent_change() -> None:
    table = PagedTable(write_errors=[CONDITION_FAILED])

    with pytest.raises(ConcurrentChangeError):
        MembersRepository(table).replace_synced(member_record(), expected_last_seen="0000-00-00T00:00:00Z")


def test_a_blast_radius_take_over_the_limit_is_refused() -> None:
    table = PagedTable(pages=[page([])], write_errors=[CONDITION_FAILED])

    assert BlastRadiusCounter(table).try_take(NOW, limit=5) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "write",
    [
        lambda table: MembersRepository(table).record_board_activity("m1", NOW),
        lambda table: MemberActivityRepository(table).record_board_activity("m1", NOW),
    ],
    ids=["members repository", "webhook repository"],
)
def test_a_signal_older_than_last_seen_falls_back_to_the_signal_alone(
    write: Callable[[PagedTable], bool],
) -> None:
    moved_only_the_signal = PagedTable(write_errors=[CONDITION_FAILED])
    moved_nothing = PagedTable(write_errors=[CONDITION_FAILED, CONDITION_FAILED])

    assert write(moved_only_the_signal) is True
    assert write(moved_nothing) is False
    for table in (moved_only_the_signal, moved_nothing):
        assert [request["UpdateExpression"] for _, request in table.writes] == [
            "SET #signal = :at, #seen = :at",
            "SET #signal = :at",
        ]
        assert {request["ExpressionAttributeValues"][":at"] for _, request in table.writes} == {
            "2025-06-01T12:00:00.000Z"
        }


def test_a_status_change_rereads_the_license_after_a_lost_condition() -> None:
    table = PagedTable(write_errors=[CONDITION_FAILED])

    # the re-read finds no item (the fake's get_item answers nothing): an unknown member
    assert (
        MembersRepository(table).set_status("m1", status="suspended", active=False, at=NOW, license="full")
        is False
    )
    assert len(table.writes) == 1
