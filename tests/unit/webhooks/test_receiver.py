from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from miro_sync.webhooks.receiver import SubscriptionCache, WebhookReceiver, hash_secret, redact_path
from tests.unit.webhooks.fakes import (
    BOARD_ID,
    SECRET,
    FakeBoardEvents,
    FakeMembers,
    FakeSubscriptions,
    board_event,
    subscription,
)


@pytest.fixture
def stores() -> tuple[FakeSubscriptions, FakeBoardEvents, FakeMembers]:
    subscriptions = FakeSubscriptions()
    subscriptions.add(subscription())
    return subscriptions, FakeBoardEvents(), FakeMembers()


def make_receiver(
    stores: tuple[FakeSubscriptions, FakeBoardEvents, FakeMembers], max_body_bytes: int = 4096
) -> WebhookReceiver:
    subscriptions, events, members = stores
    return WebhookReceiver(subscriptions, events, members, max_body_bytes=max_body_bytes)


def body(payload: object) -> bytes:
    return json.dumps(payload).encode()


def test_challenge_is_echoed_for_a_pending_subscription() -> None:
    subscriptions = FakeSubscriptions()
    subscriptions.add(subscription(status="pending"))
    receiver = WebhookReceiver(subscriptions, FakeBoardEvents(), FakeMembers(), max_body_bytes=4096)

    outcome = receiver.handle(SECRET, body({"challenge": "abc-123"}))

    assert (outcome.status_code, outcome.body) == (200, {"challenge": "abc-123"})


def test_event_is_stored_and_refreshes_the_actor(
    stores: tuple[FakeSubscriptions, FakeBoardEvents, FakeMembers],
) -> None:
    _, events, members = stores

    outcome = make_receiver(stores).handle(SECRET, body(board_event(event_type="update", actor="m-42")))

    assert outcome.status_code == 200
    assert outcome.body == {"stored": True}
    [stored] = events.items.values()
    assert (stored.board_id, stored.item_id, stored.event_type, stored.actor_id) == (
        BOARD_ID,
        "3458764538974307111",
        "update",
        "m-42",
    )
    assert stored.sort_key == "2025-05-01T10:15:30.123Z#3458764538974307111#update"
    assert members.last_activity == {"m-42": datetime(2025, 5, 1, 10, 15, 30, 123000, tzinfo=UTC)}


def test_same_event_twice_stores_once(
    stores: tuple[FakeSubscriptions, FakeBoardEvents, FakeMembers],
) -> None:
    _, events, members = stores
    receiver = make_receiver(stores)
    # The same instant spelled two ways is the same event.
    first = receiver.handle(SECRET, body(board_event(event_time="2025-05-01T10:15:30.123Z")))
    second = receiver.handle(SECRET, body(board_event(event_time="2025-05-01T12:15:30.123+02:00")))

    assert (first.body, second.body) == ({"stored": True}, {"stored": False})
    assert second.reason == "duplicate"
    assert len(events.items) == 1
    assert len(members.calls) == 1


def test_member_is_written_at_most_once_a_minute_per_container(
    stores: tuple[FakeSubscriptions, FakeBoardEvents, FakeMembers],
) -> None:
    _, _, members = stores
    receiver = make_receiver(stores)
    for item_id, moment in [
        ("a", "10:00:00"),
        ("b", "10:00:30"),
        ("c", "10:00:59"),
        ("d", "10:01:00"),
        ("e", "10:01:30"),
    ]:
        outcome = receiver.handle(
            SECRET, body(board_event(item_id=item_id, event_time=f"2025-05-01T{moment}Z"))
        )
        assert outcome.body == {"stored": True}

    assert [at.strftime("%H:%M:%S") for _, at in members.calls] == ["10:00:00", "10:01:00"]


def test_a_failed_member_write_is_not_remembered(
    stores: tuple[FakeSubscriptions, FakeBoardEvents, FakeMembers],
) -> None:
    subscriptions, events, _ = stores
    attempts: list[str] = []

    class FlakyMembers:
        def record_board_activity(self, member_id: str, at: datetime) -> bool:
            attempts.append(member_id)
            if len(attempts) == 1:
                raise RuntimeError("throttled")
            return True

    receiver = WebhookReceiver(subscriptions, events, FlakyMembers(), max_body_bytes=4096)
    with pytest.raises(RuntimeError):
        receiver.handle(SECRET, body(board_event(item_id="a")))
    receiver.handle(SECRET, body(board_event(item_id="a")))

    assert len(attempts) == 2


