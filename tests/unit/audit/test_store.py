from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
from boto3.dynamodb.conditions import Key

from miro_sync.store.audit import (
    AuditRecord,
    AuditRepository,
    AuditSummary,
    RejectedEvent,
    RejectedEventsRepository,
    StoredEvent,
)
from miro_sync.sync.audit_events import to_record
from tests.unit.audit.fakes import make_event
from tests.unit.audit.tables import Tables

DAY = datetime(2026, 2, 10, tzinfo=UTC)


def record(event_id: str, at: datetime, **kwargs: str) -> AuditRecord:
    outcome = to_record(make_event(event_id, at, **kwargs))
    assert isinstance(outcome, AuditRecord)
    return outcome


def test_only_missing_keys_are_new_and_a_rewrite_changes_nothing(tables: Tables) -> None:
    repository = AuditRepository(tables.audit, retention_days=400)
    first = [record("1", DAY), record("2", DAY + timedelta(hours=1))]
    assert repository.filter_new(first) == first
    repository.put(first)
    again = [
        record("2", DAY + timedelta(hours=1)),
        record("3", DAY + timedelta(hours=2)),
        record("3", DAY + timedelta(hours=2)),
    ]
    new = repository.filter_new(again)
    assert [r.event_id for r in new] == ["3"]
    repository.put(new)
    items = tables.audit.scan()["Items"]
    assert sorted(item["eventId"] for item in items) == ["1", "2", "3"]


def test_item_layout_ttl_and_raw(tables: Tables) -> None:
    repository = AuditRepository(tables.audit, retention_days=400)
    raw_event = make_event("5", DAY, email="Ada@Acme.Example") | {"unknownField": [1, 2]}
    outcome = to_record(raw_event)
    assert isinstance(outcome, AuditRecord)
    repository.put([outcome])
    item = tables.audit.get_item(Key={"day": "2026-02-10", "sk": "2026-02-10T00:00:00.000Z#5"})["Item"]
    assert item["actor"] == "ada@acme.example"
    assert item["event"] == "board_opened"
    assert int(item["expiresAt"]) == int((DAY + timedelta(days=400)).timestamp())
    assert json.loads(item["raw"])["unknownField"] == [1, 2]


def test_queries_by_time_range_actor_and_type(tables: Tables) -> None:
    repository = AuditRepository(tables.audit)
    records = [
        record("1", DAY - timedelta(minutes=1), actor_id="a"),
        record("2", DAY + timedelta(hours=5), actor_id="b", event="sign_in_succeeded"),
        record("3", DAY + timedelta(days=1, hours=1), actor_id="a", event="sign_in_succeeded"),
        record("4", DAY + timedelta(days=2), actor_id="a"),
    ]
    repository.put(records)
    in_range = repository.query_time_range(DAY, DAY + timedelta(days=2))
    assert [event.event_id for event in in_range] == ["2", "3"]
    by_actor = repository.query_by_actor("A@acme.example")
    assert [event.event_id for event in by_actor] == ["1", "3", "4"]
    by_actor_window = repository.query_by_actor("a@acme.example", DAY, DAY + timedelta(days=2))
    assert [event.event_id for event in by_actor_window] == ["3"]
    by_type = repository.query_by_event_type("sign_in_succeeded")
    assert [event.event_id for event in by_type] == ["2", "3"]


