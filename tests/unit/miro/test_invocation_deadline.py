"""No Miro attempt (or wait before one) starts that could not finish before the Lambda times out: the
caller hears MiroDeadlineExceeded at once, and nothing reached Miro."""

from __future__ import annotations

import pytest

from miro_sync.miro import MiroScimClient
from miro_sync.miro.deadline import InvocationDeadline
from miro_sync.miro.errors import MiroDeadlineExceeded, MiroUnavailable
from tests.unit.miro.fakes import FakeTime, ScriptedMiro, json_response

BASE = "https://scim.miro.test/api/v1/scim"
USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "id": "s1",
    "userName": "a@b.co",
    "active": True,
}
# the least an attempt starts with, plus the margin kept for recording the outcome
NEEDED_MS = int((InvocationDeadline.MIN_ATTEMPT_S + InvocationDeadline.MARGIN_S) * 1000)


def client(miro: ScriptedMiro, deadline: InvocationDeadline) -> MiroScimClient:
    fake_time = FakeTime()
    return MiroScimClient(
        BASE, "token", http=miro.client(), sleep=fake_time.sleep, clock=fake_time.clock, deadline=deadline
    )


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
    deadline = InvocationDeadline()
    # plenty of time for the first attempt; once it has been answered, too little for another
    deadline.bind(lambda: 60_000 if not miro.requests else NEEDED_MS - 1)
    with pytest.raises(MiroDeadlineExceeded) as raised:
        client(miro, deadline).get_user("s1")
    assert isinstance(raised.value, MiroUnavailable)  # transient for every caller: retried later
    assert len(miro.requests) == 1


def test_an_attempt_gets_timeouts_cut_to_the_time_left() -> None:
    miro = ScriptedMiro([json_response(200, USER)])
    deadline = InvocationDeadline()
    deadline.bind(lambda: 12_000)  # 10 s usable after the margin
    client(miro, deadline).get_user("s1")
    timeouts = miro.requests[0].extensions["timeout"]
    assert timeouts["connect"] <= 5.0
    assert timeouts["connect"] + timeouts["read"] <= 10.0 + 1e-9


def test_unbound_it_never_stops_a_call() -> None:
    miro = ScriptedMiro([json_response(200, USER)])
    deadline = InvocationDeadline()
    deadline.bind(lambda: 1)
    deadline.unbind()
    assert client(miro, deadline).get_user("s1").id == "s1"
