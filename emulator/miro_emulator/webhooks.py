"""Board subscriptions: the challenge handshake and the background delivery of board events."""

from __future__ import annotations

import json
import queue
import secrets
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from miro_emulator.config import iso_ms

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass
class Delivery:
    subscription_id: str
    board_id: str
    item_id: str
    event_type: str
    callback_url: str
    payload: dict[str, Any]
    status_code: int | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "subscriptionId": self.subscription_id,
            "boardId": self.board_id,
            "itemId": self.item_id,
            "type": self.event_type,
            "callbackUrl": _redact(self.callback_url),
            "statusCode": self.status_code,
            "error": self.error,
            "payload": self.payload,
        }


def _redact(url: str) -> str:
    """Callback URLs carry the per-subscription secret in their path; introspection shows only the host."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…"


def callback_url_problem(url: Any, allow_http_loopback: bool) -> str | None:
    if not isinstance(url, str) or not 8 <= len(url) <= 256:
        return "callbackUrl must be a string of 8 to 256 characters"
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.netloc:
        return None
    if allow_http_loopback and parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return None
    return "callbackUrl must match ^https:\\/\\/(.*)"


def verify_callback(url: str, timeout_s: float) -> str | None:
    """Miro's handshake: POST {"challenge": ...}; the callback must answer JSON echoing it. None = passed."""
    challenge = secrets.token_hex(16)
    try:
        response = httpx.post(url, json={"challenge": challenge}, timeout=timeout_s)
    except httpx.HTTPError as error:
        return f"Callback URL is not reachable: {type(error).__name__}"
    if response.status_code != 200:
        return f"Callback URL answered the challenge with HTTP {response.status_code}"
    try:
        answer = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "Callback URL did not answer the challenge with JSON"
    if not isinstance(answer, dict) or answer.get("challenge") != challenge:
        return "Callback URL did not echo the challenge"
    return None


def board_event(
    *, app_id: str, board_id: str, event_type: str, item: dict[str, Any], actor_id: str, event_ms: int
) -> dict[str, Any]:
    return {
        "eventType": "board_subscription",
        "eventTime": iso_ms(event_ms),
        "appId": app_id,
        "users": [{"id": actor_id, "type": "user"}],
        "event": {"boardId": board_id, "type": event_type, "item": item},
    }


class DeliveryWorker:
    """One daemon thread posting queued deliveries in order; `stop()` drains nothing and returns fast."""

    def __init__(self, timeout_s: float) -> None:
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._timeout_s = timeout_s
        self._delivered: list[Delivery] = []
        self._condition = threading.Condition()
        self._pending = 0
        self._client = httpx.Client(timeout=timeout_s)
        self._thread = threading.Thread(target=self._run, name="miro-emulator-deliveries", daemon=True)
        self._thread.start()

    def submit(self, delivery: Delivery) -> None:
        with self._condition:
            self._pending += 1
        self._queue.put(delivery)

    def delivered(self) -> list[Delivery]:
        with self._condition:
            return list(self._delivered)

    def pending(self) -> int:
        with self._condition:
            return self._pending

    def wait(self, count: int, timeout_s: float) -> bool:
        """Block until `count` deliveries are done (or the timeout passes); True when reached."""
        with self._condition:
            return self._condition.wait_for(lambda: len(self._delivered) >= count, timeout=timeout_s)

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=self._timeout_s + 1)
        self._client.close()

    def _run(self) -> None:
        while True:
            delivery = self._queue.get()
            if delivery is None:
                return
            try:
                response = self._client.post(delivery.callback_url, json=delivery.payload)
                delivery.status_code = response.status_code
            except httpx.HTTPError as error:
                delivery.error = type(error).__name__
            with self._condition:
                self._pending -= 1
                self._delivered.append(delivery)
                self._condition.notify_all()
