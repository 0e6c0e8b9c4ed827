"""Blast-radius counter: destructive offboarding actions per rolling hour, in the StateTable.

One item per minute (`pk="blast#offboarding"`, `sk="minute#YYYY-MM-DDTHH:MM"`, `count`, `expiresAt`).
A take is one conditional UpdateItem on the current minute: increment if the current minute's count
stays below `limit - (sum of the 59 previous minutes)`. The earlier minutes no longer change, so the
condition on the current minute makes check-and-increment atomic across concurrent workers without a
global lock item (which would serialise every action on one key).

The sum of the previous minutes is read with one Query and cached until the minute changes. The one
way an earlier minute still changes is a take that started in it and lands just after the boundary
(in flight for milliseconds); so a sum read in the first SETTLE seconds of a minute is read once more
after them. Within that brief window the excess is bounded by the takes in flight at the boundary,
exactly as without the cache (a read per take races with the same in-flight writes).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from miro_sync.store.dynamo import is_conditional_check_failed, paged_items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

PARTITION = "blast#offboarding"
WINDOW = timedelta(hours=1)
SETTLE = timedelta(seconds=5)


def _minute_key(at: datetime) -> str:
    return "minute#" + at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def _minute_start(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(second=0, microsecond=0)


def _count(item: Mapping[str, Any]) -> int:
    value = item.get("count", 0)
    return int(value) if isinstance(value, int | Decimal) else 0


class BlastRadiusCounter:
    def __init__(self, table: Table) -> None:
        self._table = table
        # (current minute key, when it was read, sum of the 59 minutes before it)
        self._previous: tuple[str, datetime, int] | None = None
        self.queries = 0  # reads of the previous minutes (the cache's effect, for tests and the bench)

    @classmethod
    def from_table_name(cls, table_name: str) -> BlastRadiusCounter:
        import boto3

        return cls(boto3.resource("dynamodb").Table(table_name))

    def _cached_previous_total(self, at: datetime) -> int:
        key = _minute_key(at)
        cached = self._previous
        if cached is not None and cached[0] == key:
            settled = cached[1] - _minute_start(at) >= SETTLE or at - _minute_start(at) < SETTLE
            if settled:
                return cached[2]
        total = self._previous_minutes_total(at)
        self._previous = (key, at, total)
        return total

    def _previous_minutes_total(self, at: datetime) -> int:
        from boto3.dynamodb.conditions import Key

        self.queries += 1

        first = _minute_key(at - WINDOW + timedelta(minutes=1))
        current = _minute_key(at)
        items = paged_items(
            self._table.query,
            KeyConditionExpression=Key("pk").eq(PARTITION) & Key("sk").between(first, current),
            ConsistentRead=True,
        )
        return sum(_count(item) for item in items if item["sk"] != current)

    def used(self, at: datetime) -> int:
        """Destructive actions counted in the hour ending at `at` (for status and release output)."""
        item = self._table.get_item(Key={"pk": PARTITION, "sk": _minute_key(at)}, ConsistentRead=True).get(
            "Item"
        )
        return self._previous_minutes_total(at) + (_count(item) if item else 0)

    def try_take(self, at: datetime, limit: int) -> bool:
        """Count one action if the rolling hour stays within `limit`; False (nothing counted) otherwise."""
        from botocore.exceptions import ClientError

        room = limit - self._cached_previous_total(at)
        if room <= 0:
            return False
        try:
            self._table.update_item(
                Key={"pk": PARTITION, "sk": _minute_key(at)},
                UpdateExpression="ADD #count :one SET #expiresAt = :expires",
                ConditionExpression="attribute_not_exists(#count) OR #count < :room",
                ExpressionAttributeNames={"#count": "count", "#expiresAt": "expiresAt"},
                ExpressionAttributeValues={
                    ":one": 1,
                    ":room": room,
                    ":expires": int((at + 2 * WINDOW).timestamp()),
                },
            )
        except ClientError as error:
            if is_conditional_check_failed(error):
                self._previous = None  # a refusal is rare and final for the request: base it on a fresh sum
                return False
            raise
        return True

    def count_unconditionally(self, at: datetime) -> None:
        """Operator-released actions bypass the limit but still count, so the next hour sees them."""
        self._table.update_item(
            Key={"pk": PARTITION, "sk": _minute_key(at)},
            UpdateExpression="ADD #count :one SET #expiresAt = :expires",
            ExpressionAttributeNames={"#count": "count", "#expiresAt": "expiresAt"},
            ExpressionAttributeValues={":one": 1, ":expires": int((at + 2 * WINDOW).timestamp())},
        )
