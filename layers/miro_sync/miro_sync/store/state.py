"""StateTable: sync checkpoints with a lease, per-run page records, usage snapshots.

Layout (pk / sk):
  "sync#{name}" / "checkpoint"           the checkpoint of sync `name`: JSON `state` + lease
                                         (leaseOwner, leaseUntil epoch ms) so that a scheduled run
                                         and a continuation never work on the same run at once.
  "sync#{name}#run#{runId}" / "page#{n}" one item per fetched page: the member ids of that page
                                         (zlib-compressed, ~1 KB per 100 ids) plus JSON `state`
                                         (next cursor, running totals). Written after the page's
                                         members, it doubles as the fine-grained checkpoint: the
                                         last page item says where to resume. The pages of the last
                                         complete run are the compact "who was there" list the next
                                         run compares against to detect removals without a Scan.
  "sync#{name}#run#{runId}" / "{kind}#{n}" run-scoped blobs (team memberships, board owners,
                                         SCIM ids), zlib-compressed JSON in chunks under 350 KB.
  "snapshot#usage" / "{at}#{runId}"      usage snapshot per completed run (history, no TTL).
Run records expire through TTL (`expiresAt`) long after the next complete run replaced them.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from miro_sync.store.dynamo import batch_write, is_conditional_check_failed, paged_items, plain
from miro_sync.timestamps import iso_millis

RUN_RECORD_TTL_DAYS = 180
_BLOB_CHUNK_BYTES = 350_000
USAGE_SNAPSHOT_PK = "snapshot#usage"


class LeaseLostError(RuntimeError):
    """Another invocation took over the checkpoint (ours expired): stop without writing more."""


@dataclass(frozen=True)
class StoredCheckpoint:
    state: dict[str, Any]
    lease_owner: str | None
    lease_until_ms: int


@dataclass(frozen=True)
class RunPage:
    number: int
    member_ids: list[str]
    state: dict[str, Any]


def _pack_ids(ids: Sequence[str]) -> bytes:
    return zlib.compress("\n".join(ids).encode(), 6)


def _unpack_ids(blob: Any) -> list[str]:
    raw = bytes(blob.value if hasattr(blob, "value") else blob)
    text = zlib.decompress(raw).decode()
    return text.split("\n") if text else []


class StateRepository:
    def __init__(self, table: Any) -> None:
        self._client = table.meta.client
        self.table_name: str = table.name

    # --- checkpoint + lease ----------------------------------------------------------------------

    @staticmethod
    def _checkpoint_key(name: str) -> dict[str, str]:
        return {"pk": f"sync#{name}", "sk": "checkpoint"}

    def load_checkpoint(self, name: str) -> StoredCheckpoint | None:
        item = self._client.get_item(
            TableName=self.table_name, Key=self._checkpoint_key(name), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return StoredCheckpoint(
            state=json.loads(item["state"]) if "state" in item else {},
            lease_owner=item.get("leaseOwner"),
            lease_until_ms=int(item.get("leaseUntil", 0)),
        )

    def acquire_lease(self, name: str, owner: str, *, now_ms: int, until_ms: int) -> bool:
        """Take the checkpoint's lease if it is free, expired or already ours."""
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=self._checkpoint_key(name),
                UpdateExpression="SET leaseOwner = :owner, leaseUntil = :until",
                ConditionExpression=(
                    "attribute_not_exists(leaseUntil) OR leaseUntil < :now OR leaseOwner = :owner"
                ),
                ExpressionAttributeValues={":owner": owner, ":until": until_ms, ":now": now_ms},
            )
            return True
        except ClientError as error:
            if is_conditional_check_failed(error):
                return False
            raise

    def save_checkpoint(self, name: str, owner: str, state: Mapping[str, Any]) -> None:
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=self._checkpoint_key(name),
                UpdateExpression="SET #state = :state",
                ConditionExpression="leaseOwner = :owner",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":state": json.dumps(state, sort_keys=True), ":owner": owner},
            )
        except ClientError as error:
            if is_conditional_check_failed(error):
                raise LeaseLostError(
                    f"sync {name}: the checkpoint lease is held by another invocation"
                ) from None
            raise

    def release_lease(self, name: str, owner: str) -> None:
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=self._checkpoint_key(name),
                UpdateExpression="SET leaseUntil = :zero",
                ConditionExpression="leaseOwner = :owner",
                ExpressionAttributeValues={":zero": 0, ":owner": owner},
            )
        except ClientError as error:
            if not is_conditional_check_failed(error):
                raise

    # --- run pages -------------------------------------------------------------------------------

    @staticmethod
    def _run_pk(name: str, run_id: str) -> str:
        return f"sync#{name}#run#{run_id}"

    def put_run_page(
        self,
        name: str,
        run_id: str,
        number: int,
        member_ids: Sequence[str],
        state: Mapping[str, Any],
        *,
        now: datetime,
    ) -> None:
        self._client.put_item(
            TableName=self.table_name,
            Item={
                "pk": self._run_pk(name, run_id),
                "sk": f"page#{number:08d}",
                "ids": _pack_ids(member_ids),
                "count": len(member_ids),
                "state": json.dumps(state, sort_keys=True),
                "expiresAt": int(now.timestamp()) + RUN_RECORD_TTL_DAYS * 86_400,
            },
        )

    def last_run_page(self, name: str, run_id: str) -> RunPage | None:
        response = self._client.query(
            TableName=self.table_name,
            KeyConditionExpression=Key("pk").eq(self._run_pk(name, run_id)) & Key("sk").begins_with("page#"),
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = response.get("Items", [])
        return self._run_page(items[0]) if items else None

    def iter_run_pages(self, name: str, run_id: str) -> Iterator[RunPage]:
        """Every page record of a run, in order; one DynamoDB page (<= 1 MB) in memory at a time."""
        for item in paged_items(
            self._client.query,
            TableName=self.table_name,
            KeyConditionExpression=Key("pk").eq(self._run_pk(name, run_id)) & Key("sk").begins_with("page#"),
            ConsistentRead=True,
        ):
            yield self._run_page(item)

    @staticmethod
    def _run_page(item: Mapping[str, Any]) -> RunPage:
        return RunPage(
            number=int(item["sk"].split("#", 1)[1]),
            member_ids=_unpack_ids(item["ids"]),
            state=json.loads(item["state"]),
        )

    # --- run-scoped blobs ------------------------------------------------------------------------

    def put_blob(self, name: str, run_id: str, kind: str, payload: Any, *, now: datetime) -> int:
        """Store JSON-able `payload` compressed in chunks; returns the number of chunks."""
        return self.put_bytes(
            name, run_id, kind, json.dumps(payload, separators=(",", ":")).encode(), now=now
        )

    def load_blob(self, name: str, run_id: str, kind: str) -> Any:
        """The payload stored by put_blob, or None if absent or incomplete."""
        data = self.load_bytes(name, run_id, kind)
        return None if data is None else json.loads(data)

    def put_bytes(
        self,
        name: str,
        run_id: str,
        kind: str,
        payload: bytes | Iterable[bytes | bytearray | memoryview],
        *,
        now: datetime,
    ) -> int:
        """Store `payload` zlib-compressed in chunks under 350 KB; returns the number of chunks.

        `payload` may be given as parts (e.g. views of arrays): they are compressed one after the
        other, so no joined copy of the whole payload is made."""
        if isinstance(payload, bytes):
            data = zlib.compress(payload, 6)
        else:
            compressor = zlib.compressobj(6)
            data = b"".join([*(compressor.compress(part) for part in payload), compressor.flush()])
        chunks = [
            data[start : start + _BLOB_CHUNK_BYTES] for start in range(0, len(data), _BLOB_CHUNK_BYTES)
        ] or [b""]
        del data
        expires_at = int(now.timestamp()) + RUN_RECORD_TTL_DAYS * 86_400
        items = [
            {
                "pk": self._run_pk(name, run_id),
                "sk": f"{kind}#{index:04d}",
                "data": chunk,
                "chunks": len(chunks),
                "expiresAt": expires_at,
            }
            for index, chunk in enumerate(chunks)
        ]
        batch_write(self._client, self.table_name, items)
        return len(chunks)

    def load_bytes(self, name: str, run_id: str, kind: str) -> bytes | None:
        """The payload stored by put_bytes, or None if absent or incomplete."""
        parts: list[bytes] = []
        expected = 0
        for item in paged_items(
            self._client.query,
            TableName=self.table_name,
            KeyConditionExpression=Key("pk").eq(self._run_pk(name, run_id))
            & Key("sk").begins_with(f"{kind}#"),
            ConsistentRead=True,
        ):
            expected = int(item["chunks"])
            blob = item["data"]
            parts.append(bytes(blob.value if hasattr(blob, "value") else blob))
        if not parts or len(parts) != expected:
            return None
        return zlib.decompress(b"".join(parts))

    # --- usage snapshots -------------------------------------------------------------------------

    def put_usage_snapshot(self, at: datetime, run_id: str, snapshot: Mapping[str, Any]) -> None:
        """Idempotent per run: a re-run after a crash overwrites the same item with the same data."""
        self._client.put_item(
            TableName=self.table_name,
            Item={
                "pk": USAGE_SNAPSHOT_PK,
                "sk": f"{iso_millis(at)}#{run_id}",
                "runId": run_id,
                "snapshot": json.dumps(snapshot, sort_keys=True),
            },
        )

    def latest_usage_snapshots(self, limit: int = 1) -> list[dict[str, Any]]:
        response = self._client.query(
            TableName=self.table_name,
            KeyConditionExpression=Key("pk").eq(USAGE_SNAPSHOT_PK),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [plain(json.loads(item["snapshot"])) for item in response.get("Items", [])]
