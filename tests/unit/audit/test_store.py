from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from miro_sync.store.audit import AuditRecord, AuditRepository, RejectedEvent, RejectedEventsRepository
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
