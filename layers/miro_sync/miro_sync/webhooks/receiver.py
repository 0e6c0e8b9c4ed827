"""The webhook's decisions, free of HTTP and AWS: the endpoint hands in the path secret and the raw
body, and gets back a status code and a JSON body. Stores are handed in (see the Protocols)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError
from pydantic_core import from_json

from miro_sync.store.board_events import BoardEventRecord
from miro_sync.store.subscriptions import SubscriptionRecord
from miro_sync.webhooks.models import BoardEventDelivery, Challenge

# token_urlsafe(32) is 43 characters; anything much longer is not one of ours and is not worth hashing.
MAX_SECRET_LENGTH = 256
ACCEPTING_STATUSES = frozenset({"pending", "enabled"})
# "Last seen on a board" feeds reports counted in days: one member write per member per minute is
# plenty, and a user editing a board (dozens of events a minute) then costs one UpdateItem, not dozens.
ACTIVITY_GRANULARITY = timedelta(seconds=60)
# A delivery's eventTime is whatever the sender wrote: anyone holding the callback secret could date an
# event in 2150 and keep a member off the inactivity reports for good (lastSeenAt only moves forward).
# So a member's activity is never later than the time of receipt plus this allowance for clock skew
# between Miro and us; the stored event keeps the eventTime it was delivered with.
MAX_EVENT_TIME_SKEW = timedelta(minutes=5)
_MAX_REMEMBERED_MEMBERS = 4096


def _utc_now() -> datetime:
    return datetime.now(UTC)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def redact_path(path: str) -> str:
    """The callback path carries the secret: logs get its shape only."""
    if path == "/board-events" or path.startswith("/board-events/"):
        return "/board-events/<redacted>"
    return "<other path>"


class SubscriptionSource(Protocol):
    def get(self, secret_hash: str) -> SubscriptionRecord | None: ...


class BoardEventSink(Protocol):
    def put_once(self, record: BoardEventRecord) -> bool: ...


class MemberActivity(Protocol):
    def record_board_activity(self, member_id: str, at: datetime) -> bool: ...


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: dict[str, Any]
    # Short, secret-free label for logs and metrics.
    reason: str
    stored: bool = False


class SubscriptionCache:
    """Remembers lookups (found or not) for a few seconds so a burst of deliveries costs one GetItem.

    Hand-written rather than a dependency: a bounded dict with expiry is a dozen lines, and the layer
    stays small. Bounded, so random secrets from a scanner cannot grow it without limit."""

    def __init__(
        self,
        source: SubscriptionSource,
        *,
        ttl_seconds: float,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, SubscriptionRecord | None]] = OrderedDict()

    def get(self, secret_hash: str) -> SubscriptionRecord | None:
        now = self._clock()
        cached = self._entries.get(secret_hash)
        if cached is not None and cached[0] > now:
            return cached[1]
        record = self._source.get(secret_hash)
        if self._ttl > 0:
            self._entries[secret_hash] = (now + self._ttl, record)
            self._entries.move_to_end(secret_hash)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return record


def _validation_reason(error: ValidationError) -> str:
    # include_input=False: the reason goes back to the caller and into logs; echo no payload content.
    first = error.errors(include_url=False, include_input=False, include_context=False)[0]
    location = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{location}: {first['msg']}"[:200]


@dataclass
class WebhookReceiver:
    subscriptions: SubscriptionSource
    board_events: BoardEventSink
    members: MemberActivity
    max_body_bytes: int
    activity_granularity: timedelta = ACTIVITY_GRANULARITY
    # The time of receipt (timezone-aware); tests hand in a fixed clock.
    clock: Callable[[], datetime] = _utc_now
    max_event_time_skew: timedelta = MAX_EVENT_TIME_SKEW
    _recorded_activity: OrderedDict[str, datetime] = field(default_factory=OrderedDict, init=False)
    _unauthorized: Outcome = field(
        default=Outcome(401, {"message": "unknown or missing subscription secret"}, "unauthorized"),
        init=False,
    )

    def handle(self, secret: str | None, body: bytes | None) -> Outcome:
        """`body` is None when the transport could not decode it (bad base64)."""
        if body is not None and len(body) > self.max_body_bytes:
            return Outcome(413, {"message": f"body larger than {self.max_body_bytes} bytes"}, "too_large")
        subscription = self._authenticate(secret)
        if subscription is None:
            return self._unauthorized
        if body is None:
            return Outcome(400, {"message": "body is not valid base64"}, "bad_encoding")
        try:
            payload = from_json(body)
        except ValueError:
            return Outcome(400, {"message": "body is not valid JSON"}, "bad_json")
        if isinstance(payload, dict) and "challenge" in payload:
            return self._answer_challenge(payload)
        return self._store(subscription, payload)

    def _authenticate(self, secret: str | None) -> SubscriptionRecord | None:
        if not secret or len(secret) > MAX_SECRET_LENGTH:
            return None
        secret_hash = hash_secret(secret)
        record = self.subscriptions.get(secret_hash)
        if record is None or record.status not in ACCEPTING_STATUSES:
            return None
        # The lookup is by hash already; the explicit constant-time check keeps a store that returns
        # a near match (or a cache bug) from ever authenticating the wrong secret.
        if not hmac.compare_digest(record.secret_hash.encode(), secret_hash.encode()):
            return None
        return record

    @staticmethod
    def _answer_challenge(payload: dict[str, Any]) -> Outcome:
        try:
            challenge = Challenge.model_validate(payload)
        except ValidationError as error:
            return Outcome(400, {"message": _validation_reason(error)}, "bad_challenge")
        return Outcome(200, {"challenge": challenge.challenge}, "challenge")

    def _store(self, subscription: SubscriptionRecord, payload: object) -> Outcome:
        try:
            delivery = BoardEventDelivery.model_validate(payload)
        except ValidationError as error:
            return Outcome(400, {"message": _validation_reason(error)}, "bad_shape")
        change = delivery.event
        if change.board_id != subscription.board_id:
            return Outcome(404, {"message": "board is not covered by this subscription"}, "unknown_board")
        actor_id = change.actor_id
        stored = self.board_events.put_once(
            BoardEventRecord(
                board_id=change.board_id,
                event_time=delivery.event_time,
                item_id=change.item.id,
                item_type=change.item.type,
                event_type=change.type,
                actor_id=actor_id,
            )
        )
        # Refreshed on duplicates too: if the first delivery stored the event and then failed, Miro's
        # retry still updates the member. The update only moves the timestamp forward, so it is idempotent.
        if actor_id is not None:
            self._refresh_member(actor_id, self._activity_time(delivery.event_time))
        return Outcome(200, {"stored": stored}, "stored" if stored else "duplicate", stored=stored)

    def _activity_time(self, event_time: datetime) -> datetime:
        """When the member was last seen by this delivery: its eventTime, but never later than the time
        of receipt plus MAX_EVENT_TIME_SKEW (see there)."""
        return min(event_time, self.clock() + self.max_event_time_skew)

    def _refresh_member(self, member_id: str, at: datetime) -> None:
        recorded = self._recorded_activity.get(member_id)
        if recorded is not None and at - recorded < self.activity_granularity:
            return
        self.members.record_board_activity(member_id, at)
        # Only after the write succeeded: a failed write is retried by Miro's redelivery.
        self._recorded_activity[member_id] = max(at, recorded) if recorded is not None else at
        self._recorded_activity.move_to_end(member_id)
        while len(self._recorded_activity) > _MAX_REMEMBERED_MEMBERS:
            self._recorded_activity.popitem(last=False)
