"""The board webhook over real HTTP: Function URL adapter -> handler -> DynamoDB Local / moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from miro_sync.miro.models import OrgMember
from miro_sync.store.subscriptions import SubscriptionRecord
from miro_sync.webhooks.receiver import MAX_EVENT_TIME_SKEW, hash_secret
from tests.integration.webhooks.conftest import Webhook
from tests.unit.webhooks.fakes import board_event

pytestmark = pytest.mark.integration

SECRET = "integration-secret-0123456789-abcdefghijklmno"
BOARD = "uXjVLk2mQ3o="
ACTOR = "3458764517517852417"


def subscribe(webhook: Webhook, status: str = "enabled", secret: str = SECRET) -> None:
    webhook.subscriptions.put(
        SubscriptionRecord(
            secret_hash=hash_secret(secret),
            board_id=BOARD,
            status=status,  # type: ignore[arg-type]
            created_at="2025-11-20T10:00:00.000Z",
            updated_at="2025-11-20T10:00:00.000Z",
            subscription_id="sub-1" if status != "pending" else None,
        )
    )


def add_member(webhook: Webhook) -> None:
    member = OrgMember.model_validate(
        {
            "id": ACTOR,
            "email": "ada@example.com",
            "role": "organization_internal_user",
            "license": "full",
            "active": True,
            "lastActivityAt": "2025-10-01T00:00:00Z",
        }
    )
    webhook.members.upsert_from_miro(member, None)


def logged_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every record with its extras (Powertools puts structured fields there)."""
    return "\n".join(f"{record.getMessage()} {record.__dict__!r}" for record in caplog.records)


def stored(webhook: Webhook) -> list[str]:
    return [f"{record.sort_key}" for record in webhook.board_events.query_board(BOARD)]


def post(webhook: Webhook, path: str, body: bytes | str, **kwargs: object) -> httpx.Response:
    return httpx.post(
        f"{webhook.url}{path}", content=body, headers={"content-type": "application/json"}, timeout=10
    )


def test_challenge_is_answered_for_a_pending_subscription(webhook: Webhook) -> None:
    subscribe(webhook, status="pending")

    response = post(webhook, f"/board-events/{SECRET}", json.dumps({"challenge": "8f3b0c2e"}))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"challenge": "8f3b0c2e"}


def test_delivery_is_stored_once_and_refreshes_the_member(
    webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    subscribe(webhook)
    add_member(webhook)
    body = json.dumps(board_event(board_id=BOARD, actor=ACTOR, event_time="2025-11-20T10:15:30.412Z"))

    first = post(webhook, f"/board-events/{SECRET}", body)
    second = post(webhook, f"/board-events/{SECRET}", body)

    assert (first.status_code, first.json()) == (200, {"stored": True})
    assert (second.status_code, second.json()) == (200, {"stored": False})
    assert stored(webhook) == ["2025-11-20T10:15:30.412Z#3458764538974307111#create"]
    member = webhook.members.get(ACTOR)
    assert member is not None
    assert member.last_board_activity_at == datetime(2025, 11, 20, 10, 15, 30, 412000, tzinfo=UTC)
    logged = logged_text(caplog)
    assert "board webhook request" in logged
    assert SECRET not in logged


def test_a_future_event_time_does_not_move_last_seen_into_the_future(webhook: Webhook) -> None:
    subscribe(webhook)
    add_member(webhook)
    body = json.dumps(board_event(board_id=BOARD, actor=ACTOR, event_time="2150-01-01T00:00:00.000Z"))

    sent = datetime.now(UTC)
    response = post(webhook, f"/board-events/{SECRET}", body)
    answered = datetime.now(UTC)

    assert (response.status_code, response.json()) == (200, {"stored": True})
    # The event is kept as delivered...
    assert stored(webhook) == ["2150-01-01T00:00:00.000Z#3458764538974307111#create"]
    # ...but the member was seen no later than the time of receipt plus the skew allowance.
    member = webhook.members.get(ACTOR)
    assert member is not None
    assert member.last_board_activity_at is not None
    skew = MAX_EVENT_TIME_SKEW
    # Stored at millisecond precision: allow the truncation below the earliest bound.
    assert sent + skew - timedelta(milliseconds=1) <= member.last_board_activity_at <= answered + skew
    assert member.last_seen_at == member.last_board_activity_at


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/board-events/not-the-secret", "{}", 401),
        ("POST", "/board-events/", "{}", 401),
        ("POST", "/board-events", "{}", 401),
        ("POST", f"/board-events/{SECRET}", "{not json", 400),
        ("POST", f"/board-events/{SECRET}", json.dumps({"event": {"boardId": BOARD}}), 400),
        (
            "POST",
            f"/board-events/{SECRET}",
            json.dumps(board_event(board_id=BOARD)) + " " * (257 * 1024),
            413,
        ),
        ("GET", f"/board-events/{SECRET}", "", 405),
        ("PUT", f"/board-events/{SECRET}", json.dumps(board_event(board_id=BOARD)), 405),
        ("POST", f"/board-events/{SECRET}", json.dumps(board_event(board_id="o9J_other=")), 404),
    ],
)
def test_bad_input_is_a_4xx_and_stores_nothing(
    webhook: Webhook, caplog: pytest.LogCaptureFixture, method: str, path: str, body: str, status: int
) -> None:
    subscribe(webhook)

    response = httpx.request(method, f"{webhook.url}{path}", content=body, timeout=10)

    assert response.status_code == status
    assert response.json()["message"]
    assert stored(webhook) == []
    assert [record.board_id for record in webhook.board_events.query_board("o9J_other=")] == []
    logged = logged_text(caplog)
    assert "board webhook request" in logged
    assert SECRET not in logged


def test_disabled_subscription_is_refused(webhook: Webhook) -> None:
    subscribe(webhook, status="disabled")

    response = post(webhook, f"/board-events/{SECRET}", json.dumps(board_event(board_id=BOARD)))

    assert response.status_code == 401
    assert stored(webhook) == []
