"""`iter_audit_pages`: strict page envelope, events handed over as received (validated per event later)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from miro_sync.miro import MiroProtocolError, MiroRestClient
from tests.unit.miro.fakes import FakeTime, ScriptedMiro, json_response

AFTER = datetime(2024, 5, 1, tzinfo=UTC)
BEFORE = datetime(2024, 5, 2, tzinfo=UTC)


def good_event(event_id: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "createdAt": "2024-05-01T10:00:00.123Z",
        "event": "board_opened",
        "createdBy": {"type": "user", "id": "u1", "email": "u@example.com"},
    }


def page(data: Any, cursor: str | None = None, **envelope: Any) -> dict[str, Any]:
    size = len(data) if isinstance(data, list) else 0
    return {"type": "cursor-list", "limit": 100, "size": size, "cursor": cursor, "data": data} | envelope


def client(miro: ScriptedMiro, max_attempts: int = 2) -> MiroRestClient:
    return MiroRestClient(
        "https://api.miro.test",
        "token-123",
        "org-1",
        http=miro.client(),
        max_attempts=max_attempts,
        sleep=FakeTime().sleep,
        clock=FakeTime().clock,
        rate_limit_jitter=0.0,
    )


def test_malformed_events_do_not_fail_the_page_and_arrive_as_received() -> None:
    no_id = {"createdAt": "2024-05-01T10:00:01.000Z", "event": "board_opened"}
    bad_date = good_event("e3") | {"createdAt": "yesterday"}
    not_an_object = ["a", "list"]
    miro = ScriptedMiro(
        [
            json_response(200, page([good_event("e1"), no_id, bad_date], cursor="c1")),
            json_response(200, page([not_an_object, good_event("e5") | {"brandNew": {"x": 1}}])),
        ]
    )
    pages = list(client(miro).iter_audit_pages(AFTER, BEFORE))
    assert [p.next_cursor for p in pages] == ["c1", None]
    assert pages[0].data == [good_event("e1"), no_id, bad_date]
    assert pages[1].data == [not_an_object, good_event("e5") | {"brandNew": {"x": 1}}]
    assert miro.requests[1].url.params["cursor"] == "c1"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (page({"id": "e1"}), "data is an object, not a list"),
        ({"type": "cursor-list", "cursor": None}, "data is missing"),
        (page([good_event("e1")], cursor=7), "cursor is a number"),
        (page([good_event("e1")], type=["cursor-list"]), "type is a list"),
        (page([good_event("e1")], limit="100"), "limit is a string"),
        (page([good_event("e1")], size=2), "size disagrees with data (a truncated page)"),
    ],
)
def test_a_garbled_envelope_is_retried_then_a_protocol_error(body: dict[str, Any], why: str) -> None:
    miro = ScriptedMiro([json_response(200, body), json_response(200, body)])
    with pytest.raises(MiroProtocolError):
        list(client(miro, max_attempts=2).iter_audit_pages(AFTER, BEFORE))
    assert len(miro.requests) == 2, why


def test_a_garbled_envelope_recovers_when_the_retry_is_good() -> None:
    miro = ScriptedMiro(
        [
            httpx.Response(
                200,
                content=b'{"type":"cursor-list","data":[{"id"',
                headers={"Content-Type": "application/json"},
            ),
            json_response(200, page([good_event("e1")])),
        ]
    )
    pages = list(client(miro, max_attempts=2).iter_audit_pages(AFTER, BEFORE))
    assert [event["id"] for event in pages[0].data] == ["e1"]
