"""The webhook's boto3-free store path against the local stack (DynamoDB Local, or moto server).

* `dynamodb_client()` finds the local endpoint from the environment alone (AWS_ENDPOINT_URL_DYNAMODB,
  else AWS_ENDPOINT_URL), as boto3 does.
* `MemberActivityRepository` (the webhook's MembersTable write) behaves exactly like
  `MembersRepository.record_board_activity`: same return values, same items, call for call.
* Items written through the low-level table read back identically through a boto3 `Table` (the CLI's
  side) and the other way round.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from miro_sync.miro.models import OrgMember
from miro_sync.store.board_events import BoardEventRecord, BoardEventsRepository
from miro_sync.store.lowlevel import LowLevelTable, dynamodb_client
from miro_sync.store.member_activity import MemberActivityRepository
from miro_sync.store.members import MembersRepository
from miro_sync.store.subscriptions import SubscriptionsRepository
from miro_sync_cli.local.stack import LocalStack
from tests.integration.webhooks.conftest import _table
from tests.unit.webhooks.fakes import subscription

pytestmark = pytest.mark.integration

ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB")


@pytest.fixture
def stack_env(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> LocalStack:
    """The process environment a deployed function would see, pointed at the local stack."""
    for name in ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in local_stack.servers.endpoint_environment().items():
        monkeypatch.setenv(name, value)
    return local_stack


def low_level(stack: LocalStack, logical_id: str) -> LowLevelTable:
    return LowLevelTable(dynamodb_client(), stack.tables[logical_id])


def test_client_finds_dynamodb_from_the_environment(stack_env: LocalStack) -> None:
    client = dynamodb_client()

    assert client.meta.endpoint_url == stack_env.servers.dynamodb_url
    assert client.meta.region_name == "us-east-1"
    described = client.describe_table(TableName=stack_env.tables["BoardEventsTable"])
    assert described["Table"]["TableName"] == stack_env.tables["BoardEventsTable"]


def test_client_uses_the_global_endpoint_when_no_dynamodb_one_is_set(
    stack_env: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack_env.servers.dynamodb_url)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")

    client = dynamodb_client()

    assert client.meta.endpoint_url == stack_env.servers.dynamodb_url
    assert "TableNames" in client.list_tables(Limit=1)


def _member(member_id: str, last_activity: str | None) -> OrgMember:
    payload: dict[str, Any] = {
        "id": member_id,
        "email": f"{member_id}@example.com",
        "role": "organization_internal_user",
        "license": "full",
        "active": True,
    }
    if last_activity is not None:
        payload["lastActivityAt"] = last_activity
    return OrgMember.model_validate(payload)


def _raw(members: MembersRepository, member_id: str) -> dict[str, Any] | None:
    item = members._table.get_item(Key={"memberId": member_id}, ConsistentRead=True).get("Item")
    return dict(item) if item is not None else None


def test_member_activity_writes_exactly_what_the_members_store_writes(stack_env: LocalStack) -> None:
    members = MembersRepository(_table(stack_env, "MembersTable"))
    ours = MemberActivityRepository(low_level(stack_env, "MembersTable"))
    base = datetime(2025, 11, 20, 10, 0, tzinfo=UTC)
    # Two members with the same history; one is refreshed by each writer, step by step.
    for member_id in ("by-webhook", "by-members-store"):
        members.upsert_from_miro(_member(member_id, "2025-11-20T10:00:00Z"), None, now=base)
    steps = [
        base - timedelta(days=1),  # older than lastActivityAt: nothing moves
        base,  # equal to lastSeenAt: the signal is written, lastSeenAt stays
        base,  # equal to the signal: nothing
        base + timedelta(minutes=5, milliseconds=412),  # newer: both move
        base + timedelta(minutes=1),  # older than the signal: nothing
        base + timedelta(hours=1),  # newer again
    ]

    for at in steps:
        written_by_webhook = ours.record_board_activity("by-webhook", at)
        written_by_store = members.record_board_activity("by-members-store", at)
        assert written_by_webhook == written_by_store, at
        webhook_item, store_item = _raw(members, "by-webhook"), _raw(members, "by-members-store")
        assert webhook_item is not None
        assert store_item is not None
        for item in (webhook_item, store_item):
            for name in ("memberId", "email", "fingerprint"):
                item.pop(name, None)
        assert webhook_item == store_item, at

    record = members.get("by-webhook")
    assert record is not None
    assert record.last_board_activity_at == base + timedelta(hours=1)
    assert record.last_seen_key == "2025-11-20T11:00:00.000Z"


def test_member_activity_leaves_unknown_members_alone(stack_env: LocalStack) -> None:
    members = MembersRepository(_table(stack_env, "MembersTable"))
    ours = MemberActivityRepository(low_level(stack_env, "MembersTable"))

    assert not ours.record_board_activity("nobody", datetime(2025, 11, 20, tzinfo=UTC))
    assert members.get("nobody") is None


def test_items_read_the_same_through_boto3_and_the_low_level_table(stack_env: LocalStack) -> None:
    via_boto3 = SubscriptionsRepository(_table(stack_env, "StateTable"))
    via_botocore = SubscriptionsRepository(low_level(stack_env, "StateTable"))
    first, second = subscription(secret="first-secret"), subscription(secret="second-secret")

    via_boto3.put(first)
    via_botocore.put(second)

    for repository in (via_boto3, via_botocore):
        assert repository.get(first.secret_hash) == first
        assert repository.get(second.secret_hash) == second
        assert sorted(record.secret_hash for record in repository.list_all()) == sorted(
            [first.secret_hash, second.secret_hash]
        )
    via_botocore.delete(first.secret_hash)
    assert via_boto3.get(first.secret_hash) is None

    events_boto3 = BoardEventsRepository(_table(stack_env, "BoardEventsTable"), retention_days=400)
    events_botocore = BoardEventsRepository(low_level(stack_env, "BoardEventsTable"), retention_days=400)
    moments = [datetime(2025, 11, 20, 10, 0, second, tzinfo=UTC) for second in range(3)]
    records = [
        BoardEventRecord(
            board_id="uXjVLow=",
            event_time=moment,
            item_id=f"item-{index}",
            item_type="sticky_note",
            event_type="update",
            actor_id="m1" if index else None,
        )
        for index, moment in enumerate(moments)
    ]
    assert events_botocore.put_once(records[0])
    assert events_boto3.put_once(records[1])
    assert events_botocore.put_once(records[2])
    assert not events_boto3.put_once(records[2])
    assert not events_botocore.put_once(records[1])
    for events in (events_boto3, events_botocore):
        assert list(events.query_board("uXjVLow=")) == records
        assert list(events.query_board("uXjVLow=", since=moments[1])) == records[1:]
    stored = _table(stack_env, "BoardEventsTable").get_item(
        Key={"boardId": "uXjVLow=", "sk": records[0].sort_key}
    )["Item"]
    assert stored["expiresAt"] == int((moments[0] + timedelta(days=400)).timestamp())
