"""Which failures of AWS calls are transient: the caller retries them (a later SQS delivery), never turns
them into a final outcome. Kept here because only `store/` knows botocore."""

from __future__ import annotations

from typing import Final

# DynamoDB, SQS and Secrets Manager error codes that mean "not now", never "not this"
_TRANSIENT_CODES: Final = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "TransactionConflictException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "LimitExceededException",
    }
)


def is_transient_aws_failure(error: BaseException) -> bool:
    """True for throttling, 5xx and connection failures of boto3 calls, also when wrapped (as Powertools'
    idempotency layer wraps its table's errors, keeping the original as the cause)."""
    from botocore.exceptions import BotoCoreError, ClientError

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ClientError):
            details = current.response.get("Error", {})
            status = current.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            return details.get("Code") in _TRANSIENT_CODES or int(status or 0) >= 500
        if isinstance(current, BotoCoreError | ConnectionError | TimeoutError):
            return True  # endpoint unreachable, read timeout, connection closed
        current = current.__cause__ or current.__context__
    return False
