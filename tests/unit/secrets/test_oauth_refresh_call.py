"""The refresh call to Miro's token endpoint, against an httpx MockTransport."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs

import httpx
import pytest

from miro_sync.miro.errors import MiroProtocolError, MiroUnavailable
from miro_sync.miro.oauth import RefreshRefusedError, refresh_access_token

ANSWER = {
    "user_id": "3458764517517819000",
    "refresh_token": "rt-new",
    "access_token": "at-new",
    "expires_in": 3599,
    "team_id": "3458764517517819001",
    "scope": "boards:read",
    "token_type": "bearer",
}


def call(handler: httpx.MockTransport, sleeps: list[float] | None = None) -> object:
    with httpx.Client(transport=handler) as http:
        return refresh_access_token(
            "https://api.example/",
            refresh_token="rt-old",
            client_id="cid",
            client_secret="csecret",
            http=http,
            sleep=(sleeps if sleeps is not None else []).append,
        )


def test_posts_the_refresh_grant_with_the_secrets_in_the_form_body() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=ANSWER)

    issued = call(httpx.MockTransport(handle))
    request = seen[0]
    assert request.method == "POST"
    assert request.url.path == "/v1/oauth/token"
    assert dict(request.url.params) == {"grant_type": "refresh_token"}  # no secret in the URL
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
    assert form == {"client_id": "cid", "client_secret": "csecret", "refresh_token": "rt-old"}
    assert issued.access_token.get_secret_value() == "at-new"  # type: ignore[attr-defined]
    assert issued.refresh_token.get_secret_value() == "rt-new"  # type: ignore[attr-defined]
    assert issued.expires_in == 3599  # type: ignore[attr-defined]
    assert "at-new" not in repr(issued)


@pytest.mark.parametrize("status", [400, 401])
def test_a_refused_refresh_raises_without_values(status: int) -> None:
    body = {
        "status": status,
        "code": "oauthError",
        "message": "Invalid refresh token rt-old",
        "type": "error",
    }
    with pytest.raises(RefreshRefusedError) as caught:
        call(httpx.MockTransport(lambda request: httpx.Response(status, json=body)))
    assert caught.value.status == status
    assert caught.value.code == "oauthError"
    assert "rt-old" not in str(caught.value)
    assert "csecret" not in str(caught.value)


def test_server_errors_and_unsent_requests_are_retried() -> None:
    answers: Iterator[httpx.Response | Exception] = iter(
        [httpx.ConnectError("refused"), httpx.Response(503), httpx.Response(200, json=ANSWER)]
    )

    def handle(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    sleeps: list[float] = []
    call(httpx.MockTransport(handle), sleeps)
    assert len(sleeps) == 2


def test_a_read_timeout_is_not_retried_blindly() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("lost")

    with pytest.raises(MiroUnavailable):
        call(httpx.MockTransport(handle))


def test_a_malformed_answer_is_a_protocol_error() -> None:
    with pytest.raises(MiroProtocolError):
        call(httpx.MockTransport(lambda request: httpx.Response(200, json={"access_token": "x"})))
