"""Expiring tokens in the emulator: access tokens expire after --token-ttl, POST /v1/oauth/token issues a
new pair and invalidates the old one (a refresh token works once), stats count tokenRefreshes."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from miro_emulator.app import Emulator
from miro_emulator.config import EmulatorConfig
from miro_emulator.http import Request, Response
from tests.unit.emulator.clocks import FakeClock

CONFIG = EmulatorConfig(
    members=5, token="at-0", refresh_token="rt-0", client_id="cid", client_secret="csecret", token_ttl_s=10
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator(clock: FakeClock) -> Emulator:
    return Emulator(CONFIG, monotonic=clock, sleep=lambda _: None)


def get_org(emulator: Emulator, token: str) -> Response:
    request = Request("GET", f"/v2/orgs/{CONFIG.org_id}", {}, {"authorization": f"Bearer {token}"})
    response = emulator.handle(request)
    assert isinstance(response, Response)
    return response


def refresh(emulator: Emulator, refresh_token: str, *, form: bool = True, **overrides: str) -> Response:
    params = {
        "grant_type": "refresh_token",
        "client_id": "cid",
        "client_secret": "csecret",
        "refresh_token": refresh_token,
        **overrides,
    }
    if form:
        query = {"grant_type": [params.pop("grant_type")]}
        body = urlencode(params).encode()
        headers = {"content-type": "application/x-www-form-urlencoded"}
    else:
        query, body, headers = {k: [v] for k, v in params.items()}, b"", {}
    response = emulator.handle(Request("POST", "/v1/oauth/token", query, headers, body))
    assert isinstance(response, Response)
    return response


def body(response: Response) -> dict[str, Any]:
    assert isinstance(response.body, dict)
    return response.body


def test_access_token_expires_after_the_ttl_with_a_401(emulator: Emulator, clock: FakeClock) -> None:
    assert get_org(emulator, "at-0").status == 200
    clock.now += 10
    expired = get_org(emulator, "at-0")
    assert expired.status == 401
    assert body(expired)["code"] == "tokenExpired"
    assert get_org(emulator, "nonsense").status == 401


@pytest.mark.parametrize("form", [True, False])
def test_refresh_issues_a_new_pair_and_invalidates_the_old_one(
    emulator: Emulator, clock: FakeClock, form: bool
) -> None:
    clock.now += 20  # refreshing works with an expired access token
    answer = refresh(emulator, "rt-0", form=form)
    assert answer.status == 200
    pair = body(answer)
    assert set(pair) == {
        "user_id",
        "refresh_token",
        "access_token",
        "expires_in",
        "team_id",
        "scope",
        "token_type",
    }
    assert pair["expires_in"] == 10
    assert pair["token_type"] == "bearer"
    assert pair["access_token"] not in ("at-0",)
    assert pair["refresh_token"] != "rt-0"
    assert get_org(emulator, pair["access_token"]).status == 200
    assert get_org(emulator, "at-0").status == 401
    # A refresh token works once.
    again = refresh(emulator, "rt-0", form=form)
    assert again.status == 401
    assert body(again)["code"] == "oauthError"
    assert emulator.oauth.current() == (pair["access_token"], pair["refresh_token"])
    assert emulator.stats()["tokenRefreshes"] == 1
    # The new access token expires too.
    clock.now += 10
    assert get_org(emulator, pair["access_token"]).status == 401


def test_refresh_checks_the_client_credentials_and_grant(emulator: Emulator) -> None:
    assert refresh(emulator, "rt-0", client_secret="wrong").status == 401
    assert refresh(emulator, "rt-0", grant_type="authorization_code").status == 400
    assert refresh(emulator, "").status == 400
    assert emulator.stats()["tokenRefreshes"] == 0
    assert refresh(emulator, "rt-0").status == 200  # nothing above spent it


def test_refreshed_tokens_share_the_rate_limit_and_keep_scim_separate(emulator: Emulator) -> None:
    first = get_org(emulator, "at-0")
    new = body(refresh(emulator, "rt-0"))["access_token"]
    second = get_org(emulator, new)
    spent = int(first.headers["X-RateLimit-Remaining"]) - int(second.headers["X-RateLimit-Remaining"])
    assert spent > 0  # the same budget, not a fresh one per token
    scim = emulator.handle(Request("GET", "/api/v1/scim/Users", {}, {"authorization": f"Bearer {new}"}))
    assert isinstance(scim, Response)
    assert scim.status == 403


def test_tokens_never_expire_without_a_ttl(clock: FakeClock) -> None:
    emulator = Emulator(EmulatorConfig(members=5), monotonic=clock, sleep=lambda _: None)
    clock.now += 10**6
    assert get_org(emulator, emulator.config.token).status == 200
    assert emulator.stats()["tokenRefreshes"] == 0
