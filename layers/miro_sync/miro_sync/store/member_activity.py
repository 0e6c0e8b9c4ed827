"""The board webhook's only MembersTable write: move a member's lastBoardActivityAt (and lastSeenAt)
forward, never backwards, without loading the rest of the members store.

`MembersRepository` (store/members.py) writes its signals (board activity, sign-ins, audit activity)
through this class too; it lives apart only because members.py imports the Miro wire models and
boto3's condition builders, which the webhook's cold start should not pay for.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import ClientError

from miro_sync.store.dynamo import is_conditional_check_failed
from miro_sync.timestamps import iso_millis

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

BOARD_ACTIVITY = "lastBoardActivityAt"

# Step 1: the signal is the newest thing seen, so lastSeenAt (>= every signal) moves too. Only for an
# item the sync created (it has a seat); unknown members are left alone, the next sync creates them.
SIGNAL_AND_SEEN_UPDATE = "SET #signal = :at, #seen = :at"
SIGNAL_AND_SEEN_CONDITION = "attribute_exists(#pk) AND attribute_exists(#seat) AND #seen < :at"
# Step 2 (step 1's condition failed): lastSeenAt is already newer, but the signal itself may be older.
SIGNAL_ONLY_UPDATE = "SET #signal = :at"
SIGNAL_ONLY_CONDITION = "attribute_exists(#pk) AND (attribute_not_exists(#signal) OR #signal < :at)"


class ItemUpdates(Protocol):
    """What the signal writes need of a table: a `LowLevelTable` (the webhook), a boto3 `Table`, or
    MembersRepository's client bound to its table."""

    def update_item(self, **kwargs: Any) -> Mapping[str, Any]: ...


class MemberActivityRepository:
    """Signal writes to MembersTable."""

    def __init__(self, table: ItemUpdates) -> None:
        self._table = table

    def record_board_activity(self, member_id: str, at: datetime) -> bool:
        return self.record_signal(member_id, BOARD_ACTIVITY, at)

    def record_signal(self, member_id: str, attribute: str, at: datetime) -> bool:
        """Move `attribute` (and lastSeenAt) forward to `at`, never backwards. Unknown members are
        left alone. Returns True if anything was written."""
        moment = iso_millis(at)
        key = {"memberId": member_id}
        try:
            self._table.update_item(
                Key=key,
                UpdateExpression=SIGNAL_AND_SEEN_UPDATE,
                ConditionExpression=SIGNAL_AND_SEEN_CONDITION,
                ExpressionAttributeNames={
                    "#pk": "memberId",
                    "#signal": attribute,
                    "#seen": "lastSeenAt",
                    "#seat": "seat",
                },
                ExpressionAttributeValues={":at": moment},
            )
            return True
        except ClientError as error:
            if not is_conditional_check_failed(error):
                raise
        try:
            self._table.update_item(
                Key=key,
                UpdateExpression=SIGNAL_ONLY_UPDATE,
                ConditionExpression=SIGNAL_ONLY_CONDITION,
                ExpressionAttributeNames={"#pk": "memberId", "#signal": attribute},
                ExpressionAttributeValues={":at": moment},
            )
            return True
        except ClientError as error:
            if is_conditional_check_failed(error):
                return False
            raise
