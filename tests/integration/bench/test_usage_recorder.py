"""The usage recorder against AWS's DynamoDB Local: it really returns ConsumedCapacity, index writes
included, and the store code reads exactly what it would read without the recorder."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from bench._usage import UsageRecorder
from miro_sync.store.members import MembersRepository, build_member_record
from miro_sync_cli.local.servers import LocalServers
from miro_sync_cli.local.stack import LocalStack
from tests.unit.sync.fakes import member

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def dynamodb_local(aws_servers: LocalServers) -> LocalServers:
    if not aws_servers.uses_dynamodb_local:
        pytest.skip("moto server reports made-up capacity; this needs DynamoDB Local (Java)")
    return aws_servers


@pytest.fixture
def recorder() -> Iterator[UsageRecorder]:
    with UsageRecorder() as installed:
        yield installed


def _session(servers: LocalServers) -> Any:
    environment = servers.endpoint_environment()
    return boto3.session.Session(
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=environment["AWS_SESSION_TOKEN"],
        region_name=environment["AWS_DEFAULT_REGION"],
    )


def test_dynamodb_local_reports_table_and_index_units_and_the_caller_sees_no_capacity(
    dynamodb_local: LocalServers, recorder: UsageRecorder
) -> None:
    client = _session(dynamodb_local).client("dynamodb", endpoint_url=dynamodb_local.dynamodb_url)
    name = f"usage-probe-{id(recorder)}"
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "email", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "ByEmail",
                "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    try:
        # 2.5 KB: 3 write units in the table and 3 in the index; 0.5 read unit eventually consistent
        item = {"pk": {"S": "m1"}, "email": {"S": "a@example.com"}, "notes": {"S": "x" * 2500}}
        put = client.put_item(TableName=name, Item=item)
        got = client.get_item(TableName=name, Key={"pk": {"S": "m1"}})
        with pytest.raises(client.exceptions.ConditionalCheckFailedException):
            client.put_item(TableName=name, Item=item, ConditionExpression="attribute_not_exists(pk)")
    finally:
        client.delete_table(TableName=name)

    assert "ConsumedCapacity" not in put
    assert "ConsumedCapacity" not in got
    assert got["Item"] == item
    assert recorder.snapshot()["dynamodb"]["by_table"] == {name: {"read_units": 0.5, "write_units": 7.0}}
    assert recorder.snapshot()["requests"] == {
        "dynamodb": {"CreateTable": 1, "DeleteTable": 1, "GetItem": 1, "PutItem": 2}
    }


def test_the_members_repository_on_the_template_table_costs_a_write_per_index(
    local_stack: LocalStack,
) -> None:
    if not local_stack.servers.uses_dynamodb_local:
        pytest.skip("moto server reports made-up capacity; this needs DynamoDB Local (Java)")
    records = [
        build_member_record(
            member(f"m{index}"),
            None,
            teams=("t1",),
            boards_owned=1,
            scim_id=None,
            scim_checked_at=None,
            now=T0,
        )
        for index in range(30)
    ]
    with UsageRecorder() as recorder:
        resource = _session(local_stack.servers).resource(
            "dynamodb", endpoint_url=local_stack.servers.dynamodb_url
        )
        repository = MembersRepository(resource.Table(local_stack.tables["MembersTable"]))
        repository.put_new(records)
        found, _ = repository.get_many(record.member_id for record in records)

    assert sorted(found) == sorted(record.member_id for record in records)
    table = local_stack.tables["MembersTable"]
    # small items: one write unit in the table and one in each of ByEmail and BySeat (projection ALL);
    # the repository reads consistently: one read unit per item of up to 4 KB
    assert recorder.snapshot()["dynamodb"]["by_table"] == {table: {"read_units": 30.0, "write_units": 90.0}}
