"""The boto3-free DynamoDB codec and table wrapper the webhook uses (miro_sync.store.lowlevel).

boto3's own TypeSerializer/TypeDeserializer are the reference: the webhook's items must be exactly what
the boto3-based repositories (and the CLI) write and read."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from miro_sync.store.board_events import BoardEventRecord, BoardEventsRepository
from miro_sync.store.lowlevel import LowLevelTable, dynamodb_client, from_attribute, to_attribute
from miro_sync.store.member_activity import MemberActivityRepository
from miro_sync.store.subscriptions import SubscriptionsRepository
from tests.unit.webhooks.fakes import subscription

VALUES: list[Any] = [
    "uXjVOfjmfkE=",
    "",
    "ü ✓ 🎉",
    0,
    1_735_000_000,
    -7,
    Decimal("1.50"),
    Decimal("12345678901234567890"),
    True,
    False,
    None,
    b"\x00\xff",
    ["a", 1, None, [True]],
    {"nested": {"list": ["x"], "n": 2}, "empty": {}},
    {"a", "b"},
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_encoding_matches_boto3(value: Any) -> None:
    ours = to_attribute(value)
    theirs = TypeSerializer().serialize(value)
    if "SS" in ours:  # a set: boto3 keeps iteration order, we sort
        assert sorted(ours["SS"]) == sorted(theirs["SS"])
    else:
        assert ours == theirs


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_decoding_matches_boto3(value: Any) -> None:
    attribute = TypeSerializer().serialize(value)
    assert from_attribute(attribute) == TypeDeserializer().deserialize(attribute)


@pytest.mark.parametrize("value", [1.5, Decimal("NaN"), Decimal("Infinity"), object(), set()], ids=repr)
def test_what_boto3_refuses_is_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        to_attribute(value)


def test_number_sets_and_binary_sets_decode() -> None:
    assert from_attribute({"NS": ["1", "2.5"]}) == {Decimal(1), Decimal("2.5")}
    assert from_attribute({"BS": [b"a"]}) == {b"a"}
    with pytest.raises(TypeError, match="XX"):
        from_attribute({"XX": "?"})


class RecordingClient:
    """A low-level client stand-in: records requests, answers with canned low-level responses."""

    def __init__(self, responses: list[dict[str, Any]] | None = None, error: str | None = None) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._responses = responses or []
        self._error = error

    def __getattr__(self, operation: str) -> Any:
        def call(**request: Any) -> dict[str, Any]:
            self.requests.append((operation, request))
            if self._error is not None:
                raise ClientError({"Error": {"Code": self._error, "Message": "no"}}, operation)
            return self._responses.pop(0) if self._responses else {}

        return call


def test_table_sends_attribute_values_and_returns_plain_values() -> None:
    client = RecordingClient(
        [
            {
                "Items": [{"pk": {"S": "subscriptions"}, "n": {"N": "3"}}],
                "LastEvaluatedKey": {"pk": {"S": "subscriptions"}, "sk": {"S": "x"}},
                "Count": 1,
            }
        ]
    )
    table = LowLevelTable(client, "test-state")

    response = table.query(
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": "pk"},
        ExpressionAttributeValues={":pk": "subscriptions"},
        ExclusiveStartKey={"pk": "subscriptions", "sk": "a"},
    )

    assert client.requests == [
        (
            "query",
            {
                "TableName": "test-state",
                "KeyConditionExpression": "#pk = :pk",
                "ExpressionAttributeNames": {"#pk": "pk"},
                "ExpressionAttributeValues": {":pk": {"S": "subscriptions"}},
                "ExclusiveStartKey": {"pk": {"S": "subscriptions"}, "sk": {"S": "a"}},
            },
        )
    ]
    assert response["Items"] == [{"pk": "subscriptions", "n": Decimal(3)}]
    assert response["LastEvaluatedKey"] == {"pk": "subscriptions", "sk": "x"}
    assert response["Count"] == 1


def test_subscriptions_round_trip_through_the_low_level_table() -> None:
    record = subscription()
    stored = {"pk": "subscription#h", "sk": "subscription", **record.to_attributes()}
    serialize = TypeSerializer().serialize
    client = RecordingClient([{}, {}, {"Item": {name: serialize(value) for name, value in stored.items()}}])
    repository = SubscriptionsRepository(LowLevelTable(client, "test-state"))

    repository.put(record)
    found = repository.get(record.secret_hash)

    assert found == record
    operations = [(name, request.get("Item", request.get("Key"))) for name, request in client.requests]
    assert operations[0] == (
        "put_item",
        {"pk": {"S": "subscriptions"}, "sk": {"S": record.secret_hash}}
        | {name: serialize(value) for name, value in record.to_attributes().items()},
    )
    assert operations[2] == (
        "get_item",
        {"pk": {"S": f"subscription#{record.secret_hash}"}, "sk": {"S": "subscription"}},
    )


def test_board_event_put_is_conditional_and_a_duplicate_is_not_an_error() -> None:
    from datetime import UTC, datetime

    record = BoardEventRecord(
        board_id="b1",
        event_time=datetime(2025, 5, 1, 10, 15, 30, 123000, tzinfo=UTC),
        item_id="i1",
        item_type="sticky_note",
        event_type="create",
        actor_id="m1",
    )
    client = RecordingClient()
    assert BoardEventsRepository(LowLevelTable(client, "test-events"), retention_days=1).put_once(record)
    [(operation, request)] = client.requests
    assert operation == "put_item"
    assert request["ConditionExpression"] == "attribute_not_exists(sk)"
    assert request["Item"]["expiresAt"] == {"N": str(int(record.event_time.timestamp()) + 86_400)}
    assert request["Item"]["sk"] == {"S": "2025-05-01T10:15:30.123Z#i1#create"}

    duplicate = RecordingClient(error="ConditionalCheckFailedException")
    assert not BoardEventsRepository(LowLevelTable(duplicate, "t-e"), retention_days=1).put_once(record)

    failing = RecordingClient(error="ProvisionedThroughputExceededException")
    with pytest.raises(ClientError):
        BoardEventsRepository(LowLevelTable(failing, "t-e"), retention_days=1).put_once(record)


def test_member_activity_falls_back_to_the_signal_only_update() -> None:
    from datetime import UTC, datetime

    class FirstFails(RecordingClient):
        def __getattr__(self, operation: str) -> Any:
            call = super().__getattr__(operation)

            def first_fails(**request: Any) -> dict[str, Any]:
                result = call(**request)
                if len(self.requests) == 1:
                    raise ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, operation)
                return result

            return first_fails

    client = FirstFails()
    written = MemberActivityRepository(LowLevelTable(client, "test-members")).record_board_activity(
        "m1", datetime(2025, 5, 1, 10, 0, tzinfo=UTC)
    )

    assert written
    first, second = (request for _, request in client.requests)
    assert first["Key"] == second["Key"] == {"memberId": {"S": "m1"}}
    assert first["ExpressionAttributeValues"] == {":at": {"S": "2025-05-01T10:00:00.000Z"}}
    assert first["ExpressionAttributeNames"]["#signal"] == "lastBoardActivityAt"
    assert second["UpdateExpression"] == "SET #signal = :at"


def test_client_honours_the_endpoint_and_region_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    assert dynamodb_client().meta.endpoint_url == "http://127.0.0.1:9"
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8")
    client = dynamodb_client()
    assert client.meta.endpoint_url == "http://127.0.0.1:8"
    assert client.meta.region_name == "eu-west-1"
