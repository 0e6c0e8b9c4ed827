"""Reads what landed on a queue, for assertions. Feeding the queue to the function the way Lambda's event
source mapping does is `miro_sync_cli.local.sqs_poller.drain_queue` (one poller for tests, demo and bench)."""

from __future__ import annotations

from typing import Any


class QueueReader:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self.sqs = sqs
        self.queue_url = queue_url

    def receive(self, max_messages: int = 10) -> list[dict[str, Any]]:
        """One ReceiveMessage (attributes included); the messages stay in flight until their timeout."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def receive_all(self, *, max_rounds: int = 100) -> list[dict[str, Any]]:
        """Everything visible now, deleted as it is read."""
        received: list[dict[str, Any]] = []
        for _ in range(max_rounds):
            batch = self.receive()
            if not batch:
                return received
            received.extend(batch)
            for message in batch:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        raise AssertionError(f"{self.queue_url} did not empty in {max_rounds} reads")
