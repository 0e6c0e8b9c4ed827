"""Which AWS failures are transient (retried), and which are not."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from miro_sync.store.failures import is_transient_aws_failure


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutItem")


@pytest.mark.parametrize(
    "error",
    [
        client_error("ProvisionedThroughputExceededException"),
        client_error("ThrottlingException"),
        client_error("SomethingNew", status=503),
        EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com"),
        TimeoutError("read timed out"),
    ],
)
def test_transient(error: BaseException) -> None:
    assert is_transient_aws_failure(error)


def test_wrapped_transient_failures_are_found_through_the_cause() -> None:
    outer = RuntimeError("Failed to save in-progress idempotency record")
    outer.__cause__ = client_error("ThrottlingException")
    assert is_transient_aws_failure(outer)


@pytest.mark.parametrize(
    "error",
    [
        client_error("ValidationException"),
        client_error("AccessDeniedException"),
        ValueError("bug"),
        KeyError("x"),
    ],
)
def test_not_transient(error: BaseException) -> None:
    assert not is_transient_aws_failure(error)
