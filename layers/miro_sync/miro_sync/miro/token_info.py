"""What a REST token is: Miro's token information (`GET /v1/oauth-token`) and the expiry a token secret
carries (plain token, or JSON `{"accessToken", "refreshToken", "clientId", "clientSecret", "expiresAt"}`).

`TokenInfoRestClient` is the REST client plus `token_info()`, through the same MiroHttp machinery
(pacing, retries, error mapping, token scrubbing). Nothing here ever returns or prints a token value
except `TokenMaterial.access_token`, which callers hand to a client and never display. `TokenFormatError`
lives in `errors.py` and the expiry parser in `stored_token.py` (shared with the token providers); the
error is still importable from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from pydantic import Field, StrictStr

from miro_sync.miro.base import model_parser
from miro_sync.miro.client import LEVEL_1, MiroRestClient
from miro_sync.miro.errors import TokenFormatError
from miro_sync.miro.models import MiroModel
from miro_sync.miro.stored_token import parse_expiry

TOKEN_INFO_PATH = "/v1/oauth-token"  # nosec B105  # noqa: S105 - a path, not a token


class TokenInfoRef(MiroModel):
    """`organization`, `team`, `user` and `createdBy` in the token information (spec: type, name, id)."""

    id: StrictStr
    name: StrictStr | None = None
    type: StrictStr | None = None


class TokenInfo(MiroModel):
    """`GET /v1/oauth-token`: the token's type, scopes, organization, team, user and creator."""

    type: StrictStr | None = None
    organization: TokenInfoRef | None = None
    team: TokenInfoRef | None = None
    user: TokenInfoRef
    created_by: TokenInfoRef | None = Field(default=None, alias="createdBy")
    scopes: list[StrictStr] = Field(default_factory=list)

    def missing(self, needed: tuple[str, ...] | list[str]) -> list[str]:
        """The scopes in `needed` the token lacks, in the order given."""
        have = set(self.scopes)
        return [scope for scope in needed if scope not in have]


class TokenInfoRestClient(MiroRestClient):
    """`MiroRestClient` with Miro's token information endpoint (no scope needed; invalid token: 400/401)."""

    def token_info(self) -> TokenInfo:
        # Miro publishes no rate-limit level for this endpoint: count it as the cheapest.
        return self._http.request("GET", TOKEN_INFO_PATH, model_parser(TokenInfo), cost=LEVEL_1)


# --- token secrets and their expiry ---------------------------------------------------------------


@dataclass(frozen=True)
class TokenMaterial:
    """A token as stored: the access token (never display it) and, for an expiring token, its expiry."""

    access_token: str
    expires_at: datetime | None = None
    has_refresh_token: bool = False
    expiring: bool = False  # JSON form with expiresAt (Miro's expiring tokens)

    def __repr__(self) -> str:
        return (
            f"TokenMaterial(access_token='**********', expires_at={self.expires_at!r}, "
            f"has_refresh_token={self.has_refresh_token})"
        )

    def seconds_left(self, now: datetime) -> float | None:
        return None if self.expires_at is None else (self.expires_at - now).total_seconds()


def token_material(raw: str | bytes, *, what: str = "token") -> TokenMaterial:
    """Read a stored token: a plain string, or JSON with `accessToken` (also `token`/`access_token`),
    optional `refreshToken` and `expiresAt` (ISO-8601, epoch seconds or epoch milliseconds)."""
    text = (raw.decode("utf-8") if isinstance(raw, bytes) else raw).strip()
    if not text:
        raise TokenFormatError(f"{what} is empty")
    if not text.startswith("{"):
        return TokenMaterial(access_token=text)
    try:
        body = json.loads(text)
    except ValueError:
        raise TokenFormatError(f"{what} looks like JSON but does not parse") from None
    if not isinstance(body, dict):
        raise TokenFormatError(f"{what} is JSON but not an object")
    access = next(
        (
            value.strip()
            for key in ("accessToken", "access_token", "token")
            if isinstance(value := body.get(key), str) and value.strip()
        ),
        None,
    )
    if access is None:
        raise TokenFormatError(f"{what} is JSON without a non-empty 'accessToken'")
    refresh = body.get("refreshToken", body.get("refresh_token"))
    expires_at = parse_expiry(body.get("expiresAt", body.get("expires_at")))
    return TokenMaterial(
        access_token=access,
        expires_at=expires_at,
        has_refresh_token=isinstance(refresh, str) and bool(refresh.strip()),
        expiring=expires_at is not None,
    )
