"""MiroRestClient against a scripted httpx.MockTransport (fake transport handed in)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from miro_sync.miro import (
    MiroAuthError,
    MiroBadRequest,
    MiroConflict,
    MiroNotFound,
    MiroProtocolError,
    MiroRateLimited,
    MiroRestClient,
    MiroUnavailable,
    format_miro_time,
)
from miro_sync.miro.pacing import RateLimitPacer
from tests.unit.miro.fakes import FakeTime, ScriptedMiro, json_response, member, members_page

BASE = "https://api.miro.test"
TOKEN = "eyJtaXJvIjoic2VjcmV0LXRva2VuIn0"


def make_client(
    miro: ScriptedMiro, fake_time: FakeTime, *, token: object = TOKEN, max_attempts: int = 6
) -> MiroRestClient:
    return MiroRestClient(
        BASE,
        token,  # type: ignore[arg-type]
        "org-1",
        http=miro.client(),
        max_attempts=max_attempts,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        rate_limit_jitter=0.0,
    )


def ok_page(indices: range, cursor: str | None) -> httpx.Response:
    return json_response(200, members_page(indices, cursor))


# --- pagination -----------------------------------------------------------------------------------


def test_member_pages_follow_the_cursor_and_send_auth_and_filters() -> None:
    miro = ScriptedMiro([ok_page(range(0, 2), "c1"), ok_page(range(2, 4), "c2"), ok_page(range(4, 5), "")])
    client = make_client(miro, FakeTime())
    pages = list(client.iter_member_pages(limit=2, license="full", active=True))
    assert [len(p.data) for p in pages] == [2, 2, 1]
    assert [p.next_cursor for p in pages] == ["c1", "c2", None]
    assert pages[0].data[0].email == "user0@example.com"
    first, second, _ = miro.requests
    assert first.url.path == "/v2/orgs/org-1/members"
    assert dict(first.url.params) == {"limit": "2", "license": "full", "active": "true"}
    assert "cursor" not in first.url.params
    assert second.url.params["cursor"] == "c1"
    assert first.headers["Authorization"] == f"Bearer {TOKEN}"
    assert client.stats.requests == 3


def test_member_pages_resume_from_a_checkpointed_cursor() -> None:
    miro = ScriptedMiro([ok_page(range(4, 5), None)])
    pages = list(make_client(miro, FakeTime()).iter_member_pages(cursor="c2"))
    assert len(pages) == 1
    assert miro.requests[0].url.params["cursor"] == "c2"


def test_unknown_member_filter_is_rejected_before_any_request() -> None:
    miro = ScriptedMiro([])
    with pytest.raises(ValueError, match="unknown member filters"):
        list(make_client(miro, FakeTime()).iter_member_pages(colour="blue"))
    assert miro.requests == []


def test_repeated_cursor_raises_instead_of_looping() -> None:
    miro = ScriptedMiro([ok_page(range(0, 2), "c1"), ok_page(range(2, 4), "c2"), ok_page(range(0, 2), "c1")])
    pages = make_client(miro, FakeTime()).iter_member_pages(limit=2)
    assert next(pages).next_cursor == "c1"
    assert next(pages).next_cursor == "c2"
    with pytest.raises(MiroProtocolError, match="twice"):
        next(pages)


def test_cursor_equal_to_the_one_just_sent_is_a_loop() -> None:
    miro = ScriptedMiro([ok_page(range(0, 2), "same")])
    with pytest.raises(MiroProtocolError):
        list(make_client(miro, FakeTime()).iter_member_pages(cursor="same"))


def test_find_members_by_email_chunks_by_ten_and_dedupes() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        emails = request.url.params["emails"].split(",")
        return json_response(
            200, [member(int(e[4:].split("@")[0])) for e in emails if e != "ghost@example.com"]
        )

    emails = [f"user{i}@example.com" for i in range(23)] + ["user0@example.com", " ", "ghost@example.com"]
    miro = ScriptedMiro([answer, answer, answer])
    found = make_client(miro, FakeTime()).find_members_by_email(emails)
    assert len(found) == 23
    assert [len(r.url.params["emails"].split(",")) for r in miro.requests] == [10, 10, 4]


def test_board_pages_use_offsets_until_total() -> None:
    def boards(offset: int, count: int, total: int) -> httpx.Response:
        data = [{"id": f"b{offset + i}", "name": "x", "owner": {"id": "u1"}} for i in range(count)]
        return json_response(200, {"data": data, "total": total, "offset": offset, "limit": 2, "size": count})

    miro = ScriptedMiro([boards(0, 2, 5), boards(2, 2, 5), boards(4, 1, 5)])
    pages = list(make_client(miro, FakeTime()).iter_board_pages(owner="u1", limit=2))
    assert [b.id for p in pages for b in p.data] == ["b0", "b1", "b2", "b3", "b4"]
    assert [r.url.params["offset"] for r in miro.requests] == ["0", "2", "4"]
    assert miro.requests[0].url.params["owner"] == "u1"


def test_board_listing_that_ends_before_total_is_a_protocol_error() -> None:
    miro = ScriptedMiro([json_response(200, {"data": [], "total": 5, "offset": 0, "limit": 2, "size": 0})])
    with pytest.raises(MiroProtocolError, match="total=5"):
        list(make_client(miro, FakeTime()).iter_board_pages())


def test_audit_pages_send_millisecond_utc_times() -> None:
    page = {
        "type": "cursor-list",
        "limit": 100,
        "size": 1,
        "cursor": None,
        "data": [
            {
                "id": "ev1",
                "createdAt": "2024-05-01T10:00:00.123Z",
                "event": "sign_in_succeeded",
                "category": "authentication",
                "context": {"ip": "10.0.0.1", "team": {"id": "t1", "name": "T"}},
                "object": {"id": "o1", "name": "n"},
                "createdBy": {"type": "user", "id": "u1", "name": "U", "email": "u@example.com"},
                "details": {"authenticationType": "SSO"},
                "brandNewField": 1,
            }
        ],
    }
    miro = ScriptedMiro([json_response(200, page)])
    after = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    pages = list(
        make_client(miro, FakeTime()).iter_audit_pages(
            after, datetime(2024, 5, 2, tzinfo=UTC), sorting="DESC"
        )
    )
    params = miro.requests[0].url.params
    assert params["createdAfter"] == "2024-05-01T10:00:00.123Z"
    assert params["createdBefore"] == "2024-05-02T00:00:00.000Z"
    assert params["sorting"] == "DESC"
    event = pages[0].data[0]  # events come as received (validated per event by the audit sync)
    assert event["details"] == {"authenticationType": "SSO"}
    assert event["brandNewField"] == 1


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_miro_time(datetime(2024, 1, 1))


def test_board_subscription_calls_use_the_documented_paths() -> None:
    sub = {
        "id": "s1",
        "type": "board_subscription",
        "status": "enabled",
        "callbackUrl": "https://hook.example/board-events/abc",
        "data": {"boardId": "uXjV="},
        "createdAt": "2024-01-01T00:00:00.000Z",
        "modifiedAt": "2024-01-01T00:00:00.000Z",
    }
    listing = {"data": [sub], "size": 1, "limit": 100, "total": 1}
    miro = ScriptedMiro(
        [
            json_response(201, sub),
            json_response(200, sub),
            json_response(200, {**sub, "status": "disabled"}),
            httpx.Response(204),
            json_response(200, listing),
        ]
    )
    client = make_client(miro, FakeTime())
    created = client.create_board_subscription("uXjV=", "https://hook.example/board-events/abc")
    assert created.data is not None
    assert created.data.board_id == "uXjV="
    assert client.get_board_subscription("s1").status == "enabled"
    assert client.update_board_subscription("s1", status="disabled").status == "disabled"
    client.delete_board_subscription("s1")
    assert [s.id for s in client.iter_subscriptions()] == ["s1"]
    calls = [(r.method, r.url.path) for r in miro.requests]
    assert calls == [
        ("POST", "/v2-experimental/webhooks/board_subscriptions"),
        ("GET", "/v2-experimental/webhooks/subscriptions/s1"),
        ("PATCH", "/v2-experimental/webhooks/board_subscriptions/s1"),
        ("DELETE", "/v2-experimental/webhooks/subscriptions/s1"),
        ("GET", "/v2-experimental/webhooks/subscriptions"),
    ]
    assert json.loads(miro.requests[0].content) == {
        "boardId": "uXjV=",
        "callbackUrl": "https://hook.example/board-events/abc",
        "status": "enabled",
    }
    assert json.loads(miro.requests[2].content) == {"status": "disabled"}


# --- rate limits ----------------------------------------------------------------------------------


def test_429_with_retry_after_waits_exactly_that_long() -> None:
    fake_time = FakeTime()
    miro = ScriptedMiro(
        [
            json_response(
                429, {"status": 429, "code": "tooManyRequests", "message": "slow down"}, {"Retry-After": "7"}
            ),
            ok_page(range(0, 1), None),
        ]
    )
    client = make_client(miro, fake_time)
    pages = list(client.iter_member_pages())
    assert len(pages) == 1
    assert fake_time.sleeps == [7.0]
    assert (client.stats.http_429, client.stats.retries, client.stats.requests) == (1, 1, 2)


def test_429_without_retry_after_waits_until_reset() -> None:
    fake_time = FakeTime()
    reset = int(fake_time.now) + 42
    limits = {"X-RateLimit-Limit": "100000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
    miro = ScriptedMiro(
        [
            json_response(429, {"status": 429, "code": "tooManyRequests", "message": "slow down"}, limits),
            ok_page(range(0, 1), None),
        ]
    )
    list(make_client(miro, fake_time).iter_member_pages())
    assert fake_time.sleeps == [42.0]


def test_persistent_429_gives_up_after_max_attempts() -> None:
    fake_time = FakeTime()
    storm = [
        json_response(429, {"code": "tooManyRequests", "message": "no"}, {"Retry-After": "1"})
        for _ in range(3)
    ]
    miro = ScriptedMiro(storm)
    with pytest.raises(MiroRateLimited) as caught:
        make_client(miro, fake_time, max_attempts=3).get_organization()
    assert caught.value.status == 429
    assert len(miro.requests) == 3
    assert fake_time.sleeps == [1.0, 1.0]


def test_pacer_spaces_requests_when_budget_is_low() -> None:
    fake_time = FakeTime()
    reset = int(fake_time.now) + 40

    def low_budget(indices: range, cursor: str | None) -> httpx.Response:
        limits = {
            "X-RateLimit-Limit": "100000",
            "X-RateLimit-Remaining": "20000",
            "X-RateLimit-Reset": str(reset),
        }
        return json_response(200, members_page(indices, cursor), limits)

    miro = ScriptedMiro([low_budget(range(0, 1), "c1"), low_budget(range(1, 2), None)])
    client = MiroRestClient(
        BASE,
        TOKEN,
        "org-1",
        http=miro.client(),
        pacer=RateLimitPacer(reserve_fraction=0.1, burst_fraction=0.5),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )
    list(client.iter_member_pages())
    # usable 10_000 credits over 40 s, a level-3 call costs 500 -> 2 s between calls.
    assert fake_time.sleeps == [pytest.approx(2.0)]
    assert client.stats.credits_spent == 1000
    assert client.stats.http_429 == 0


class _ScriptedPacer:
    """Answers acquire() from a script of waits; records every booking and release."""

    def __init__(self, waits: list[float]) -> None:
        self.waits = waits
        self.booked: list[int] = []
        self.released: list[int] = []

    def acquire(self, method: str, cost: int, now: float) -> float:
        wait = self.waits.pop(0) if self.waits else 0.0
        if wait <= 0:
            self.booked.append(cost)
        return wait

    def release(self, method: str, cost: int) -> None:
        self.released.append(cost)

    def observe(self, headers: object, now: float) -> None:
        return None

    def wait_after_429(self, method: str, headers: object, now: float) -> float | None:
        return None


def test_client_asks_the_pacer_again_after_each_wait_and_releases_every_booking() -> None:
    fake_time = FakeTime()
    pacer = _ScriptedPacer([1.5, 0.25, 0.0])
    miro = ScriptedMiro([httpx.ConnectError("refused"), ok_page(range(0, 1), None)])
    client = MiroRestClient(
        BASE, TOKEN, "org-1", http=miro.client(), pacer=pacer, sleep=fake_time.sleep, clock=fake_time.clock
    )
    list(client.iter_member_pages())
    # Two waits before the first attempt (asked again after each); the refused attempt and the
    # answered one were both booked and both released.
    assert fake_time.sleeps[:2] == [1.5, 0.25]
    assert pacer.booked == [500, 500]
    assert pacer.released == [500, 500]
    assert client.stats.paced_seconds == pytest.approx(1.75)


# --- retries and faults ---------------------------------------------------------------------------


def test_5xx_and_transport_errors_are_retried_with_bounded_jittered_backoff() -> None:
    fake_time = FakeTime()
    miro = ScriptedMiro(
        [
            json_response(503, {"message": "down"}),
            httpx.ReadTimeout("timed out"),
            httpx.RemoteProtocolError("peer closed connection"),
            ok_page(range(0, 1), None),
        ]
    )
    client = make_client(miro, fake_time)
    assert len(list(client.iter_member_pages())) == 1
    assert client.stats.retries == 3
    # Full-jitter exponential backoff: attempt n waits in [0, 0.5 * 2**(n-1)].
    for attempt, slept in enumerate(fake_time.sleeps, start=1):
        assert 0.0 <= slept <= 0.5 * 2 ** (attempt - 1)


def test_persistent_5xx_raises_unavailable_after_max_attempts() -> None:
    miro = ScriptedMiro([json_response(502, {"message": "bad gateway"}) for _ in range(4)])
    with pytest.raises(MiroUnavailable):
        make_client(miro, FakeTime(), max_attempts=4).get_member("m1")
    assert len(miro.requests) == 4


def test_post_is_not_resent_after_an_ambiguous_failure() -> None:
    miro = ScriptedMiro([httpx.ReadTimeout("timed out")])
    with pytest.raises(MiroUnavailable):
        make_client(miro, FakeTime()).create_board_subscription("b", "https://x.example/cb")
    assert len(miro.requests) == 1


def test_post_is_retried_when_the_connection_was_never_made() -> None:
    sub = {"id": "s1", "status": "enabled"}
    miro = ScriptedMiro([httpx.ConnectError("refused"), json_response(201, sub)])
    assert make_client(miro, FakeTime()).create_board_subscription("b", "https://x.example/cb").id == "s1"


def test_truncated_json_is_retried_then_succeeds() -> None:
    truncated = httpx.Response(200, content=json.dumps(members_page(range(0, 3), None)).encode()[:-40])
    miro = ScriptedMiro([truncated, ok_page(range(0, 3), None)])
    pages = list(make_client(miro, FakeTime()).iter_member_pages())
    assert len(pages[0].data) == 3
    assert len(miro.requests) == 2


def test_persistently_truncated_page_fails_the_listing() -> None:
    body = json.dumps(members_page(range(0, 3), "c1")).encode()[:-25]
    miro = ScriptedMiro([httpx.Response(200, content=body) for _ in range(3)])
    with pytest.raises(MiroProtocolError, match="malformed"):
        list(make_client(miro, FakeTime(), max_attempts=3).iter_member_pages())


def test_page_whose_size_disagrees_with_its_data_is_treated_as_truncated() -> None:
    short = members_page(range(0, 3), "c1")
    short["data"] = short["data"][:1]
    miro = ScriptedMiro([json_response(200, short), json_response(200, short)])
    with pytest.raises(MiroProtocolError, match="size=3"):
        list(make_client(miro, FakeTime(), max_attempts=2).iter_member_pages())


def test_wrongly_typed_member_is_a_protocol_error_not_a_crash() -> None:
    bad = members_page(range(0, 1), None)
    bad["data"][0]["active"] = "yes"
    miro = ScriptedMiro([json_response(200, bad)])
    with pytest.raises(MiroProtocolError, match=r"data\.0\.active"):
        list(make_client(miro, FakeTime(), max_attempts=1).iter_member_pages())


# --- auth and client errors -----------------------------------------------------------------------


class RotatingToken:
    """A refreshable token provider fake: returns ``old`` until refreshed."""

    def __init__(self, old: str, new: str) -> None:
        self.current, self.new, self.refreshes = old, new, 0

    def __call__(self) -> str:
        return self.current

    def refresh(self) -> str:
        self.refreshes += 1
        self.current = self.new
        return self.current


def test_401_refreshes_the_token_once_and_retries() -> None:
    token = RotatingToken("old-token", "new-token")
    org = {"id": "org-1", "name": "Acme", "plan": "company", "fullLicensesPurchased": 10}
    miro = ScriptedMiro(
        [json_response(401, {"code": "unauthorized", "message": "expired"}), json_response(200, org)]
    )
    client = make_client(miro, FakeTime(), token=token)
    assert client.get_organization().full_licenses_purchased == 10
    assert [r.headers["Authorization"] for r in miro.requests] == ["Bearer old-token", "Bearer new-token"]
    assert token.refreshes == 1
    assert client.stats.token_refreshes == 1


def test_401_after_refresh_fails_without_a_second_refresh() -> None:
    token = RotatingToken("old-token", "still-bad")
    unauthorized = {"code": "unauthorized", "message": "expired"}
    miro = ScriptedMiro([json_response(401, unauthorized), json_response(401, unauthorized)])
    with pytest.raises(MiroAuthError):
        make_client(miro, FakeTime(), token=token).get_organization()
    assert token.refreshes == 1
    assert len(miro.requests) == 2


def test_static_token_401_fails_fast() -> None:
    miro = ScriptedMiro([json_response(401, {"code": "unauthorized", "message": "Unauthorized"})])
    with pytest.raises(MiroAuthError) as caught:
        make_client(miro, FakeTime()).get_organization()
    assert caught.value.status == 401
    assert len(miro.requests) == 1


def test_403_names_the_missing_scope_and_role_but_never_the_token() -> None:
    body = {"status": 403, "code": "forbidden", "message": f"Token {TOKEN} lacks auditlogs:read"}
    miro = ScriptedMiro([json_response(403, body)])
    with pytest.raises(MiroAuthError) as caught:
        list(
            make_client(miro, FakeTime()).iter_audit_pages(
                datetime(2024, 1, 1, tzinfo=UTC), datetime.now(UTC)
            )
        )
    text = str(caught.value)
    assert "auditlogs:read" in text
    assert "Company Admin" in text
    assert caught.value.required_scope == "auditlogs:read"
    assert TOKEN not in text
    assert TOKEN not in repr(caught.value.args)
    assert len(miro.requests) == 1


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(400, MiroBadRequest), (404, MiroNotFound), (409, MiroConflict)],
)
def test_client_errors_map_to_their_classes_and_are_not_retried(
    status: int, error_type: type[Exception]
) -> None:
    miro = ScriptedMiro(
        [json_response(status, {"status": status, "code": "someCode", "message": "explained"})]
    )
    with pytest.raises(error_type) as caught:
        make_client(miro, FakeTime()).get_member("m1")
    assert getattr(caught.value, "code", None) == "someCode"
    assert "explained" in str(caught.value)
    assert len(miro.requests) == 1


def test_client_repr_does_not_leak_the_token() -> None:
    client = make_client(ScriptedMiro([]), FakeTime())
    assert TOKEN not in repr(client)
    assert TOKEN not in repr(vars(client))


def test_a_request_sent_after_pacing_gave_up_is_not_released() -> None:
    fake_time = FakeTime()
    pacer = _ScriptedPacer([100.0, 100.0])  # 200 s of waits: past the 130 s the client allows
    miro = ScriptedMiro([ok_page(range(0, 1), None)])
    client = MiroRestClient(
        BASE, TOKEN, "org-1", http=miro.client(), pacer=pacer, sleep=fake_time.sleep, clock=fake_time.clock
    )
    list(client.iter_member_pages())
    assert fake_time.sleeps == [100.0, 100.0]
    assert pacer.booked == []
    assert pacer.released == []  # never booked: releasing would cancel another request's booking
