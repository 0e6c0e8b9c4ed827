from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver

from miro_sync.webhooks.endpoint import create_resolver
from miro_sync.webhooks.receiver import WebhookReceiver
from miro_sync_cli.local.function_url import function_url_event
from miro_sync_cli.local.invoke import LocalLambdaContext
from tests.unit.webhooks.fakes import (
    SECRET,
    FakeBoardEvents,
    FakeMembers,
    FakeSubscriptions,
    RecordingMetrics,
    board_event,
    subscription,
)


class Endpoint:
    def __init__(self, max_body_bytes: int = 8192) -> None:
        self.subscriptions = FakeSubscriptions()
        self.subscriptions.add(subscription())
        self.events = FakeBoardEvents()
        self.members = FakeMembers()
        self.metrics = RecordingMetrics()
        receiver = WebhookReceiver(
            self.subscriptions, self.events, self.members, max_body_bytes=max_body_bytes
        )
        import logging

        self.resolver: LambdaFunctionUrlResolver = create_resolver(
            lambda: receiver, logger=logging.getLogger("test.webhook"), metrics=self.metrics
        )

    def call(
        self, method: str, path: str, body: bytes = b"", content_type: str = "application/json"
    ) -> dict[str, Any]:
        event = function_url_event(method, path, body=body, headers={"Content-Type": content_type})
        return self.resolver.resolve(event, LocalLambdaContext("BoardWebhookFunction", 256, 10))


@pytest.fixture
def endpoint() -> Endpoint:
    return Endpoint()


def test_challenge_answer_is_json(endpoint: Endpoint) -> None:
    response = endpoint.call("POST", f"/board-events/{SECRET}", json.dumps({"challenge": "c-1"}).encode())

    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "application/json"
    assert json.loads(response["body"]) == {"challenge": "c-1"}


def test_delivery_is_stored(endpoint: Endpoint) -> None:
    response = endpoint.call("POST", f"/board-events/{SECRET}", json.dumps(board_event()).encode())

    assert response["statusCode"] == 200
    assert len(endpoint.events.items) == 1
    assert endpoint.metrics.names == ["Webhook_stored"]


def test_base64_body_is_decoded(endpoint: Endpoint) -> None:
    raw = json.dumps(board_event()).encode()
    event = function_url_event(
        "POST", f"/board-events/{SECRET}", body=raw, headers={"Content-Type": "x/binary"}
    )
    assert event["isBase64Encoded"]

    response = endpoint.resolver.resolve(event, LocalLambdaContext("f", 256, 10))

    assert response["statusCode"] == 200
    assert len(endpoint.events.items) == 1


def test_invalid_base64_is_400(endpoint: Endpoint) -> None:
    event = function_url_event("POST", f"/board-events/{SECRET}", body=b"x")
    event.update(body="!!!not base64", isBase64Encoded=True)

    assert endpoint.resolver.resolve(event, LocalLambdaContext("f", 256, 10))["statusCode"] == 400


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", f"/board-events/{SECRET}", 405),
        ("DELETE", f"/board-events/{SECRET}", 405),
        ("GET", "/board-events", 405),
        ("POST", "/board-events", 401),
        ("POST", "/board-events/", 401),
        ("POST", "/board-events/a/b", 401),
        ("POST", "/board-events/wrong", 401),
        ("POST", "/", 404),
        ("POST", "/other", 404),
    ],
)
def test_routing_errors(endpoint: Endpoint, method: str, path: str, status: int) -> None:
    response = endpoint.call(method, path, json.dumps(board_event()).encode())

    assert response["statusCode"] == status
    assert "message" in json.loads(response["body"])
    assert not endpoint.events.items


def test_over_the_cap_is_413_even_base64() -> None:
    endpoint = Endpoint(max_body_bytes=2048)
    event = function_url_event("POST", f"/board-events/{SECRET}", body=b"{" + b" " * 100_000 + b"}")
    event.update(body=base64.b64encode(b" " * 100_000).decode(), isBase64Encoded=True)

    assert endpoint.resolver.resolve(event, LocalLambdaContext("f", 256, 10))["statusCode"] == 413


def test_store_failure_is_500_and_logs_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    endpoint = Endpoint()

    def broken(record: object) -> bool:
        raise RuntimeError("table unavailable")

    endpoint.events.put_once = broken  # type: ignore[method-assign]
    with caplog.at_level("DEBUG"):
        response = endpoint.call("POST", f"/board-events/{SECRET}", json.dumps(board_event()).encode())

    assert response["statusCode"] == 500
    assert "board webhook failed" in caplog.text
    assert SECRET not in caplog.text
