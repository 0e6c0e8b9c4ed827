"""The usage recorder on stubbed clients (botocore's Stubber answers; no server): what it adds to a call,
what it counts, and that the caller gets exactly the response it asked for."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber

from bench._usage import UsageRecorder

CREDENTIALS: dict[str, Any] = {
    "region_name": "us-east-1",
    "aws_access_key_id": "test",
    "aws_secret_access_key": "test",
}
KEY = {"pk": {"S": "member-1"}}


@pytest.fixture
def recorder() -> Iterator[UsageRecorder]:
    with UsageRecorder() as installed:
        yield installed


def _client(service: str) -> Any:
    return boto3.client(service, **CREDENTIALS)  # type: ignore[call-overload]


def test_a_client_created_after_install_asks_for_capacity_and_its_caller_never_sees_it(
    recorder: UsageRecorder,
) -> None:
    dynamodb = _client("dynamodb")
    with Stubber(dynamodb) as stub:
        stub.add_response(
            "get_item",
            {"Item": KEY, "ConsumedCapacity": {"TableName": "Members", "CapacityUnits": 0.5}},
            # the Stubber checks the parameters as sent: the recorder added ReturnConsumedCapacity
            {"TableName": "Members", "Key": KEY, "ReturnConsumedCapacity": "TOTAL"},
        )
        response = dynamodb.get_item(TableName="Members", Key=KEY)
    assert "ConsumedCapacity" not in response
    assert response["Item"] == KEY
    assert recorder.snapshot() == {
        "dynamodb": {
            "read_units": 0.5,
            "write_units": 0.0,
            "by_table": {"Members": {"read_units": 0.5, "write_units": 0.0}},
        },
        "requests": {"dynamodb": {"GetItem": 1}},
        "lambda": {"invocations": 0, "duration_s": 0.0, "gb_seconds": 0.0},
    }


def test_a_caller_that_asked_for_capacity_keeps_it_and_index_writes_count_in_the_total(
    recorder: UsageRecorder,
) -> None:
    dynamodb = _client("dynamodb")
    consumed = {
        "TableName": "Members",
        "CapacityUnits": 3.0,
        "Table": {"CapacityUnits": 1.0},
        "GlobalSecondaryIndexes": {"ByEmail": {"CapacityUnits": 1.0}, "BySeat": {"CapacityUnits": 1.0}},
    }
    item = {**KEY, "email": {"S": "a@example.com"}}
    with Stubber(dynamodb) as stub:
        stub.add_response(
            "put_item",
            {"ConsumedCapacity": consumed},
            {"TableName": "Members", "Item": item, "ReturnConsumedCapacity": "INDEXES"},
        )
        response = dynamodb.put_item(TableName="Members", Item=item, ReturnConsumedCapacity="INDEXES")
    assert response["ConsumedCapacity"] == consumed
    assert recorder.snapshot()["dynamodb"]["write_units"] == 3.0


def test_batch_calls_count_every_table_and_read_write_split_when_dynamodb_reports_it(
    recorder: UsageRecorder,
) -> None:
    dynamodb = _client("dynamodb")
    put = {"PutRequest": {"Item": KEY}}
    with Stubber(dynamodb) as stub:
        stub.add_response(
            "batch_write_item",
            {
                "UnprocessedItems": {},
                "ConsumedCapacity": [
                    {"TableName": "Audit", "CapacityUnits": 75.0},
                    {"TableName": "State", "CapacityUnits": 2.0},
                ],
            },
            {"RequestItems": {"Audit": [put], "State": [put]}, "ReturnConsumedCapacity": "TOTAL"},
        )
        stub.add_response(
            "transact_get_items",
            {
                "Responses": [{"Item": KEY}],
                "ConsumedCapacity": [{"TableName": "State", "ReadCapacityUnits": 4.0}],
            },
            None,
        )
        batch = dynamodb.batch_write_item(RequestItems={"Audit": [put], "State": [put]})
        dynamodb.transact_get_items(TransactItems=[{"Get": {"TableName": "State", "Key": KEY}}])
    assert "ConsumedCapacity" not in batch
    assert recorder.snapshot()["dynamodb"] == {
        "read_units": 4.0,
        "write_units": 77.0,
        "by_table": {
            "Audit": {"read_units": 0.0, "write_units": 75.0},
            "State": {"read_units": 4.0, "write_units": 2.0},
        },
    }


def test_a_table_resource_asks_for_capacity_too_and_still_returns_plain_values(
    recorder: UsageRecorder,
) -> None:
    table = boto3.resource("dynamodb", **CREDENTIALS).Table("Members")
    with Stubber(table.meta.client) as stub:
        stub.add_response(
            "update_item",
            {
                "Attributes": {"boardsOwned": {"N": "3"}},
                "ConsumedCapacity": {"TableName": "Members", "CapacityUnits": 2.0},
            },
            # the Stubber sees the resource's plain values (boto3 converts them after it)
            {
                "TableName": "Members",
                "Key": {"pk": "member-1"},
                "UpdateExpression": "SET boardsOwned = :n",
                "ExpressionAttributeValues": {":n": 3},
                "ReturnValues": "UPDATED_NEW",
                "ReturnConsumedCapacity": "TOTAL",
            },
        )
        response = table.update_item(
            Key={"pk": "member-1"},
            UpdateExpression="SET boardsOwned = :n",
            ExpressionAttributeValues={":n": 3},
            ReturnValues="UPDATED_NEW",
        )
    assert response["Attributes"] == {"boardsOwned": Decimal(3)}
    assert "ConsumedCapacity" not in response
    assert recorder.snapshot()["dynamodb"]["by_table"] == {"Members": {"read_units": 0.0, "write_units": 2.0}}


def test_a_failed_condition_raises_as_before_and_counts_one_write_unit(recorder: UsageRecorder) -> None:
    dynamodb = _client("dynamodb")
    with Stubber(dynamodb) as stub:
        stub.add_client_error(
            "update_item",
            service_error_code="ConditionalCheckFailedException",
            service_message="The conditional request failed",
            http_status_code=400,
        )
        with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
            dynamodb.update_item(
                TableName="State",
                Key=KEY,
                UpdateExpression="SET v = :v",
                ConditionExpression="attribute_not_exists(pk)",
                ExpressionAttributeValues={":v": {"S": "x"}},
            )
    snapshot = recorder.snapshot()
    assert snapshot["dynamodb"]["by_table"] == {"State": {"read_units": 0.0, "write_units": 1.0}}
    assert snapshot["requests"] == {"dynamodb": {"UpdateItem": 1}}


def test_clients_of_a_fresh_boto3_session_and_of_a_bare_botocore_session_are_counted_per_service(
    recorder: UsageRecorder,
) -> None:
    sqs = boto3.session.Session(**CREDENTIALS).client("sqs")
    secrets: Any = botocore.session.get_session().create_client("secretsmanager", **CREDENTIALS)
    queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/offboarding"
    with Stubber(sqs) as sqs_stub, Stubber(secrets) as secrets_stub:
        sqs_stub.add_response(
            "send_message", {"MessageId": "m-1"}, {"QueueUrl": queue_url, "MessageBody": "{}"}
        )
        sqs_stub.add_response(
            "send_message", {"MessageId": "m-2"}, {"QueueUrl": queue_url, "MessageBody": "{}"}
        )
        secrets_stub.add_response("get_secret_value", {"SecretString": "token"}, {"SecretId": "miro"})
        sqs.send_message(QueueUrl=queue_url, MessageBody="{}")
        sqs.send_message(QueueUrl=queue_url, MessageBody="{}")
        secrets.get_secret_value(SecretId="miro")
    assert recorder.snapshot()["requests"] == {
        "secretsmanager": {"GetSecretValue": 1},
        "sqs": {"SendMessage": 2},
    }


def test_a_warm_containers_client_is_seen_by_the_next_recorder_and_left_alone_in_between() -> None:
    with UsageRecorder() as first:
        dynamodb = _client("dynamodb")  # built by the handler's first invocation, kept while warm
    with Stubber(dynamodb) as stub:
        # no recorder installed: the call goes out exactly as the caller wrote it
        stub.add_response("get_item", {"Item": KEY}, {"TableName": "Members", "Key": KEY})
        dynamodb.get_item(TableName="Members", Key=KEY)
        with UsageRecorder() as second:
            stub.add_response(
                "get_item",
                {"Item": KEY, "ConsumedCapacity": {"TableName": "Members", "CapacityUnits": 1.0}},
                {
                    "TableName": "Members",
                    "Key": KEY,
                    "ConsistentRead": True,
                    "ReturnConsumedCapacity": "TOTAL",
                },
            )
            dynamodb.get_item(TableName="Members", Key=KEY, ConsistentRead=True)
    assert first.snapshot()["requests"] == {}
    assert second.snapshot()["dynamodb"]["read_units"] == 1.0
    assert second.snapshot()["requests"] == {"dynamodb": {"GetItem": 1}}


def test_a_client_created_before_any_recorder_is_counted_only_once_observed() -> None:
    dynamodb: Any = botocore.session.get_session().create_client("dynamodb", **CREDENTIALS)
    answer = {"Items": [], "Count": 0, "ScannedCount": 0}
    query = {
        "TableName": "Audit",
        "KeyConditionExpression": "#d = :d",
        "ExpressionAttributeNames": {"#d": "day"},
        "ExpressionAttributeValues": {":d": {"S": "2026-12-07"}},
    }
    with UsageRecorder() as recorder, Stubber(dynamodb) as stub:
        stub.add_response("query", answer, query)
        dynamodb.query(**query)
        assert recorder.snapshot()["requests"] == {}
        recorder.observe(dynamodb)
        stub.add_response(
            "query",
            {**answer, "ConsumedCapacity": {"TableName": "Audit", "CapacityUnits": 0.5}},
            {**query, "ReturnConsumedCapacity": "TOTAL"},
        )
        dynamodb.query(**query)
    assert recorder.snapshot()["dynamodb"]["read_units"] == 0.5


def test_lambda_invocations_are_billed_per_started_millisecond_at_their_memory() -> None:
    recorder = UsageRecorder()
    recorder.lambda_invocation(2.0001, 512)  # billed 2.001 s
    recorder.lambda_invocation(1.0, 1024)
    assert recorder.snapshot()["lambda"] == {
        "invocations": 2,
        "duration_s": 3.001,
        "gb_seconds": pytest.approx(2.001 * 0.5 + 1.0),
    }


def test_install_is_exclusive_and_uninstall_puts_botocore_back() -> None:
    original = botocore.session.Session.create_client
    with UsageRecorder():
        assert botocore.session.Session.create_client is not original
        with pytest.raises(RuntimeError, match="already installed"):
            UsageRecorder().install()
    assert botocore.session.Session.create_client is original