def test_create_is_credited_to_the_creator_and_delete_never_to_the_creator() -> None:
    subscriptions = FakeSubscriptions()
    subscriptions.add(subscription())
    members = FakeMembers()
    receiver = WebhookReceiver(subscriptions, FakeBoardEvents(), members, max_body_bytes=4096)
    created = board_event(event_type="create", actor=None)
    created["event"]["item"]["createdBy"] = {"id": "creator", "type": "user"}
    created["event"]["item"]["modifiedBy"] = {"id": "editor", "type": "user"}
    deleted = board_event(event_type="delete", actor=None, item_id="gone")
    deleted["event"]["item"]["createdBy"] = {"id": "creator", "type": "user"}

    assert receiver.handle(SECRET, body(created)).status_code == 200
    assert receiver.handle(SECRET, body(deleted)).status_code == 200

    assert [member for member, _ in members.calls] == ["creator"]


@pytest.mark.parametrize(
    ("secret", "status"),
    [
        (None, "enabled"),
        ("", "enabled"),
        ("wrong-secret", "enabled"),
        ("x" * 5000, "enabled"),
        (SECRET, "disabled"),
    ],
)
def test_unknown_missing_or_inactive_secret_is_401_and_stores_nothing(
    secret: str | None, status: str
) -> None:
    subscriptions = FakeSubscriptions()
    subscriptions.add(subscription(status=status))
    events, members = FakeBoardEvents(), FakeMembers()
    receiver = WebhookReceiver(subscriptions, events, members, max_body_bytes=4096)

    outcome = receiver.handle(secret, body(board_event()))

    assert outcome.status_code == 401
    assert not events.items
    assert not members.calls


@pytest.mark.parametrize(
    ("raw", "reason_part"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[" * 4000, "not valid JSON"),
        (b"[]", "Input should be"),
        (body({"eventTime": "2025-05-01T10:15:30Z"}), "event"),
        (body(board_event(event_type="explode")), "event.type"),
        (body(board_event(event_time="2025-05-01T10:15:30")), "eventTime"),
        (body(board_event(event_time="9999-12-31T23:59:59Z")), "out of range"),
        (body({"challenge": ""}), "challenge"),
        (body({"challenge": 12}), "challenge"),
    ],
)
def test_malformed_body_is_400_with_a_reason(
    stores: tuple[FakeSubscriptions, FakeBoardEvents, FakeMembers], raw: bytes, reason_part: str
) -> None:
    _, events, members = stores

    outcome = make_receiver(stores).handle(SECRET, raw)

    assert outcome.status_code == 400
    assert reason_part in outcome.body["message"]
    assert not events.items
    assert not members.calls


def test_undecodable_body_is_400(stores: tuple[FakeSubscriptions, FakeBoardEvents, FakeMembers]) -> None:
    assert make_receiver(stores).handle(SECRET, None).status_code == 400


def test_body_over_the_cap_is_413(stores: tuple[FakeSubscriptions, FakeBoardEvents, FakeMembers]) -> None:
    _, events, _ = stores
    payload = board_event()
    payload["event"]["item"]["data"]["content"] = "x" * 5000

    outcome = make_receiver(stores, max_body_bytes=4096).handle(SECRET, body(payload))

    assert outcome.status_code == 413
    assert not events.items


def test_event_for_another_board_is_404(
    stores: tuple[FakeSubscriptions, FakeBoardEvents, FakeMembers],
) -> None:
    _, events, members = stores

    outcome = make_receiver(stores).handle(SECRET, body(board_event(board_id="o9J_other=")))

    assert outcome.status_code == 404
    assert not events.items
    assert not members.calls


def test_cache_serves_repeat_lookups_until_it_expires() -> None:
    source = FakeSubscriptions()
    source.add(subscription())
    now = [100.0]
    cache = SubscriptionCache(source, ttl_seconds=30, clock=lambda: now[0])
    known, unknown = hash_secret(SECRET), hash_secret("nope")

    assert cache.get(known) is not None
    assert cache.get(known) is not None
    assert cache.get(unknown) is None
    assert cache.get(unknown) is None
    assert source.lookups == 2
    now[0] += 31
    assert cache.get(known) is not None
    assert source.lookups == 3


def test_cache_is_bounded() -> None:
    source = FakeSubscriptions()
    cache = SubscriptionCache(source, ttl_seconds=30, max_entries=3, clock=lambda: 0.0)
    for index in range(10):
        cache.get(hash_secret(str(index)))
    cache.get(hash_secret("0"))

    assert source.lookups == 11


def test_redact_path_never_returns_the_secret() -> None:
    assert SECRET not in redact_path(f"/board-events/{SECRET}")
    assert redact_path("/elsewhere/x") == "<other path>"
