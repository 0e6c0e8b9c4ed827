"""MembersRepository's status and signal writes against DynamoDB Local (the table made from template.yaml)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from miro_sync.store.member_activity import MemberActivityRepository
from miro_sync.store.members import (
    STATUS_ACTIVE,
    STATUS_DEPROVISIONED,
    STATUS_SUSPENDED,
    MembersRepository,
    TeamMembership,
    build_member_record,
)
from miro_sync_cli.local.stack import LocalStack
from tests.unit.sync.fakes import member

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class CallLog:
    """The DynamoDB operations a repository sends (botocore's before-call event), to count requests."""

    def __init__(self, table: Any) -> None:
        self.operations: list[str] = []
        table.meta.client.meta.events.register("before-call.dynamodb", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.operations.append(model.name)


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


def _stored(table: Any, member_id: str) -> dict[str, Any]:
    item: dict[str, Any] = table.get_item(Key={"memberId": member_id}, ConsistentRead=True)["Item"]
    return item


def _seed(repository: MembersRepository, member_id: str, *, license: str = "full") -> None:
    record = build_member_record(
        member(member_id, license=license),
        None,
        teams=("t1",),
        boards_owned=2,
        scim_id=f"scim-{member_id}",
        scim_checked_at=None,
        now=T0,
    )
    repository.put_new([record])


def test_set_status_with_the_license_is_one_conditional_update(table: Any) -> None:
    repository = MembersRepository(table)
    _seed(repository, "m1")
    assert repository.record_board_activity("m1", T0 + timedelta(days=1))
    before = _stored(table, "m1")
    calls = CallLog(table)

    assert repository.set_status(
        "m1", status=STATUS_SUSPENDED, active=False, at=T0 + timedelta(days=2), license="full"
    )

    assert calls.operations == ["UpdateItem"]
    after = _stored(table, "m1")
    assert (after["status"], after["active"], after["seat"]) == ("suspended", False, "suspended#full")
    assert after["lastChangedAt"] == "2026-03-03T12:00:00.000Z"
    assert "fingerprint" not in after  # the next sync rewrites the member from Miro's view
    assert "removedAt" not in after
    # Everything else, the signals and the seat's sort key included, is untouched.
    untouched = {
        k: v
        for k, v in before.items()
        if k not in {"status", "active", "seat", "lastChangedAt", "fingerprint"}
    }
    assert {k: after[k] for k in untouched} == untouched
    found = list(repository.query_seats(STATUS_SUSPENDED, "full", "9999"))
    assert [record.member_id for record in found] == ["m1"]
    assert list(repository.query_seats(STATUS_ACTIVE, "full", "9999")) == []


def test_set_status_without_the_license_reads_it_first(table: Any) -> None:
    repository = MembersRepository(table)
    _seed(repository, "m2", license="basic")
    calls = CallLog(table)

    assert repository.set_status("m2", status=STATUS_DEPROVISIONED, active=False, at=T0)

    assert calls.operations == ["GetItem", "UpdateItem"]
    after = _stored(table, "m2")
    assert (after["status"], after["seat"], after["removedAt"]) == (
        "deprovisioned",
        "deprovisioned#basic",
        "2026-03-01T12:00:00.000Z",
    )
    # The first removal time is kept; reactivation clears it.
    assert repository.set_status("m2", status=STATUS_DEPROVISIONED, active=False, at=T0 + timedelta(days=1))
    assert _stored(table, "m2")["removedAt"] == "2026-03-01T12:00:00.000Z"
    assert repository.set_status("m2", status=STATUS_ACTIVE, active=True, at=T0 + timedelta(days=2))
    after = _stored(table, "m2")
    assert (after["status"], after["active"], after["seat"]) == ("active", True, "active#basic")
    assert "removedAt" not in after


def test_set_status_with_a_stale_license_rereads_and_keeps_the_seat_consistent(table: Any) -> None:
    repository = MembersRepository(table)
    _seed(repository, "m3", license="basic")
    calls = CallLog(table)

    assert repository.set_status("m3", status=STATUS_SUSPENDED, active=False, at=T0, license="full")

    assert calls.operations == ["UpdateItem", "GetItem", "UpdateItem"]
    after = _stored(table, "m3")
    assert (after["license"], after["seat"]) == ("basic", "suspended#basic")


def test_set_status_of_an_unknown_member_creates_nothing(table: Any) -> None:
    repository = MembersRepository(table)
    assert (
        repository.set_status("nobody", status=STATUS_SUSPENDED, active=False, at=T0, license="full") is False
    )
    assert repository.set_status("nobody", status=STATUS_SUSPENDED, active=False, at=T0) is False
    assert "Item" not in table.get_item(Key={"memberId": "nobody"}, ConsistentRead=True)
    with pytest.raises(ValueError, match="status must be one of"):
        repository.set_status("nobody", status="gone", active=False, at=T0)


def test_a_member_reactivated_in_miro_after_set_status_is_rewritten_by_the_next_refresh(table: Any) -> None:
    # Had set_status kept the old fingerprint, Miro's unchanged "active" view would match it and the
    # stale "suspended" would stay.
    repository = MembersRepository(table)
    _seed(repository, "m4")
    assert repository.set_status("m4", status=STATUS_SUSPENDED, active=False, at=T0, license="full")
    assert repository.upsert_from_miro(member("m4"), "scim-m4", now=T0 + timedelta(days=1))
    after = _stored(table, "m4")
    assert (after["status"], after["active"], after["seat"]) == ("active", True, "active#full")
    assert after["fingerprint"]


def test_both_board_activity_writers_move_the_signal_forward_only(table: Any) -> None:
    repository = MembersRepository(table)
    webhook_writer = MemberActivityRepository(table)
    _seed(repository, "m5")
    newer, older = T0 + timedelta(days=30), T0 + timedelta(days=10)

    assert webhook_writer.record_board_activity("m5", newer)
    assert repository.record_board_activity("m5", older) is False
    assert webhook_writer.record_board_activity("m5", older) is False
    after = _stored(table, "m5")
    assert after["lastBoardActivityAt"] == after["lastSeenAt"] == "2026-03-31T12:00:00.000Z"
    assert repository.record_board_activity("m5", newer + timedelta(days=1))
    assert _stored(table, "m5")["lastBoardActivityAt"] == "2026-04-01T12:00:00.000Z"
    # Unknown members are left for the next sync to create.
    assert repository.record_board_activity("unknown", newer) is False
    assert webhook_writer.record_board_activity("unknown", newer) is False


def test_new_members_written_through_a_plain_writer_client_are_the_same_items(
    table: Any, local_stack: LocalStack
) -> None:
    """put_new through a plain low-level client (items typed by the store) stores exactly what the
    resource's client stores: lists, team memberships, numbers, booleans, timestamps."""
    plain = local_stack.client("dynamodb")
    record = build_member_record(
        member("m-plain", license="full"),
        None,
        teams=("t1", "t2"),
        team_memberships=(TeamMembership(id="t1", name="Ops: EU", role="admin"),),
        boards_owned=3,
        scim_id="scim-1",
        scim_checked_at=T0,
        display_name="Ada Lovelace",
        now=T0,
    )
    MembersRepository(table).put_new([record])
    by_resource = _stored(table, "m-plain")
    table.delete_item(Key={"memberId": "m-plain"})
    assert MembersRepository(table, writer=plain).put_new([record]) == 1
    by_plain = _stored(table, "m-plain")
    assert by_plain == by_resource
    assert by_plain["teams"] == ["t1", "t2"]
    assert by_plain["boardsOwned"] == 3
    assert by_plain["active"] is True
