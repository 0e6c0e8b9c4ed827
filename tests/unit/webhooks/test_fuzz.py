"""10,000 generated requests against the webhook's resolver (in-process, in-memory stores): a client
error is never a 5xx, never stores anything and never logs the secret."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from miro_sync.webhooks.endpoint import create_resolver
from miro_sync.webhooks.receiver import WebhookReceiver
from miro_sync_cli.local.function_url import function_url_event
from miro_sync_cli.local.invoke import LocalLambdaContext
from tests.unit.webhooks.fakes import (
    BOARD_ID,
    SECRET,
    CapturingHandler,
    FakeBoardEvents,
    FakeMembers,
    FakeSubscriptions,
    RecordingMetrics,
    board_event,
    subscription,
)

MAX_BODY = 4096

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated_events(draw: st.DrawFn) -> Any:
    """A valid delivery with one part replaced by something arbitrary (or left valid)."""
    payload = board_event(
        board_id=draw(st.sampled_from([BOARD_ID, BOARD_ID, "o9J_other=", ""])),
        item_id=draw(st.text(min_size=0, max_size=140) | st.just("3458764538974307111")),
        event_type=draw(st.sampled_from(["create", "update", "delete", "CREATE", ""])),
        event_time=draw(
            st.sampled_from(["2025-05-01T10:15:30.123Z", "2025-05-01T10:15:30", "0001-01-01T00:00:00Z", "x"])
            | st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat())
        ),
        actor=draw(st.none() | st.text(max_size=130)),
    )
    where = draw(st.sampled_from(["none", "root", "event", "item", "createdBy", "eventType"]))
    junk = draw(json_values)
    if where == "root":
        payload = junk
    elif where == "event":
        payload["event"] = junk
    elif where == "item":
        payload["event"]["item"] = junk
    elif where == "createdBy":
        payload["event"]["item"]["createdBy"] = junk
    elif where == "eventType":
        payload["eventType"] = junk
    return payload


bodies = st.one_of(
    mutated_events().map(lambda payload: json.dumps(payload).encode()),
    st.builds(lambda value: json.dumps({"challenge": value}).encode(), json_values),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.integers(min_value=MAX_BODY - 10, max_value=MAX_BODY + 4000).map(lambda size: b"[" * size),
)
paths = st.one_of(
    st.just(f"/board-events/{SECRET}"),
    st.just(f"/board-events/{SECRET}/"),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=60).map(lambda text: f"/board-events/{text}"),
    st.builds(
        lambda prefix, suffix: f"/board-events/{prefix}{SECRET}{suffix}",
        st.text(max_size=5),
        st.text(max_size=5),
    ),
    st.text(max_size=60),
    st.sampled_from(["/", "/board-events", "/board-events/", "/board-events//x"]),
)
methods = st.sampled_from(
    ["POST", "POST", "POST", "GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"]
)
headers = st.dictionaries(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20),
    st.text(max_size=40) | st.just(SECRET),
    max_size=5,
)


@pytest.fixture(scope="module")
def log_capture() -> Iterator[CapturingHandler]:
    capture = CapturingHandler()
    capture.setLevel(logging.DEBUG)
    watched = [logging.getLogger(), logging.getLogger("aws_lambda_powertools")]
    saved = [(logger, logger.level) for logger in watched]
    for logger in watched:
        logger.addHandler(capture)
        logger.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        for logger, level in saved:
            logger.removeHandler(capture)
            logger.setLevel(level)


class CurrentReceiver:
    """One resolver for all examples (as in a warm container); each example swaps in fresh stores."""

    def __init__(self) -> None:
        self.receiver: WebhookReceiver | None = None

    def __call__(self) -> WebhookReceiver:
        assert self.receiver is not None
        return self.receiver


@pytest.fixture(scope="module")
def current() -> CurrentReceiver:
    return CurrentReceiver()


@pytest.fixture(scope="module")
def resolver(log_capture: CapturingHandler, current: CurrentReceiver) -> LambdaFunctionUrlResolver:
    logger = Logger(service="board-webhook-fuzz", level="DEBUG", logger_handler=log_capture)
    return create_resolver(current, logger=logger, metrics=RecordingMetrics())


@settings(
    max_examples=10_000,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(method=methods, path=paths, body=bodies, request_headers=headers, as_base64=st.booleans())
def test_no_client_error_is_a_5xx_stores_anything_or_leaks_the_secret(
    log_capture: CapturingHandler,
    current: CurrentReceiver,
    resolver: LambdaFunctionUrlResolver,
    method: str,
    path: str,
    body: bytes,
    request_headers: dict[str, str],
    as_base64: bool,
) -> None:
    subscriptions = FakeSubscriptions()
    subscriptions.add(subscription())
    events, members = FakeBoardEvents(), FakeMembers()
    current.receiver = WebhookReceiver(subscriptions, events, members, max_body_bytes=MAX_BODY)
    event = function_url_event(method, path, body=body, headers=request_headers)
    if as_base64 and body:
        event.update(body=base64.b64encode(body).decode(), isBase64Encoded=True)
    lines_before = len(log_capture.lines)

    response = resolver.resolve(event, LocalLambdaContext("BoardWebhookFunction", 256, 10))

    status = response["statusCode"]
    assert 200 <= status < 500
    assert isinstance(json.loads(response["body"]), dict)
    if status != 200:
        assert not events.items
        assert not members.calls
    else:
        assert all(stored.board_id == BOARD_ID for stored in events.items.values())
    assert not any(SECRET in line for line in log_capture.lines[lines_before:])
    # Every request leaves one log line of ours, so the check above is looking at real output.
    assert len(log_capture.lines) > lines_before
