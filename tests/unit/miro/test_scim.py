"""MiroScimClient against a scripted httpx.MockTransport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from miro_sync.miro import MiroAuthError, MiroConflict, MiroNotFound, MiroProtocolError, MiroScimClient
from miro_sync.miro.pacing import WindowPacer
from miro_sync.miro.scim import scim_string
from tests.unit.miro.fakes import FakeTime, ScriptedMiro, json_response

BASE = "https://scim.miro.test/api/v1/scim"
SCIM_TOKEN = "scim-secret-token-value"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def scim_user(index: int, *, active: bool = True) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": f"scim-{index}",
        "userName": f"User{index}@Example.com",
        "active": active,
    }


def listing(indices: range, total: int, start: int) -> httpx.Response:
    users = [scim_user(i) for i in indices]
    return json_response(
        200,
        {
            "schemas": [LIST],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": len(users),
            "Resources": users,
        },
    )


def scim_error(status: int, detail: str, scim_type: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"schemas": [ERROR], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return json_response(status, body)


def make_client(miro: ScriptedMiro, fake_time: FakeTime, **kwargs: Any) -> MiroScimClient:
    return MiroScimClient(
        BASE,
        SCIM_TOKEN,
        http=miro.client(),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        rate_limit_jitter=0.0,
        **kwargs,
    )


def test_find_user_by_username_sends_an_escaped_filter_and_matches_case_insensitively() -> None:
    miro = ScriptedMiro([listing(range(3, 4), 1, 1)])
    user = make_client(miro, FakeTime()).find_user_by_username("user3@example.com")
    assert user is not None
    assert user.id == "scim-3"
    request = miro.requests[0]
    assert request.url.path == "/api/v1/scim/Users"
    assert request.url.params["filter"] == 'userName eq "user3@example.com"'
    assert request.headers["Authorization"] == f"Bearer {SCIM_TOKEN}"


def test_find_user_by_username_returns_none_when_absent() -> None:
    miro = ScriptedMiro([listing(range(0, 0), 0, 1)])
    assert make_client(miro, FakeTime()).find_user_by_username("guest@example.com") is None


def test_filter_strings_are_escaped() -> None:
    assert scim_string('a"b\\c') == '"a\\"b\\\\c"'


def test_iter_users_pages_by_start_index_until_total() -> None:
    miro = ScriptedMiro([listing(range(0, 2), 5, 1), listing(range(2, 4), 5, 3), listing(range(4, 5), 5, 5)])
    users = list(make_client(miro, FakeTime()).iter_users(count=2))
    assert [u.id for u in users] == [f"scim-{i}" for i in range(5)]
    assert [r.url.params["startIndex"] for r in miro.requests] == ["1", "3", "5"]
    assert {r.url.params["count"] for r in miro.requests} == {"2"}


def test_user_pages_can_start_at_a_later_index_for_concurrent_paging() -> None:
    miro = ScriptedMiro([listing(range(2, 4), 5, 3), listing(range(4, 5), 5, 5)])
    pages = list(make_client(miro, FakeTime()).iter_user_pages(count=2, start_index=3))
    assert [u.id for page in pages for u in page.resources] == ["scim-2", "scim-3", "scim-4"]
    assert [r.url.params["startIndex"] for r in miro.requests] == ["3", "5"]


def test_window_pacer_counts_every_request_sent_from_several_threads() -> None:
    import threading

    pacer = WindowPacer({"GET": 1000}, window_s=30.0, headroom_fraction=0.0)

    def send() -> None:
        for _ in range(200):
            pacer.wait_before("GET", 0, 1.0)
            pacer.record_sent("GET", 1.0)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 800 of 1000 allowed sent: the 201st free slot is still open, the window is not over-counted.
    assert pacer.wait_before("GET", 0, 1.0) == 0.0
    for _ in range(200):
        pacer.record_sent("GET", 1.0)
    assert pacer.wait_before("GET", 0, 1.0) == pytest.approx(30.0)


def test_listing_that_stops_short_of_total_results_raises() -> None:
    miro = ScriptedMiro([listing(range(0, 2), 5, 1), listing(range(0, 0), 5, 3)])
    with pytest.raises(MiroProtocolError, match="totalResults=5"):
        list(make_client(miro, FakeTime()).iter_users(count=2))


def test_set_active_sends_a_patch_op() -> None:
    miro = ScriptedMiro([json_response(200, scim_user(7, active=False))])
    user = make_client(miro, FakeTime()).set_active("scim-7", False)
    assert user.active is False
    request = miro.requests[0]
    assert (request.method, request.url.path) == ("PATCH", "/api/v1/scim/Users/scim-7")
    assert json.loads(request.content) == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": False}],
    }


def test_last_admin_conflict_carries_scim_detail() -> None:
    miro = ScriptedMiro([scim_error(409, "Cannot deactivate the last admin", "mutability")])
    with pytest.raises(MiroConflict) as caught:
        make_client(miro, FakeTime()).set_active("scim-1", False)
    assert caught.value.code == "mutability"
    assert "last admin" in str(caught.value)


def test_delete_user_and_guest_not_found() -> None:
    miro = ScriptedMiro([httpx.Response(204), scim_error(404, "User not found")])
    client = make_client(miro, FakeTime())
    client.delete_user("scim-1")
    with pytest.raises(MiroNotFound):
        client.delete_user("guest-1")
    assert [r.method for r in miro.requests] == ["DELETE", "DELETE"]


def test_delete_whose_first_answer_was_lost_counts_as_done() -> None:
    # The first DELETE reached Miro but the response timed out; the retry then sees 404.
    miro = ScriptedMiro([httpx.ReadTimeout("timed out"), scim_error(404, "User not found")])
    make_client(miro, FakeTime()).delete_user("scim-1")
    assert len(miro.requests) == 2


def test_deletes_are_paced_to_the_scim_window() -> None:
    fake_time = FakeTime()
    miro = ScriptedMiro([httpx.Response(204) for _ in range(3)])
    client = make_client(
        miro, fake_time, pacer=WindowPacer({"DELETE": 2}, window_s=30.0, headroom_fraction=0.0)
    )
    for index in range(3):
        client.delete_user(f"scim-{index}")
    assert fake_time.sleeps == [pytest.approx(30.0)]
    assert client.stats.paced_seconds == pytest.approx(30.0)


def test_scim_429_waits_then_succeeds() -> None:
    fake_time = FakeTime()
    miro = ScriptedMiro(
        [json_response(429, {"detail": "Too many requests"}, {"Retry-After": "4"}), httpx.Response(204)]
    )
    client = make_client(miro, fake_time)
    client.delete_user("scim-1")
    assert fake_time.sleeps == [4.0]
    assert client.stats.http_429 == 1


def test_scim_token_never_in_errors_or_reprs() -> None:
    miro = ScriptedMiro([scim_error(401, f"bad token {SCIM_TOKEN}")])
    client = make_client(miro, FakeTime())
    with pytest.raises(MiroAuthError) as caught:
        client.get_user("scim-1")
    assert SCIM_TOKEN not in str(caught.value)
    assert SCIM_TOKEN not in repr(client)
