"""No Miro attempt (or wait before one) starts that could not finish before the Lambda times out: the
caller hears MiroDeadlineExceeded at once, and nothing reached Miro."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from miro_sync.miro import MiroScimClient
from miro_sync.miro.errors import MiroDeadlineExceeded, MiroUnavailable
from miro_sync.miro.http import InvocationDeadline
from tests.unit.miro.fakes import FakeTime, ScriptedMiro, json_response

BASE = "https://scim.miro.test/api/v1/scim"
USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "id": "s1",
    "userName": "a@b.co",
    "active": True,
}
# httpx.Client() defaults: connect 5 s + read 5 s per attempt, and the deadline keeps a 3 s margin
NEEDED_MS = 13_000


def client(miro: ScriptedMiro, deadline: InvocationDeadline) -> MiroScimClient:
    fake_time = FakeTime()
    return MiroScimClient(
        BASE, "token", http=miro.client(), sleep=fake_time.sleep, clock=fake_time.clock, deadline=deadline
    )


def remaining(*values_ms: int) -> Iterator[int]:
    yield from values_ms
    while True:
        yield values_ms[-1]


def test_an_attempt_that_cannot_finish_in_time_is_not_started() -> None:
    miro = ScriptedMiro([json_response(200, USER)])
    deadline = InvocationDeadline()
    deadline.bind(lambda: NEEDED_MS - 500)
    with pytest.raises(MiroDeadlineExceeded, match="not started"):
        client(miro, deadline).get_user("s1")
    assert miro.requests == []


def test_an_attempt_that_fits_is_sent() -> None:
    miro = ScriptedMiro([json_response(200, USER)])
    deadline = InvocationDeadline()
    deadline.bind(lambda: NEEDED_MS + 500)
    assert client(miro, deadline).get_user("s1").id == "s1"
    assert len(miro.requests) == 1


def test_a_retry_that_cannot_finish_in_time_is_not_waited_for() -> None:
    miro = ScriptedMiro([json_response(503, {"status": "503"}), json_response(200, USER)])
    left = remaining(60_000, 5_000)
    deadline = InvocationDeadline()
    deadline.bind(lambda: next(left))
    with pytest.raises(MiroDeadlineExceeded) as raised:
        client(miro, deadline).get_user("s1")
    assert isinstance(raised.value, MiroUnavailable)  # transient for every caller: retried later
    assert len(miro.requests) == 1


def test_unbound_it_never_stops_a_call() -> None:
    miro = ScriptedMiro([json_response(200, USER)])
    deadline = InvocationDeadline()
    deadline.bind(lambda: 1)
    deadline.unbind()
    assert client(miro, deadline).get_user("s1").id == "s1"
