"""SQS adapter for the offboarding queue (send one message, or many with SendMessageBatch) and its
dead-letter queue (a refused malformed message is copied there with its reason)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

MAX_DELAY_SECONDS = 900  # SQS's ceiling; longer waits go through the scheduled sweep
BATCH_LIMIT = 10  # SendMessageBatch entries per call
REJECT_REASON_ATTRIBUTE = "miroSyncRejectReason"
REQUEST_ID_ATTRIBUTE = "miroSyncRequestId"
MAX_REASON_CHARS = 1000
EMPTY_BODY = "(empty body)"  # SQS refuses an empty MessageBody


class QueueSendError(Exception):
    """SQS did not take the message (throttled, unreachable, refused); the caller decides to retry."""


@dataclass(frozen=True)
class OutgoingMessage:
    body: str
    delay_seconds: int = 0
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SendFailure:
    index: int
    code: str
    message: str


def _attributes(attributes: dict[str, str]) -> dict[str, Any]:
    return {name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()}


class OffboardingQueue:
    def __init__(self, queue_url: str, client: SQSClient) -> None:
        self.queue_url = queue_url
        self._client = client

    @classmethod
    def from_url(cls, queue_url: str) -> OffboardingQueue:
        import boto3

        return cls(queue_url, boto3.client("sqs"))

    def send(self, message: OutgoingMessage) -> str:
        """Raises QueueSendError when SQS does not take the message (the caller decides to retry)."""
        if not 0 <= message.delay_seconds <= MAX_DELAY_SECONDS:
            raise ValueError(f"delay_seconds must be within 0..{MAX_DELAY_SECONDS}")
        kwargs: dict[str, Any] = {"QueueUrl": self.queue_url, "MessageBody": message.body}
        if message.delay_seconds:
            kwargs["DelaySeconds"] = message.delay_seconds
        if message.attributes:
            kwargs["MessageAttributes"] = _attributes(message.attributes)
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self._client.send_message(**kwargs)["MessageId"]
        except (BotoCoreError, ClientError) as error:
            raise QueueSendError(f"could not send to the offboarding queue: {error}") from error

    def dead_letter(self, body: str, *, request_id: str, reason: str) -> str:
        """Put a refused message on this (dead-letter) queue as it arrived, its reason and request id in
        message attributes, so an operator reading the DLQ sees why without opening the actions table."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._client.send_message(
                QueueUrl=self.queue_url,
                MessageBody=body or EMPTY_BODY,
                MessageAttributes=_attributes(
                    {
                        REJECT_REASON_ATTRIBUTE: reason[:MAX_REASON_CHARS] or "refused",
                        REQUEST_ID_ATTRIBUTE: request_id,
                    }
                ),
            )
        except (BotoCoreError, ClientError) as error:
            raise QueueSendError(f"could not send to the dead-letter queue: {error}") from error
        return response["MessageId"]

    def send_batch(
        self, messages: Sequence[OutgoingMessage], *, on_sent: Callable[[int], None] | None = None
    ) -> list[SendFailure]:
        """Send in chunks of 10; entries SQS reports as failed with a server-side (retryable) error are
        sent once more. Returns what still failed, by index in `messages`, so nothing is lost silently."""
        failures: list[SendFailure] = []
        for start in range(0, len(messages), BATCH_LIMIT):
            chunk = list(enumerate(messages[start : start + BATCH_LIMIT], start))
            for round_number in range(2):
                entries: list[Any] = []
                for index, message in chunk:
                    entry: dict[str, Any] = {"Id": str(index), "MessageBody": message.body}
                    if message.delay_seconds:
                        entry["DelaySeconds"] = message.delay_seconds
                    if message.attributes:
                        entry["MessageAttributes"] = _attributes(message.attributes)
                    entries.append(entry)
                response = self._client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
                failed = {int(item["Id"]): item for item in response.get("Failed", [])}
                if on_sent is not None:
                    on_sent(len(chunk) - len(failed))
                retryable = [
                    (index, msg)
                    for index, msg in chunk
                    if index in failed and not failed[index]["SenderFault"]
                ]
                permanent = [index for index in failed if failed[index]["SenderFault"]]
                failures.extend(
                    SendFailure(index, failed[index]["Code"], failed[index].get("Message", ""))
                    for index in permanent
                )
                if not retryable or round_number == 1:
                    failures.extend(
                        SendFailure(index, failed[index]["Code"], failed[index].get("Message", ""))
                        for index, _ in retryable
                    )
                    break
                chunk = retryable
        return failures
