"""Board events (BoardEventsTable: ``boardId`` + ``sk="{eventTime}#{itemId}#{type}"``, TTL ``expiresAt``).

Written by the board webhook, so boto3-free: the table is a `LowLevelTable` there (a boto3 `Table`
works too), and conditions are expression strings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from miro_sync.store.dynamo import is_conditional_check_failed, paged_items
from miro_sync.timestamps import iso_millis, parse_timestamp  # iso_millis: webhooks/ imports it from here

if TYPE_CHECKING:
    from miro_sync.store.lowlevel import AnyTable


class BoardEventRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    board_id: str
    event_time: datetime
    item_id: str
    item_type: str
    event_type: str
    actor_id: str | None = None

    @property
    def sort_key(self) -> str:
        return f"{iso_millis(self.event_time)}#{self.item_id}#{self.event_type}"


class BoardEventsRepository:
    def __init__(self, table: AnyTable, *, retention_days: int) -> None:
        self._table = table
        self._retention = timedelta(days=retention_days)

    def put_once(self, record: BoardEventRecord) -> bool:
        """Stores the event unless it is already there; True when this call stored it."""
        item: dict[str, Any] = {
            "boardId": record.board_id,
            "sk": record.sort_key,
            "eventTime": iso_millis(record.event_time),
            "itemId": record.item_id,
            "itemType": record.item_type,
            "eventType": record.event_type,
            "expiresAt": int((record.event_time + self._retention).timestamp()),
        }
        if record.actor_id:
            item["actor"] = record.actor_id
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(sk)")
        except ClientError as error:
            if is_conditional_check_failed(error):
                return False
            raise
        return True

    def query_board(self, board_id: str, *, since: datetime | None = None) -> Iterator[BoardEventRecord]:
        query: dict[str, Any] = {
            "KeyConditionExpression": "#board = :board",
            "ExpressionAttributeNames": {"#board": "boardId"},
            "ExpressionAttributeValues": {":board": board_id},
        }
        if since is not None:
            query["KeyConditionExpression"] += " AND #sk >= :since"
            query["ExpressionAttributeNames"]["#sk"] = "sk"
            query["ExpressionAttributeValues"][":since"] = iso_millis(since)
        for item in paged_items(self._table.query, **query):
            yield BoardEventRecord(
                board_id=str(item["boardId"]),
                event_time=parse_timestamp(str(item["eventTime"])),
                item_id=str(item["itemId"]),
                item_type=str(item["itemType"]),
                event_type=str(item["eventType"]),
                actor_id=str(item["actor"]) if item.get("actor") else None,
            )
