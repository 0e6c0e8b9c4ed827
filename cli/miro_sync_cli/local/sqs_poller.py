"""What Lambda's SQS event source mapping does, locally: receive batches from the queue, hand them to
the function as an SQS event, delete what succeeded and leave the reported failures on the queue.

One deliberate difference: Lambda leaves a failed message invisible for the queue's visibility timeout
(minutes); locally it comes back after `retry_after_s` so a demo or test does not sit idle. Redrive to
the DLQ after maxReceiveCount is the queue's own (moto server applies the RedrivePolicy)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from miro_sync_cli.local.invoke import FunctionError
from miro_sync_cli.local.stack import LocalStack


@dataclass
class DrainReport:
    batches: int = 0
    received: int = 0
    succeeded: int = 0
    failed: int = 0
    timed_out: bool = False
    function_errors: list[str] = field(default_factory=list)


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda builds from a ReceiveMessage result."""
    records = []
    for message in messages:
        attributes = message.get("Attributes", {})
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {
                    "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
                    "SenderId": attributes.get("SenderId", "AIDLOCAL"),
                    "ApproximateFirstReceiveTimestamp": attributes.get(
                        "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
                    ),
                },
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value.get("DataType", "String"),
                    }
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),  # nosec B324  # noqa: S324 - SQS's body checksum
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def drain_queue(
    stack: LocalStack,
    function_logical_id: str,
    queue_url: str,
    *,
    batch_size: int = 10,
    retry_after_s: int = 1,
    idle_s: float = 1.5,
    max_batches: int = 10_000,
    timeout_s: float = 300,
) -> DrainReport:
    """Feed the queue to the function until nothing is visible, in flight or delayed for `idle_s`, or
    until `timeout_s` has passed (a delayed message may wait up to 15 minutes)."""
    sqs = stack.client("sqs")
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    report = DrainReport()
    idle_since: float | None = None
    deadline = time.monotonic() + timeout_s
    while report.batches < max_batches:
        if time.monotonic() > deadline:
            report.timed_out = True
            return report
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=batch_size,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            if _queue_is_empty(sqs, queue_url):
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= idle_s:
                    return report
            time.sleep(0.2)
            continue
        idle_since = None
        report.batches += 1
        report.received += len(messages)
        failed_ids = _invoke_batch(stack, function_logical_id, messages, queue_arn, report)
        for message in messages:
            if message["MessageId"] in failed_ids:
                report.failed += 1
                sqs.change_message_visibility(
                    QueueUrl=queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=retry_after_s,
                )
            else:
                report.succeeded += 1
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return report


def _invoke_batch(
    stack: LocalStack,
    function_logical_id: str,
    messages: list[dict[str, Any]],
    queue_arn: str,
    report: DrainReport,
) -> set[str]:
    event = sqs_event(messages, queue_arn, stack.template.region)
    try:
        results = stack.invoke(function_logical_id, event)
    except FunctionError as error:
        # A function error fails the whole batch, as with Lambda.
        report.function_errors.append(str(error))
        return {message["MessageId"] for message in messages}
    response = results[0] if isinstance(results[0], dict) else {}
    return {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}


def _queue_is_empty(sqs: Any, queue_url: str) -> bool:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return all(int(value) == 0 for value in attributes.values())
