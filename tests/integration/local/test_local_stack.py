import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from miro_sync_cli.local.invoke import FunctionError
from miro_sync_cli.local.servers import LocalServers
from miro_sync_cli.local.stack import LocalStack, MiroConnection

SAMPLE_TEMPLATE = Path(__file__).parent / "template.yaml"


@pytest.fixture
def sample_stack(aws_servers: LocalServers) -> Iterator[LocalStack]:
    aws_servers.lambda_api.pending.clear()
    stack = LocalStack(aws_servers, template_path=SAMPLE_TEMPLATE).provision()
    yield stack
    stack.teardown()


def test_resources_are_made_from_the_template_definitions(sample_stack: LocalStack) -> None:
    dynamodb = sample_stack.client("dynamodb")
    table = dynamodb.describe_table(TableName=sample_stack.tables["CounterTable"])["Table"]
    assert [key["AttributeName"] for key in table["KeySchema"]] == ["pk", "sk"]
    sqs = sample_stack.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=sample_stack.queue_url, AttributeNames=["All"])[
        "Attributes"
    ]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert attributes["VisibilityTimeout"] == "60"
    assert int(redrive["maxReceiveCount"]) == 3
    assert redrive["deadLetterTargetArn"].endswith("WorkDeadLetters")
    assert sample_stack.dlq_url.endswith("WorkDeadLetters")


def test_environment_points_at_the_local_resources(sample_stack: LocalStack) -> None:
    environment = sample_stack.function_env("SampleFunction")
    assert environment["COUNTER_TABLE"] == sample_stack.tables["CounterTable"]
    assert environment["QUEUE_URL"] == sample_stack.queue_url
    assert environment["LABEL"] == "sample-label"
    assert environment["AWS_LAMBDA_FUNCTION_NAME"] == f"{sample_stack.prefix}-sample"
    assert environment["AWS_ENDPOINT_URL_DYNAMODB"].startswith("http://127.0.0.1:")


def test_self_continuation_is_played_in_order_with_a_counting_down_context(sample_stack: LocalStack) -> None:
    sample_stack.connect_miro(MiroConnection("http://127.0.0.1:9", "http://127.0.0.1:9/scim", "1", "t", "s"))
    secrets = sample_stack.client("secretsmanager")
    secrets.put_secret_value(SecretId=sample_stack.secrets["TokenSecret"], SecretString="abcdef")
    results = sample_stack.invoke("SampleFunction", {"rounds": 3})
    assert [result["round"] for result in results] == [1, 2, 3]
    assert all(result["tokenLength"] == 6 for result in results)
    items = sample_stack.client("dynamodb").query(
        TableName=sample_stack.tables["CounterTable"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "run"}},
    )["Items"]
    assert [item["sk"]["S"] for item in items] == ["round#001", "round#002", "round#003"]
    assert all(0 < int(item["remainingMs"]["N"]) <= 42_000 for item in items)


def test_a_handler_error_comes_back_as_lambdas_error_payload(sample_stack: LocalStack) -> None:
    with pytest.raises(FunctionError) as raised:
        sample_stack.invoke("SampleFunction", {"fail": True})
    assert raised.value.payload["errorType"] == "ValueError"
    assert raised.value.payload["errorMessage"] == "asked to fail"
