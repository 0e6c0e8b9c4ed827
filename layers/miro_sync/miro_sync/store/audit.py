"""AuditTable (one item per Miro audit event) and the rejected-event log (in StateTable).

AuditTable item (camelCase, as stored):
  day          "YYYY-MM-DD" of createdAt in UTC (partition key: one Query per day for a time range)
  sk           "{createdAt}#{eventId}" with createdAt in one canonical form (UTC, milliseconds, "Z"),
               so the same event always has the same key and string order is time order
  actor        createdBy email (lower-cased) or, without one, createdBy id   (GSI ByActor, sparse)
  event        Miro's event name                                            (GSI ByEventType, sparse)
  eventId, createdAt, category, actorType, actorId, actorEmail, objectId, objectName
  raw          the event exactly as Miro sent it, as JSON (unknown fields kept)
  expiresAt    createdAt + retention (TTL, epoch seconds); derived from the event, not the write
               time, so writing the same event twice writes the same item

Indexes ByActor and ByEventType project only the listing attributes (INCLUDE: eventId, createdAt,
event, category, actor, actorType, actorId, actorEmail, objectId, objectName), not `raw`: with ALL,
every event's raw JSON was written three times, which made the index copies most of the write cost.

Exactly once: the key is derived from the event, so a put is idempotent. Before writing a page the
repository asks (BatchGetItem, consistent) which keys already exist; only the missing ones are
written (BatchWriteItem) and reported as new, which is what forwarding needs. This is 1 + 4
requests per 100-event page instead of 100 conditional PutItems, and it is race-free because the
sync's checkpoint lease allows one writer at a time (and a racing duplicate put would still write
the identical item). The sync skips the check for events it can prove are not stored yet (see
`AuditLogSync`, "write bound").

Queries (the public read API):
  query_time_range(start, end) -> Iterator[StoredEvent]     full events, oldest first, consistent
  query_by_actor(actor, start=None, end=None) -> Iterator[AuditSummary]      ByActor, oldest first
  query_by_event_type(event, start=None, end=None) -> Iterator[AuditSummary] ByEventType, oldest first
  full_events(summaries) -> Iterator[StoredEvent]   the full items (with `raw`) of index results, in
                                                    the same order, by BatchGetItem (100 per request)
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from boto3.dynamodb.conditions import Key

from miro_sync.store.dynamo import (
    MAX_BATCH_GET_KEYS,
    MAX_BATCH_WRITE_ITEMS,
    batch_get,
    batch_write,
    chunked,
    pages,
)
from miro_sync.store.lowlevel import from_item
from miro_sync.timestamps import iso_millis

DEFAULT_RETENTION_DAYS = 400
# DynamoDB items are capped at 400 KB; an event this large keeps a truncated `raw` and says so.
MAX_RAW_BYTES = 300_000
REJECTED_PK = "audit#rejected"
REJECTED_RETENTION_DAYS = 400


# The old name of the single textual form of an audit timestamp, still imported by sync/.
canonical_time = iso_millis


@dataclass(frozen=True)
class AuditRecord:
    """One valid audit event, ready to store."""

    event_id: str
    created_at: datetime
    event: str | None
    category: str | None
    actor_type: str | None
    actor_id: str | None
    actor_email: str | None
    object_id: str | None
    object_name: str | None
    raw: Mapping[str, Any] = field(compare=False, hash=False)

    @cached_property
    def created_at_key(self) -> str:
        # Cached: the key, the day and the item all start from it, for every event of every page.
        return iso_millis(self.created_at)

    @property
    def day(self) -> str:
        return self.created_at_key[:10]

    @property
    def sk(self) -> str:
        return f"{self.created_at_key}#{self.event_id}"

    @property
    def actor(self) -> str | None:
        return self.actor_email or self.actor_id

    def key(self) -> dict[str, str]:
        return {"day": self.day, "sk": self.sk}

    def to_item(self, retention_days: int) -> dict[str, Any]:
        """The item as plain values (what a boto3 `Table` takes)."""
        return from_item(self.to_typed_item(retention_days))

    def to_typed_item(self, retention_days: int) -> dict[str, dict[str, Any]]:
        """The item as DynamoDB attribute values (what a plain client takes), built in one pass: the
        page writes of a backfill build hundreds of thousands of them."""
        raw_json = json.dumps(self.raw, separators=(",", ":"), sort_keys=True, default=str)
        truncated = len(raw_json.encode()) > MAX_RAW_BYTES
        if truncated:
            raw_json = raw_json.encode()[:MAX_RAW_BYTES].decode(errors="ignore")
        item: dict[str, dict[str, Any]] = {
            "day": {"S": self.day},
            "sk": {"S": self.sk},
            "eventId": {"S": self.event_id},
            "createdAt": {"S": self.created_at_key},
            "raw": {"S": raw_json},
            "expiresAt": {"N": str(int((self.created_at + timedelta(days=retention_days)).timestamp()))},
        }
        optional = (
            ("event", self.event),
            ("category", self.category),
            ("actor", self.actor),
            ("actorType", self.actor_type),
            ("actorId", self.actor_id),
            ("actorEmail", self.actor_email),
            ("objectId", self.object_id),
            ("objectName", self.object_name),
        )
        # DynamoDB Local rejects empty strings (and GSI keys may not be empty): leave them out.
        for name, value in optional:
            if value:
                item[name] = {"S": value}
        if truncated:
            item["rawTruncated"] = {"BOOL": True}
        return item


@dataclass(frozen=True)
class AuditSummary:
    """An index entry of AuditTable: everything a listing shows, without the raw event."""

    day: str
    sk: str
    event_id: str
    created_at: str
    event: str | None
    category: str | None
    actor: str | None
    actor_type: str | None
    actor_id: str | None
    actor_email: str | None
    object_id: str | None
    object_name: str | None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> AuditSummary:
        return cls(**_summary_fields(item))

    def key(self) -> dict[str, str]:
        return {"day": self.day, "sk": self.sk}


@dataclass(frozen=True)
class StoredEvent(AuditSummary):
    """A full item read back from AuditTable."""

    raw: dict[str, Any]

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> StoredEvent:
        raw = json.loads(item["raw"]) if not item.get("rawTruncated") else {"truncated": item["raw"]}
        return cls(**_summary_fields(item), raw=raw)


def _summary_fields(item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "day": item["day"],
        "sk": item["sk"],
        "event_id": item["eventId"],
        "created_at": item["createdAt"],
        "event": item.get("event"),
        "category": item.get("category"),
        "actor": item.get("actor"),
        "actor_type": item.get("actorType"),
        "actor_id": item.get("actorId"),
        "actor_email": item.get("actorEmail"),
        "object_id": item.get("objectId"),
        "object_name": item.get("objectName"),
    }


def _days(start: datetime, end: datetime) -> list[str]:
    first = start.astimezone(UTC).date()
    last = end.astimezone(UTC).date()
    return [(first + timedelta(days=offset)).isoformat() for offset in range((last - first).days + 1)]


class AuditRepository:
    """All access to AuditTable. Thread-safe: it only uses the table's low-level client."""

    def __init__(
        self,
        table: Any,
        *,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        write_workers: int = 1,
        writer: Any | None = None,
    ) -> None:
        self._client = table.meta.client
        # The page writes' client: a plain low-level DynamoDB client (not a resource's), sent items
        # already typed (`AuditRecord.to_typed_item`). The resource client's serializer walks every attribute
        # of every item on the calling thread, under the GIL; a sync writing 1,000+ events a second
        # spends a measurable share of its CPU there. None: the table's own client, plain values.
        self._writer = writer
        self.table_name: str = table.name
        self.retention_days = retention_days
        # BatchWriteItem calls in parallel (each is a latency-bound round trip), on one pool for the
        # repository's life: pages written concurrently share it instead of starting threads per page.
        self.write_workers = max(1, write_workers)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self.read_requests = 0
        self.write_requests = 0
        self.items_written = 0

    # --- writes ----------------------------------------------------------------------------------

    def filter_new(self, records: Sequence[AuditRecord]) -> list[AuditRecord]:
        """The records whose key is not stored yet, each once, in their original order."""
        unique: dict[str, AuditRecord] = {}
        for record in records:
            unique.setdefault(record.sk, record)
        if not unique:
            return []
        keys = [record.key() for record in unique.values()]
        found, requests = batch_get(self._client, self.table_name, keys)
        self.read_requests += requests
        present = {item["sk"] for item in found}
        return [record for sk, record in unique.items() if sk not in present]

    def put(self, records: Sequence[AuditRecord]) -> None:
        """Write records (idempotent: same event, same key, same item)."""
        if not records:
            return
        client = self._client if self._writer is None else self._writer
        if self._writer is None:
            items = [record.to_item(self.retention_days) for record in records]
        else:
            items = [record.to_typed_item(self.retention_days) for record in records]
        batches = list(chunked(items, MAX_BATCH_WRITE_ITEMS))
        if self.write_workers == 1 or len(batches) == 1:
            self.write_requests += sum(batch_write(client, self.table_name, batch) for batch in batches)
        else:
            requests = self._writer_pool().map(
                lambda batch: batch_write(client, self.table_name, batch), batches
            )
            self.write_requests += sum(requests)
        self.items_written += len(records)

    def _writer_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.write_workers, thread_name_prefix="audit-batch-write")
            return self._pool

    # --- queries ---------------------------------------------------------------------------------

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for page in pages(self._client.query, TableName=self.table_name, **kwargs):
            self.read_requests += 1
            yield from page.get("Items", [])

    def query_time_range(self, start: datetime, end: datetime) -> Iterator[StoredEvent]:
        """Events with start <= createdAt < end, oldest first (one Query per UTC day)."""
        low, high = iso_millis(start), iso_millis(end)
        for day in _days(start, end):
            for item in self._query(
                KeyConditionExpression=Key("day").eq(day) & Key("sk").between(low, high),
                ConsistentRead=True,
            ):
                yield StoredEvent.from_item(item)

    def query_by_actor(
        self, actor: str, start: datetime | None = None, end: datetime | None = None
    ) -> Iterator[AuditSummary]:
        """Events by createdBy email (any case) or, for actors without one, createdBy id; oldest first."""
        return self._query_index(
            "ByActor", "actor", actor.strip().lower() if "@" in actor else actor, start, end
        )

    def query_by_event_type(
        self, event: str, start: datetime | None = None, end: datetime | None = None
    ) -> Iterator[AuditSummary]:
        return self._query_index("ByEventType", "event", event, start, end)

    def full_events(self, summaries: Iterable[AuditSummary]) -> Iterator[StoredEvent]:
        """The full items (with `raw`) of index results, in their order; 100 keys per BatchGetItem.

        Eventually consistent like the index the summaries came from. An item gone in between (TTL)
        is left out.
        """
        for batch in chunked(summaries, MAX_BATCH_GET_KEYS):
            found, requests = batch_get(
                self._client, self.table_name, [summary.key() for summary in batch], consistent=False
            )
            self.read_requests += requests
            by_sk = {item["sk"]: item for item in found}
            for summary in batch:
                item = by_sk.get(summary.sk)
                if item is not None:
                    yield StoredEvent.from_item(item)

    def _query_index(
        self, index: str, attribute: str, value: str, start: datetime | None, end: datetime | None
    ) -> Iterator[AuditSummary]:
        condition: Any = Key(attribute).eq(value)
        if start is not None or end is not None:
            low = iso_millis(start) if start else "0000"
            high = iso_millis(end) if end else "9999"
            condition = condition & Key("sk").between(low, high)
        # GSIs are eventually consistent: fine for reports and investigations.
        for item in self._query(IndexName=index, KeyConditionExpression=condition):
            yield AuditSummary.from_item(item)


