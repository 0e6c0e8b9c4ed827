"""Read-side queries of the reports that the per-table repositories do not offer.

* seat counts per (status, license): one `Select=COUNT` Query per BySeat partition of MembersTable,
  so even a 100k-member org is counted without reading items (and never with a Scan);
* the whole usage-snapshot history of StateTable with each snapshot's run time (the members sync's
  `StateRepository.latest_usage_snapshots` returns the newest few without their time);
* when the members sync last completed (its checkpoint's `lastCompleteAt`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import ConditionBase, Key

from miro_sync.store.dynamo import paged_items, pages, parse_iso, plain
from miro_sync.store.members import STATUSES, MembersRepository
from miro_sync.store.state import USAGE_SNAPSHOT_PK, StateRepository
from miro_sync.timestamps import iso_millis

# The checkpoint name of the members sync (`miro_sync.sync.members.SYNC_NAME`; not imported: the store
# does not depend on the sync).
MEMBERS_SYNC_NAME = "members"


@dataclass(frozen=True)
class StoredSnapshot:
    at: datetime
    run_id: str | None
    data: Any


class SeatCounter:
    def __init__(self, members_table: Any) -> None:
        self._client = members_table.meta.client
        self.table_name: str = members_table.name

    def count(self, status: str, license: str) -> int:
        counted = pages(
            self._client.query,
            TableName=self.table_name,
            IndexName="BySeat",
            KeyConditionExpression=Key("seat").eq(f"{status}#{license}"),
            Select="COUNT",
        )
        return sum(int(page.get("Count", 0)) for page in counted)

    def counts(
        self, licenses: Iterable[str], statuses: Iterable[str] = STATUSES
    ) -> dict[tuple[str, str], int]:
        """(status, license) -> members, for every combination (zeros included)."""
        wanted_statuses = tuple(statuses)
        return {
            (status, license): self.count(status, license)
            for license in licenses
            for status in wanted_statuses
        }


class UsageSnapshotHistory:
    def __init__(self, state_table: Any) -> None:
        self._client = state_table.meta.client
        self.table_name: str = state_table.name

    def list_snapshots(self, since: datetime | None = None) -> Iterator[StoredSnapshot]:
        """Every usage snapshot (oldest first), or those taken at or after `since`."""
        condition: ConditionBase = Key("pk").eq(USAGE_SNAPSHOT_PK)
        if since is not None:
            condition = condition & Key("sk").gte(iso_millis(since))
        for item in paged_items(
            self._client.query, TableName=self.table_name, KeyConditionExpression=condition
        ):
            snapshot = self._snapshot(item)
            if snapshot is not None:
                yield snapshot

    @staticmethod
    def _snapshot(item: dict[str, Any]) -> StoredSnapshot | None:
        at = parse_iso(str(item["sk"]).split("#", 1)[0])
        if at is None:
            return None
        raw = item.get("snapshot")
        try:
            data = json.loads(raw) if isinstance(raw, str) else plain(raw)
        except json.JSONDecodeError:
            data = None  # the report counts it as skipped rather than failing the whole history
        return StoredSnapshot(at=at, run_id=item.get("runId"), data=data)


class MembersSyncStatus:
    def __init__(self, state_table: Any) -> None:
        self._state = StateRepository(state_table)
        self.table_name: str = state_table.name

    def last_complete_at(self) -> datetime | None:
        """When the last complete members sync ended, or None if none is recorded."""
        stored = self._state.load_checkpoint(MEMBERS_SYNC_NAME)
        if stored is None:
            return None
        value = stored.state.get("lastCompleteAt")
        try:
            return parse_iso(value) if isinstance(value, str) else None
        except ValueError:
            return None  # unreadable: as if none were recorded (the caller refuses to act)


@dataclass(frozen=True)
class ReportStore:
    """The adapters a report reads through, for one pair of tables."""

    members: MembersRepository
    seats: SeatCounter
    snapshots: UsageSnapshotHistory | None
    sync_status: MembersSyncStatus | None = None

    @property
    def members_table(self) -> str:
        return self.members.table_name


class TableNotFoundError(LookupError):
    """A table the report reads does not exist (wrong name, region or endpoint)."""


def open_report_store(members_table: str, state_table: str | None) -> ReportStore:
    """Adapters on the real tables; boto3 picks region, credentials and endpoint from the environment
    (AWS_ENDPOINT_URL_DYNAMODB for DynamoDB Local). Raises TableNotFoundError for a missing table."""
    import boto3
    from botocore.exceptions import ClientError

    dynamodb = boto3.resource("dynamodb")
    tables = {"members": dynamodb.Table(members_table)}
    if state_table:
        tables["state"] = dynamodb.Table(state_table)
    for table in tables.values():
        try:
            table.load()
        except ClientError as error:
            if error.response["Error"]["Code"] == "ResourceNotFoundException":
                raise TableNotFoundError(f"table {table.name!r} does not exist") from None
            raise
    members = tables["members"]
    state = tables.get("state")
    return ReportStore(
        members=MembersRepository(members),
        seats=SeatCounter(members),
        snapshots=UsageSnapshotHistory(state) if state is not None else None,
        sync_status=MembersSyncStatus(state) if state is not None else None,
    )
