"""Webhook subscription records in the StateTable.

Two items per subscription, both written by `miro-sync subscribe`:

* the credential, ``pk="subscription#{sha256(secret)}"``, ``sk="subscription"``: the only item the
  webhook reads (one GetItem per cold lookup). It holds the hash, never the secret.
* a directory entry, ``pk="subscriptions"``, ``sk="{secretHash}"``: lets the CLI list every
  subscription with one Query instead of a Scan.

Read by the board webhook, so boto3-free: the table is a `LowLevelTable` there, a boto3 `Table` in
the CLI (both take plain values), and the key condition is an expression string.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from miro_sync.store.dynamo import paged_items

if TYPE_CHECKING:
    from miro_sync.store.lowlevel import AnyTable

SubscriptionStatus = Literal["pending", "enabled", "disabled", "lost_access", "failed"]

CREDENTIAL_SK = "subscription"
DIRECTORY_PK = "subscriptions"


def credential_pk(secret_hash: str) -> str:
    return f"subscription#{secret_hash}"


class SubscriptionRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    secret_hash: str
    board_id: str
    status: SubscriptionStatus
    created_at: str
    updated_at: str
    # Miro assigns the id when the create call returns; the record exists before that (the challenge
    # arrives during the create call), hence optional.
    subscription_id: str | None = None

    def to_attributes(self) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "secretHash": self.secret_hash,
            "boardId": self.board_id,
            "status": self.status,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }
        if self.subscription_id:
            attributes["subscriptionId"] = self.subscription_id
        return attributes

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> SubscriptionRecord:
        return cls(
            secret_hash=str(item["secretHash"]),
            board_id=str(item["boardId"]),
            status=item["status"],
            created_at=str(item["createdAt"]),
            updated_at=str(item["updatedAt"]),
            subscription_id=str(item["subscriptionId"]) if item.get("subscriptionId") else None,
        )


class SubscriptionsRepository:
    def __init__(self, table: AnyTable) -> None:
        self._table = table

    def get(self, secret_hash: str) -> SubscriptionRecord | None:
        response = self._table.get_item(Key={"pk": credential_pk(secret_hash), "sk": CREDENTIAL_SK})
        item = response.get("Item")
        return SubscriptionRecord.from_item(item) if item else None

    def put(self, record: SubscriptionRecord) -> None:
        """Writes (or overwrites) both items; the directory entry first, so a crash in between leaves a
        listed-but-unusable subscription rather than an unlisted credential."""
        attributes = record.to_attributes()
        self._table.put_item(Item={"pk": DIRECTORY_PK, "sk": record.secret_hash, **attributes})
        self._table.put_item(
            Item={"pk": credential_pk(record.secret_hash), "sk": CREDENTIAL_SK, **attributes}
        )

    def delete(self, secret_hash: str) -> None:
        """Credential first: once it is gone, deliveries are refused even if the directory delete fails."""
        self._table.delete_item(Key={"pk": credential_pk(secret_hash), "sk": CREDENTIAL_SK})
        self._table.delete_item(Key={"pk": DIRECTORY_PK, "sk": secret_hash})

    def list_all(self) -> Iterator[SubscriptionRecord]:
        for item in paged_items(
            self._table.query,
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": "pk"},
            ExpressionAttributeValues={":pk": DIRECTORY_PK},
        ):
            yield SubscriptionRecord.from_item(item)

    def find_by_subscription_id(self, subscription_id: str) -> SubscriptionRecord | None:
        # The directory is one partition of a few hundred small items at most: reading it is cheaper
        # than maintaining a second index for an operator command.
        return next((record for record in self.list_all() if record.subscription_id == subscription_id), None)