@dataclass(frozen=True)
class RejectedEvent:
    """An event that cannot be stored (no id, unparseable date), with where it came from."""

    reason: str
    raw: Any
    cursor: str | None
    window_start: str
    window_end: str

    def key(self) -> str:
        # From the event alone: a bad event newer than the watermark is re-read by the next run in
        # another window (and page), and must still be recorded once; the latest read's cursor wins.
        body = json.dumps([self.reason, self.raw], sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()[:32]


class RejectedEventsRepository:
    """Rejected audit events in StateTable (pk "audit#rejected", sk "event#{hash of reason and event}")."""

    def __init__(self, table: Any) -> None:
        self._client = table.meta.client
        self.table_name: str = table.name

    def record(self, rejects: Sequence[RejectedEvent], *, now: datetime) -> None:
        if not rejects:
            return
        unique = {reject.key(): reject for reject in rejects}
        items = []
        for digest, reject in unique.items():
            raw_json = json.dumps(reject.raw, default=str)[:MAX_RAW_BYTES]
            item: dict[str, Any] = {
                "pk": REJECTED_PK,
                "sk": f"event#{digest}",
                "reason": reject.reason,
                "raw": raw_json,
                "windowStart": reject.window_start,
                "windowEnd": reject.window_end,
                "recordedAt": iso_millis(now),
                "expiresAt": int(now.timestamp()) + REJECTED_RETENTION_DAYS * 86_400,
            }
            if reject.cursor:
                item["cursor"] = reject.cursor
            items.append(item)
        batch_write(self._client, self.table_name, items)

    def list(self, limit: int = 100) -> list[dict[str, Any]]:
        response = self._client.query(
            TableName=self.table_name,
            KeyConditionExpression=Key("pk").eq(REJECTED_PK),
            ScanIndexForward=False,
            Limit=limit,
            ConsistentRead=True,
        )
        return [dict(item) for item in response.get("Items", [])]
