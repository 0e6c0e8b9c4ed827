"""Every listing in store/ reads all pages of its Query: the same request again from each page's
LastEvaluatedKey until a page has none, one page at a time (store.dynamo.pages / paged_items)."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

from miro_sync.store.actions import ActionRecord, ActionsRepository
from miro_sync.store.audit import AuditRepository
from miro_sync.store.blast_radius import PARTITION, BlastRadiusCounter
from miro_sync.store.board_events import BoardEventsRepository
from miro_sync.store.dynamo import paged_items, pages
from miro_sync.store.members import MembersRepository
from miro_sync.store.reports import SeatCounter, UsageSnapshotHistory
from miro_sync.store.state import StateRepository
from miro_sync.store.subscriptions import SubscriptionsRepository
from tests.unit.store.fakes import PagedTable, page

FIRST_KEY = {"pk": "p", "sk": "1"}
SECOND_KEY = {"pk": "p", "sk": "2"}
NOW = datetime(2025, 6, 1, 12, 30, 10, tzinfo=UTC)


def three_pages(first: list[Any], second: list[Any], third: list[Any]) -> PagedTable:
    return PagedTable(pages=[page(first, FIRST_KEY), page(second, SECOND_KEY), page(third)])


# --- the helpers ----------------------------------------------------------------------------------


def test_each_next_request_is_the_same_request_from_the_last_evaluated_key() -> None:
    table = three_pages([{"n": 1}], [{"n": 2}], [{"n": 3}])

    answers = list(pages(table.query, TableName="t", IndexName="ByX", Limit=50, ConsistentRead=True))

    assert [answer["Items"] for answer in answers] == [[{"n": 1}], [{"n": 2}], [{"n": 3}]]
    asked = {"TableName": "t", "IndexName": "ByX", "Limit": 50, "ConsistentRead": True}
    assert table.queries == [
        asked,
        {**asked, "ExclusiveStartKey": FIRST_KEY},
        {**asked, "ExclusiveStartKey": SECOND_KEY},
    ]


def test_a_page_is_requested_only_when_the_one_before_is_used_up() -> None:
    table = three_pages([{"n": 1}, {"n": 2}], [{"n": 3}], [])

    items = paged_items(table.query, TableName="t")

    assert table.queries == []
    assert next(items) == {"n": 1}
    assert next(items) == {"n": 2}
    assert len(table.queries) == 1
    assert next(items) == {"n": 3}
    assert len(table.queries) == 2


def test_empty_pages_with_a_key_are_followed_and_a_last_page_without_one_ends_the_listing() -> None:
    table = three_pages([], [{"n": 1}], [])

    assert list(paged_items(table.query, TableName="t")) == [{"n": 1}]
    assert table.start_keys() == [None, FIRST_KEY, SECOND_KEY]


# --- the repositories' listings -------------------------------------------------------------------


def action(request_id: str, outcome: str = "held") -> dict[str, Any]:
    stamp = "2025-06-01T12:00:00.000Z"
    return ActionRecord.model_validate(
        {
            "requestId": request_id,
            "action": "suspend",
            "memberKey": "email#ada@acme.example",
            "requestedBy": "it@acme.example",
            "reason": "left",
            "outcome": outcome,
            "createdAt": stamp,
            "updatedAt": stamp,
            "body": "{}",
        }
    ).to_item()


def test_actions_of_a_member_come_from_every_page() -> None:
    table = three_pages([action("r1")], [action("r2")], [action("r3")])

    records = ActionsRepository(table).by_member("email#ada@acme.example")  # type: ignore[arg-type]

    assert [record.request_id for record in records] == ["r1", "r2", "r3"]
    assert {request["IndexName"] for request in table.queries} == {"ByMember"}
    assert table.start_keys() == [None, FIRST_KEY, SECOND_KEY]


def test_actions_by_outcome_stop_asking_once_the_limit_is_reached() -> None:
    table = three_pages([action("r1"), action("r2")], [action("r3")], [])

    records = list(ActionsRepository(table).by_outcome("held", limit=2))  # type: ignore[arg-type]

    assert [record.request_id for record in records] == ["r1", "r2"]
    assert len(table.queries) == 1
    assert table.queries[0]["IndexName"] == "ByOutcome"


def summary(event_id: str) -> dict[str, Any]:
    created = f"2025-06-01T12:00:0{event_id}.000Z"
    return {"day": "2025-06-01", "sk": f"{created}#{event_id}", "eventId": event_id, "createdAt": created}


def test_audit_listings_read_every_page_and_count_each_request() -> None:
    table = three_pages([summary("1")], [summary("2")], [summary("3")])
    repository = AuditRepository(table)

    found = list(repository.query_by_event_type("board_opened"))

    assert [event.event_id for event in found] == ["1", "2", "3"]
    assert repository.read_requests == 3
    assert {(request["TableName"], request["IndexName"]) for request in table.queries} == {
        ("fake-table", "ByEventType")
    }
    assert table.start_keys() == [None, FIRST_KEY, SECOND_KEY]


def minute(at: datetime, count: int) -> dict[str, Any]:
    return {"pk": PARTITION, "sk": "minute#" + at.strftime("%Y-%m-%dT%H:%M"), "count": count}


def test_the_blast_radius_sums_the_previous_minutes_of_every_page() -> None:
    table = three_pages(
        [minute(NOW - timedelta(minutes=59), 2)],
        [minute(NOW - timedelta(minutes=1), 3)],
        [minute(NOW, 4)],  # the current minute: counted from its own item (get_item), not the query
    )

    assert BlastRadiusCounter(table).used(NOW) == 5  # type: ignore[arg-type]
    assert all(request["ConsistentRead"] for request in table.queries)
    assert table.start_keys() == [None, FIRST_KEY, SECOND_KEY]


def board_event(item_id: str) -> dict[str, Any]:
    return {
        "boardId": "b1",
        "sk": f"2025-06-01T12:00:00.000Z#{item_id}#create",
        "eventTime": "2025-06-01T12:00:00.123Z",
        "itemId": item_id,
        "itemType": "sticky_note",
        "eventType": "create",
    }


def test_board_events_come_from_every_page_with_aware_utc_times() -> None:
    table = three_pages([board_event("i1")], [board_event("i2")], [board_event("i3")])

    events = list(BoardEventsRepository(table, retention_days=30).query_board("b1", since=NOW))

    assert [event.item_id for event in events] == ["i1", "i2", "i3"]
    assert {event.event_time for event in events} == {datetime(2025, 6, 1, 12, 0, 0, 123000, tzinfo=UTC)}
    assert table.queries[0]["ExpressionAttributeValues"] == {
        ":board": "b1",
        ":since": "2025-06-01T12:30:10.000Z",
    }
    assert table.start_keys() == [None, FIRST_KEY, SECOND_KEY]


def member(member_id: str) -> dict[str, Any]:
    return {
        "memberId": member_id,
        "email": f"{member_id}@acme.example",
        "role": "organization_internal_user",
        "license": "full",
        "active": True,
        "status": "active",
    }


def test_seats_come_from_every_page() -> None:
    table = three_pages([member("m1")], [member("m2")], [member("m3")])

    found = list(MembersRepository(table).query_seats("active", "full", "2025-03-01T00:00:00.000Z"))

    assert [record.member_id for record in found] == ["m1", "m2", "m3"]
    assert {request["IndexName"] for request in table.queries} == {"BySeat"}
    assert table.start_keys() == [None, FIRST_KEY, SECOND_KEY]


def test_seat_counts_add_up_the_count_of_every_page() -> None:
    table = PagedTable(
        pages=[
            {"Count": 1000, "LastEvaluatedKey": FIRST_KEY},
            {"Count": 250, "LastEvaluatedKey": SECOND_KEY},
            {"Count": 7},
        ]
    )

    assert SeatCounter(table).count("active", "full") == 1257
    assert {request["Select"] for request in table.queries} == {"COUNT"}
    assert table.start_keys() == [None, FIRST_KEY, SECOND_KEY]


def snapshot(at: str) -> dict[str, Any]:
    return {"pk": "snapshot#usage", "sk": f"{at}#run", "runId": "run", "snapshot": '{"seats": 1}'}


def test_usage_snapshots_come_from_every_page() -> None:
    table = three_pages(
        [snapshot("2025-06-01T00:00:00.000Z")],
        [snapshot("2025-06-02T00:00:00.000Z")],
        [snapshot("2025-06-03T00:00:00.000Z")],
    )

    found = list(UsageSnapshotHistory(table).list_snapshots())

    assert [stored.at.day for stored in found] == [1, 2, 3]
    assert table.start_keys() == [None, FIRST_KEY, SECOND_KEY]


def test_a_blob_is_put_together_from_chunks_on_several_pages() -> None:
    data = zlib.compress(b"x" * 1000 + b"y" * 1000)
    thirds = [data[: len(data) // 3], data[len(data) // 3 : 2 * len(data) // 3], data[2 * len(data) // 3 :]]
    table = three_pages(*([{"chunks": 3, "data": part}] for part in thirds))

    assert StateRepository(table).load_bytes("members", "run-1", "teams") == b"x" * 1000 + b"y" * 1000
    assert all(request["ConsistentRead"] for request in table.queries)
    assert table.start_keys() == [None, FIRST_KEY, SECOND_KEY]


def test_run_pages_come_from_every_query_page() -> None:
    def run_page(number: int) -> dict[str, Any]:
        ids = zlib.compress(f"m{number}a\nm{number}b".encode())
        return {"sk": f"page#{number:08d}", "ids": ids, "state": "{}"}

    table = three_pages([run_page(1)], [run_page(2)], [run_page(3)])

    found = list(StateRepository(table).iter_run_pages("members", "run-1"))

    assert [(run.number, run.member_ids) for run in found] == [
        (1, ["m1a", "m1b"]),
        (2, ["m2a", "m2b"]),
        (3, ["m3a", "m3b"]),
    ]
    assert table.start_keys() == [None, FIRST_KEY, SECOND_KEY]


def subscription(secret_hash: str) -> dict[str, Any]:
    stamp = "2025-06-01T12:00:00.000Z"
    return {
        "secretHash": secret_hash,
        "boardId": "b1",
        "status": "enabled",
        "createdAt": stamp,
        "updatedAt": stamp,
    }


def test_subscriptions_come_from_every_page() -> None:
    table = three_pages([subscription("h1")], [subscription("h2")], [subscription("h3")])

    found = list(SubscriptionsRepository(table).list_all())

    assert [record.secret_hash for record in found] == ["h1", "h2", "h3"]
    assert table.start_keys() == [None, FIRST_KEY, SECOND_KEY]
