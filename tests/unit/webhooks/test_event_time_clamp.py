"""A delivery's eventTime never moves a member's "last seen" past the time of receipt (plus skew)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from miro_sync.webhooks.receiver import MAX_EVENT_TIME_SKEW, WebhookReceiver
from tests.unit.webhooks.fakes import (
    SECRET,
    FakeBoardEvents,
    FakeMembers,
    FakeSubscriptions,
    board_event,
    subscription,
)

RECEIVED = datetime(2025, 5, 1, 10, 0, 0, tzinfo=UTC)
ACTOR = "3458764518726781881"


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def receiver_at(clock: FakeClock) -> tuple[WebhookReceiver, FakeBoardEvents, FakeMembers]:
    subscriptions = FakeSubscriptions()
    subscriptions.add(subscription())
    events, members = FakeBoardEvents(), FakeMembers()
    receiver = WebhookReceiver(subscriptions, events, members, max_body_bytes=4096, clock=clock)
    return receiver, events, members


def deliver(receiver: WebhookReceiver, event_time: str, item_id: str = "3458764538974307111") -> int:
    payload = board_event(event_time=event_time, actor=ACTOR, item_id=item_id)
    return receiver.handle(SECRET, json.dumps(payload).encode()).status_code


def test_a_future_event_time_is_clamped_for_the_member_but_stored_as_delivered() -> None:
    receiver, events, members = receiver_at(FakeClock(RECEIVED))

    assert deliver(receiver, "2150-01-01T00:00:00.000Z") == 200

    assert members.calls == [(ACTOR, RECEIVED + MAX_EVENT_TIME_SKEW)]
    [stored] = events.items.values()
    assert stored.event_time == datetime(2150, 1, 1, tzinfo=UTC)
    assert stored.sort_key.startswith("2150-01-01T00:00:00.000Z#")


@pytest.mark.parametrize(
    "event_time",
    [
        RECEIVED - timedelta(days=3),  # a late redelivery
        RECEIVED,
        RECEIVED + timedelta(minutes=4, seconds=59),  # Miro's clock a little ahead of ours
        RECEIVED + MAX_EVENT_TIME_SKEW,
    ],
)
def test_event_times_up_to_the_skew_are_taken_as_they_are(event_time: datetime) -> None:
    receiver, _, members = receiver_at(FakeClock(RECEIVED))

    assert deliver(receiver, event_time.isoformat()) == 200

    assert members.calls == [(ACTOR, event_time)]


def test_the_clamp_follows_the_clock_of_each_delivery() -> None:
    clock = FakeClock(RECEIVED)
    receiver, _, members = receiver_at(clock)

    deliver(receiver, "2150-01-01T00:00:00.000Z", item_id="a")
    clock.now = RECEIVED + timedelta(hours=2)
    deliver(receiver, "2150-01-01T00:00:01.000Z", item_id="b")

    assert [at for _, at in members.calls] == [
        RECEIVED + MAX_EVENT_TIME_SKEW,
        RECEIVED + timedelta(hours=2) + MAX_EVENT_TIME_SKEW,
    ]
    assert members.last_activity[ACTOR] == RECEIVED + timedelta(hours=2) + MAX_EVENT_TIME_SKEW


def test_an_offset_event_time_is_compared_as_an_instant() -> None:
    receiver, _, members = receiver_at(FakeClock(RECEIVED))

    # 13:00+02:00 is 11:00Z: an hour past the receipt, so clamped.
    deliver(receiver, "2025-05-01T13:00:00+02:00")

    assert members.calls == [(ACTOR, RECEIVED + MAX_EVENT_TIME_SKEW)]
