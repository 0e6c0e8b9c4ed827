"""Miro's OAuth token endpoint: exchange a refresh token for a new access/refresh pair.

`POST {api}/v1/oauth/token` with ``grant_type=refresh_token``, ``refresh_token``, ``client_id`` and
``client_secret`` (sent as a form body, as Miro recommends: the values stay out of URLs and access
logs). Miro answers ``{access_token, refresh_token, expires_in, token_type, scope, user_id, team_id}``
and invalidates the old pair: a refresh token works once.

Nothing here ever puts a token, refresh token or client secret into an error message. The errors live
in ``errors.py`` (``RefreshRefusedError`` is still importable from here).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from miro_sync.miro.errors import MiroError, MiroProtocolError, MiroUnavailable, RefreshRefusedError
from miro_sync.miro.http import shared_http_client

TOKEN_PATH = "/v1/oauth/token"  # nosec B105  # noqa: S105 - a URL path, not a secret
# Transport failures where the request certainly never reached Miro (the refresh token is unspent).
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, repr=False)
class IssuedTokens:
    access_token: SecretStr
    refresh_token: SecretStr
    expires_in: float

    def __repr__(self) -> str:
        return f"IssuedTokens(expires_in={self.expires_in})"


def refresh_access_token(
    api_url: str,
    *,
    refresh_token: str,
    client_id: str,
    client_secret: str,
    http: httpx.Client | None = None,
    attempts: int = 3,
    sleep: Callable[[float], None] = time.sleep,
) -> IssuedTokens:
    """One refresh at Miro. Retries only what cannot have spent the refresh token (not sent) and 5xx;
    a 400/401 raises RefreshRefusedError at once."""
    base = api_url.rstrip("/")
    client = http if http is not None else shared_http_client(base)
    form = {"client_id": client_id, "client_secret": client_secret, "refresh_token": refresh_token}
    last: MiroError | None = None
    for attempt in range(max(1, attempts)):
        if attempt:
            sleep(min(4.0, 0.5 * 2 ** (attempt - 1)))
        try:
            response = client.post(
                f"{base}{TOKEN_PATH}",
                params={"grant_type": "refresh_token"},
                data=form,
                headers={"Accept": "application/json"},
            )
        except httpx.TransportError as exc:
            last = MiroUnavailable(
                f"{type(exc).__name__} talking to Miro's token endpoint", method="POST", path=TOKEN_PATH
            )
            if isinstance(exc, _NOT_SENT):
                continue
            # The refresh may have been applied and its answer lost: a retry could not get that pair
            # back (the refresh token would be spent), so the error is raised as is. Nothing reloads
            # the secret here: ExpiringToken keeps the pair it holds (a proactive refresh is tried
            # again shortly while the access token is valid); if Miro did apply this refresh, the
            # next attempt is refused and the pair has to be re-authorized.
            raise last from None
        if response.status_code >= 500:
            last = MiroUnavailable(
                f"Miro's token endpoint answered HTTP {response.status_code}", method="POST", path=TOKEN_PATH
            )
            continue
        if response.status_code in (400, 401, 403):
            code = _error_code(response)
            raise RefreshRefusedError(
                "Miro refused the token refresh (refresh token already used, expired or revoked, "
                "or wrong client credentials)",
                status=response.status_code,
                code=code,
                method="POST",
                path=TOKEN_PATH,
            )
        if response.status_code != 200:
            raise MiroError(
                f"unexpected HTTP {response.status_code} from the token endpoint",
                method="POST",
                path=TOKEN_PATH,
            )
        return _parse(response)
    if last is None:  # pragma: no cover - every attempt that does not return or raise sets `last`
        raise MiroUnavailable("Miro's token endpoint was not called", method="POST", path=TOKEN_PATH)
    raise last


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        code = body.get("code") or body.get("error")
        return code if isinstance(code, str) else None
    return None


def _parse(response: httpx.Response) -> IssuedTokens:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise MiroProtocolError(
            "token endpoint answered without a JSON object", method="POST", path=TOKEN_PATH
        )
    access, refresh, expires_in = body.get("access_token"), body.get("refresh_token"), body.get("expires_in")
    if not (isinstance(access, str) and access and isinstance(refresh, str) and refresh):
        raise MiroProtocolError(
            "token endpoint answer lacks access_token/refresh_token", method="POST", path=TOKEN_PATH
        )
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0:
        raise MiroProtocolError(
            "token endpoint answer lacks a positive expires_in", method="POST", path=TOKEN_PATH
        )
    return IssuedTokens(SecretStr(access), SecretStr(refresh), float(expires_in))