def test_index_queries_return_summaries_and_full_events_only_when_asked(tables: Tables) -> None:
    repository = AuditRepository(tables.audit)
    events = [
        make_event("1", DAY, actor_id="a", event="board_opened") | {"extra": {"n": 1}},
        make_event("2", DAY + timedelta(hours=1), actor_id="a", event="sign_in_succeeded"),
        make_event("3", DAY + timedelta(hours=2), actor_id="a", event="board_opened") | {"extra": {"n": 3}},
    ]
    records = [to_record(event) for event in events]
    repository.put([r for r in records if isinstance(r, AuditRecord)])

    by_type = list(repository.query_by_event_type("board_opened"))
    assert [type(summary) for summary in by_type] == [AuditSummary, AuditSummary]
    first = by_type[0]
    assert (first.event_id, first.event, first.actor, first.actor_id) == (
        "1",
        "board_opened",
        "a@acme.example",
        "a",
    )
    assert first.created_at == "2026-02-10T00:00:00.000Z"
    # The index (made from template.yaml) does not hold `raw`: summaries come from it alone.
    (index_item,) = tables.audit.query(
        IndexName="ByActor", KeyConditionExpression=Key("actor").eq("a@acme.example"), Limit=1
    )["Items"]
    assert "raw" not in index_item
    assert "expiresAt" not in index_item
    assert {"eventId", "createdAt", "event", "category", "actorId"} <= set(index_item)

    full = list(repository.full_events(reversed(by_type)))
    assert [type(event) for event in full] == [StoredEvent, StoredEvent]
    assert [event.event_id for event in full] == ["3", "1"]  # the order asked for
    assert [event.raw["extra"] for event in full] == [{"n": 3}, {"n": 1}]
    assert (full[1].event, full[1].sk) == (first.event, first.sk)


def test_rejections_are_recorded_once_per_page_read(tables: Tables) -> None:
    rejects = RejectedEventsRepository(tables.state)
    reject = RejectedEvent(
        reason="missing or empty id", raw={"createdAt": "x"}, cursor="c1", window_start="a", window_end="b"
    )
    rejects.record([reject, reject], now=DAY)
    rejects.record([reject], now=DAY + timedelta(minutes=5))
    stored = rejects.list()
    assert len(stored) == 1
    assert stored[0]["cursor"] == "c1"
    assert stored[0]["reason"] == "missing or empty id"


def test_a_plain_writer_client_stores_the_items_the_table_client_stores(tables: Tables) -> None:
    """Page writes through a plain low-level client (items typed by `AuditRecord.to_typed_item`) and through
    the resource's client (plain values) leave identical items, and the item is the documented one: keys,
    listing attributes, TTL number, raw JSON, truncation flag; no empty attribute."""
    plain = boto3.client("dynamodb", region_name=tables.audit.meta.client.meta.region_name)
    events = [
        make_event("a", DAY, email="Ada@Acme.Example") | {"unknownField": [1, {"x": None}]},
        make_event("b", DAY + timedelta(minutes=1)) | {"details": {"blob": "y" * 400_000}},
    ]
    records = [outcome for outcome in map(to_record, events) if isinstance(outcome, AuditRecord)]
    assert len(records) == 2
    AuditRepository(tables.audit, retention_days=400).put(records)
    by_resource = {item["sk"]: item for item in tables.audit.scan()["Items"]}
    for item in by_resource.values():
        tables.audit.delete_item(Key={"day": item["day"], "sk": item["sk"]})
    writer_side = AuditRepository(tables.audit, retention_days=400, writer=plain, write_workers=2)
    writer_side.put(records)
    by_writer = {item["sk"]: item for item in tables.audit.scan()["Items"]}
    assert by_writer == by_resource
    created = "2026-02-10T00:00:00.000Z"
    assert by_writer[records[0].sk] == {
        "day": "2026-02-10",
        "sk": f"{created}#a",
        "eventId": "a",
        "createdAt": created,
        "raw": json.dumps(events[0], separators=(",", ":"), sort_keys=True),
        "expiresAt": int((DAY + timedelta(days=400)).timestamp()),
        "event": "board_opened",
        "category": "boards",
        "actor": "ada@acme.example",
        "actorType": "user",
        "actorId": "m1",
        "actorEmail": "ada@acme.example",
        "objectId": "b1",
        "objectName": "Roadmap",
    }
    assert by_writer[records[1].sk]["rawTruncated"] is True
    assert len(by_writer[records[1].sk]["raw"].encode()) <= 300_000
    assert writer_side.items_written == 2
