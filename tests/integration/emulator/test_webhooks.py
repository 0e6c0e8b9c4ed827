"""Board subscriptions: the challenge handshake and deliveries to a real callback server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from miro_emulator import RunningEmulator
from tests.fixtures.emulator import MiroSpec
from tests.integration.emulator.conftest_helpers import rest

pytestmark = pytest.mark.integration


class Callback:
    """A tiny webhook receiver on 127.0.0.1: echoes challenges (unless told not to) and records events."""

    def __init__(self) -> None:
        self.echo = True
        self.events: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if "challenge" in body:
                    answer = {"challenge": body["challenge"] if receiver.echo else "wrong"}
                else:
                    receiver.events.append(body)
                    answer = {}
                payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/board-events/s3cret"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def callback() -> Iterator[Callback]:
    receiver = Callback()
    yield receiver
    receiver.close()


def subscribe(emulator: RunningEmulator, board_id: str, url: str) -> Any:
    with rest(emulator) as client:
        return client.post(
            "/v2-experimental/webhooks/board_subscriptions", json={"boardId": board_id, "callbackUrl": url}
        )


def test_subscription_needs_the_challenge_echo(
    emulator: RunningEmulator, callback: Callback, miro_spec: MiroSpec
) -> None:
    board_id = emulator.state.boards[0].id
    callback.echo = False
    refused = subscribe(emulator, board_id, callback.url)
    assert refused.status_code == 400
    miro_spec.validate("create-board-subscription", 400, refused.json())
    assert emulator.state.subscriptions == {}
    callback.echo = True
    created = subscribe(emulator, board_id, callback.url)
    assert created.status_code == 201
    miro_spec.validate("create-board-subscription", 201, created.json())
    assert created.json()["data"]["boardId"] == board_id
    assert created.json()["status"] == "enabled"


@pytest.mark.parametrize("url", ["http://example.com/hook", "ftp://127.0.0.1/x", "short"])
def test_callback_url_must_be_https(emulator: RunningEmulator, url: str, miro_spec: MiroSpec) -> None:
    response = subscribe(emulator, emulator.state.boards[0].id, url)
    assert response.status_code == 400
    miro_spec.validate("create-board-subscription", 400, response.json())


def test_unknown_board_is_404(emulator: RunningEmulator, callback: Callback, miro_spec: MiroSpec) -> None:
    response = subscribe(emulator, "uXjVnope=", callback.url)
    assert response.status_code == 404
    miro_spec.validate("create-board-subscription", 404, response.json())


def test_item_changes_are_delivered_as_board_events(emulator: RunningEmulator, callback: Callback) -> None:
    board = emulator.state.boards[1]
    actor = emulator.state.all_members[board.owner_index]
    assert subscribe(emulator, board.id, callback.url).status_code == 201
    with rest(emulator) as client:
        created = client.post(f"/_emulator/boards/{board.id}/items", json={"data": {"content": "hi"}}).json()
        item_id = created["item"]["id"]
        client.patch(f"/_emulator/boards/{board.id}/items/{item_id}", json={"data": {"content": "bye"}})
        client.delete(f"/_emulator/boards/{board.id}/items/{item_id}")
    assert emulator.wait_for_deliveries(3, timeout_s=10)
    assert [event["event"]["type"] for event in callback.events] == ["create", "update", "delete"]
    first = callback.events[0]
    assert first["eventType"] == "board_subscription"
    assert first["event"]["boardId"] == board.id
    assert first["event"]["item"]["id"] == item_id
    assert first["event"]["item"]["createdBy"]["id"] == actor.id
    assert callback.events[1]["event"]["item"]["data"]["content"] == "bye"
    with rest(emulator) as client:
        deliveries = client.get("/_emulator/deliveries").json()
    assert [d["statusCode"] for d in deliveries["data"]] == [200, 200, 200]
    assert "s3cret" not in json.dumps(deliveries["data"][0]["callbackUrl"])


def test_disabled_and_lost_access_subscriptions_get_nothing(
    emulator: RunningEmulator, callback: Callback, miro_spec: MiroSpec
) -> None:
    board = emulator.state.boards[2]
    subscription = subscribe(emulator, board.id, callback.url).json()
    with rest(emulator) as client:
        disabled = client.patch(
            f"/v2-experimental/webhooks/board_subscriptions/{subscription['id']}", json={"status": "disabled"}
        )
        miro_spec.validate("update-board-subscription", 200, disabled.json())
        queued = client.post(f"/_emulator/boards/{board.id}/items", json={}).json()["deliveriesQueued"]
        assert queued == 0
        assert client.delete(f"/_emulator/boards/{board.id}").status_code == 204
        fetched = client.get(f"/v2-experimental/webhooks/subscriptions/{subscription['id']}")
        miro_spec.validate("get-subscription-by-id", 200, fetched.json())
        assert fetched.json()["status"] == "lost_access"
        listing = client.get("/v2-experimental/webhooks/subscriptions")
        miro_spec.validate("get-user-subscriptions", 200, listing.json())
        assert (
            client.delete(f"/v2-experimental/webhooks/subscriptions/{subscription['id']}").status_code == 204
        )
        missing = client.get(f"/v2-experimental/webhooks/subscriptions/{subscription['id']}")
        assert missing.status_code == 404
        miro_spec.validate("get-subscription-by-id", 404, missing.json())
