"""In-memory stand-ins for the webhook's stores, matching the repositories' method names."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from miro_sync.store.board_events import BoardEventRecord
from miro_sync.store.subscriptions import SubscriptionRecord
from miro_sync.webhooks.receiver import hash_secret

SECRET = "s3cr3t-Example_token-value-0123456789abcdefgh"
BOARD_ID = "uXjVOfjmfkE="
NOW = "2025-05-01T10:00:00.000Z"


def subscription(
    secret: str = SECRET, board_id: str = BOARD_ID, status: str = "enabled"
) -> SubscriptionRecord:
    return SubscriptionRecord(
        secret_hash=hash_secret(secret),
        board_id=board_id,
        status=status,  # type: ignore[arg-type]
        created_at=NOW,
        updated_at=NOW,
        subscription_id="sub-1",
    )


@dataclass
class FakeSubscriptions:
    records: dict[str, SubscriptionRecord] = field(default_factory=dict)
    lookups: int = 0

    def add(self, record: SubscriptionRecord) -> None:
        self.records[record.secret_hash] = record

    def get(self, secret_hash: str) -> SubscriptionRecord | None:
        self.lookups += 1
        return self.records.get(secret_hash)


@dataclass
class FakeBoardEvents:
    items: dict[tuple[str, str], BoardEventRecord] = field(default_factory=dict)

    def put_once(self, record: BoardEventRecord) -> bool:
        key = (record.board_id, record.sort_key)
        if key in self.items:
            return False
        self.items[key] = record
        return True


@dataclass
class FakeMembers:
    last_activity: dict[str, datetime] = field(default_factory=dict)
    calls: list[tuple[str, datetime]] = field(default_factory=list)

    def record_board_activity(self, member_id: str, at: datetime) -> bool:
        self.calls.append((member_id, at))
        previous = self.last_activity.get(member_id)
        if previous is not None and previous >= at:
            return False
        self.last_activity[member_id] = at
        return True


@dataclass
class RecordingMetrics:
    names: list[str] = field(default_factory=list)

    def add_metric(self, name: str, unit: Any, value: float, *args: Any, **kwargs: Any) -> None:
        self.names.append(name)


class CapturingHandler(logging.Handler):
    """Collects every formatted record, extras included, to search for leaked secrets."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {record.__dict__!r}")

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def board_event(
    *,
    board_id: str = BOARD_ID,
    item_id: str = "3458764538974307111",
    event_type: str = "create",
    event_time: str = "2025-05-01T10:15:30.123Z",
    actor: str | None = "3458764518726781881",
) -> dict[str, Any]:
    item: dict[str, Any] = {"id": item_id, "type": "sticky_note", "data": {"content": "hello"}}
    if actor is not None:
        item["createdBy"] = {"id": actor, "type": "user"}
        item["modifiedBy"] = {"id": actor, "type": "user"}
    return {
        "eventType": "board_subscription",
        "eventTime": event_time,
        "appId": "3458764517517852417",
        "users": [],
        "event": {"boardId": board_id, "type": event_type, "item": item},
    }
