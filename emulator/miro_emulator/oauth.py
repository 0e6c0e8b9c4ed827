"""Expiring OAuth tokens: the REST access token's lifetime and `POST /v1/oauth/token` (refresh_token grant).

As Miro documents for apps with expiring tokens: an access token lives a limited time (Miro: 1 hour;
here `--token-ttl` seconds) and then answers 401; a refresh returns a new access/refresh pair and
invalidates the old pair, so a refresh token works exactly once. Parameters are read from the query
string (Miro's reference) or a form body (Miro's recommendation; OAuth standard), the body winning.

`GET /v1/oauth-token` (token information) describes the REST token: its user, team, organization and
scopes (`EmulatorConfig.scopes`).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs

from miro_emulator.audit import NO_INDEX
from miro_emulator.http import ApiError, Request, Response

if TYPE_CHECKING:
    from miro_emulator.app import Emulator
    from miro_emulator.config import EmulatorConfig
    from miro_emulator.state import OrgState

# The team a token belongs to when the org has none the token's user is in (never with a generated org).
DEFAULT_TEAM = {"id": "3458764500000000000", "name": "Default team"}
# Miro reports expires_in for expiring tokens; a non-expiring emulator still answers like Miro's 1 hour.
DEFAULT_EXPIRES_IN = 3599

TokenCheck = Literal["valid", "expired", "unknown"]


class TokenIssuer:
    """The REST token pair of the emulated app installation (thread-safe)."""

    def __init__(self, config: EmulatorConfig, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._access = config.token
        self._refresh = config.refresh_token
        self._issued_at = monotonic()
        self._retired: set[str] = set()  # access tokens a refresh replaced: never valid again
        self.refreshes = 0

    def check(self, token: str) -> TokenCheck:
        """`valid`: the current, unexpired access token; `expired`: ours but expired or replaced."""
        with self._lock:
            if token == self._access:
                ttl = self._config.token_ttl_s
                if ttl is not None and self._monotonic() - self._issued_at >= ttl:
                    return "expired"
                return "valid"
            return "expired" if token in self._retired else "unknown"

    def is_issued(self, token: str) -> bool:
        """Any REST access token this emulator issued (current or replaced): they share one rate limit,
        as Miro's credits are per user and app, not per token."""
        with self._lock:
            return token == self._access or token in self._retired

    def current(self) -> tuple[str, str]:
        """(access token, refresh token) now valid: for in-process tests only, never served over HTTP."""
        with self._lock:
            return self._access, self._refresh

    def refresh(self, params: dict[str, str], user_id: str, team_id: str) -> Response:
        if params.get("grant_type") != "refresh_token":
            raise ApiError(400, "invalidParameters", "grant_type must be refresh_token")
        for name in ("client_id", "client_secret", "refresh_token"):
            if not params.get(name):
                raise ApiError(400, "invalidParameters", f"{name} is required")
        if not (
            secrets.compare_digest(params["client_id"], self._config.client_id)
            and secrets.compare_digest(params["client_secret"], self._config.client_secret)
        ):
            raise ApiError(401, "oauthError", "Invalid client credentials")
        with self._lock:
            if not secrets.compare_digest(params["refresh_token"], self._refresh):
                raise ApiError(401, "oauthError", "Invalid refresh token")
            self.refreshes += 1
            self._retired.add(self._access)
            self._access = f"emu-at-{self.refreshes}-{secrets.token_urlsafe(12)}"
            self._refresh = f"emu-rt-{self.refreshes}-{secrets.token_urlsafe(12)}"
            self._issued_at = self._monotonic()
            access, refresh = self._access, self._refresh
        ttl = self._config.token_ttl_s
        expires_in = DEFAULT_EXPIRES_IN if ttl is None else max(1, int(ttl))
        body = {
            "user_id": user_id,
            "refresh_token": refresh,
            "access_token": access,
            "expires_in": expires_in,
            "team_id": team_id,
            # What the emulated app was granted, space-separated as Miro echoes it.
            "scope": " ".join(self._config.scopes),
            "token_type": "bearer",
        }
        return Response(200, body, headers={"Cache-Control": "no-store"})


def _params(request: Request) -> dict[str, str]:
    params = {name: values[0] for name, values in request.query.items() if values}
    content_type = request.headers.get("content-type", "")
    if request.body and "application/x-www-form-urlencoded" in content_type:
        form = parse_qs(request.body.decode("utf-8", errors="replace"), keep_blank_values=True)
        params.update({name: values[0] for name, values in form.items() if values})
    return params


def token(emulator: Emulator, request: Request) -> Response:
    """`POST /v1/oauth/token?grant_type=refresh_token`: the client credentials authenticate it."""
    state = emulator.state
    user = state.token_user()
    response = emulator.oauth.refresh(_params(request), user.id, token_team(state)["id"])
    emulator.stats_counter.count_token_refresh()
    return response


def token_team(state: OrgState) -> dict[str, str]:
    """The team the REST token was installed on: its user's primary team, else the first team the user
    is in, else the org's first team (a stable default when there is none)."""
    with state.lock:
        user = state.token_user()
        teams = state.teams
        team = None
        if user.primary_team != NO_INDEX and 0 <= user.primary_team < len(teams):
            team = teams[user.primary_team]
        if team is None:
            team = next((t for t in teams if user.index in t.memberships), teams[0] if teams else None)
        if team is None:
            return dict(DEFAULT_TEAM)
        return {"id": team.id, "name": team.name}


def token_info(emulator: Emulator, request: Request) -> Response:
    """`GET /v1/oauth-token` (operationId token-info): the spec's "Token information" for the bearer
    token the emulator already authenticated (its user also created it)."""
    state = emulator.state
    with state.lock:
        user = state.token_user()
        person = {"type": "user", "name": user.display_name, "id": user.id}
        team = token_team(state)
        body: dict[str, Any] = {
            "type": "oauth_token",
            "organization": {"type": "organization", "name": state.org_name, "id": state.org_id},
            "team": {"type": "team", "name": team["name"], "id": team["id"]},
            "createdBy": dict(person),
            "user": person,
            "scopes": list(emulator.config.scopes),
        }
    return Response(200, body)
