"""Every exception the Miro package raises, under one root (`MiroPackageError`), and the mapping of
Miro's error answers onto them (`error_for_response`).

Two families under the root, kept apart on purpose:

* `MiroError` and its subclasses: a call to Miro failed (Miro's answer, or no answer). Every one carries
  the HTTP status (when there was one), Miro's error code and message, and a hint naming what the call
  needs (scope/role). None of them ever carries the bearer token: the clients build messages from
  Miro's response body only, and scrub the token from it regardless.
* the token errors (`TokenUnavailableError`, `TokenFormatError`): no call could be made because the
  stored token is unusable. They are not `MiroError`s: the offboarding guards and steps and the CLI read
  a `MiroError` as Miro's verdict or a transient failure, and a broken secret is neither.

Kept import-light (no httpx at run time): `deadline.py` imports it when the offboarding handler loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

_MAX_ERROR_MESSAGE = 500


class MiroPackageError(Exception):
    """The root of every exception the Miro package (clients, token providers) defines."""


class MiroError(MiroPackageError):
    """Base class for every failed call to Miro (REST, SCIM, the token endpoint)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.method = method
        self.path = path

    def __str__(self) -> str:
        where = f"{self.method} {self.path}: " if self.method and self.path else ""
        status = f" (HTTP {self.status}{', ' + self.code if self.code else ''})" if self.status else ""
        return f"{where}{self.message}{status}"


class MiroAuthError(MiroError):
    """401/403: the token is invalid/expired or lacks a scope or admin role. Never retried blindly."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        method: str | None = None,
        path: str | None = None,
        required_scope: str | None = None,
        required_role: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, method=method, path=path)
        self.required_scope = required_scope
        self.required_role = required_role


class MiroBadRequest(MiroError):  # noqa: N818 - public name other modules import
    """400: Miro rejected the request; `code`/`message` say why."""


class MiroNotFound(MiroError):  # noqa: N818 - public name other modules import
    """404: the resource does not exist (or, for SCIM, the user is a guest/external user)."""


class MiroConflict(MiroError):  # noqa: N818 - public name other modules import
    """409: e.g. the last admin of the organization cannot be deleted or deactivated."""


class MiroRateLimited(MiroError):  # noqa: N818 - public name other modules import
    """429 persisted through every allowed attempt."""


class MiroUnavailable(MiroError):  # noqa: N818 - public name other modules import
    """5xx, timeouts or connection failures persisted through every allowed attempt."""


class MiroDeadlineExceeded(MiroUnavailable):
    """Not sent: the invocation has too little time left for the attempt (or the wait before it). Nothing
    reached Miro; the caller retries it in a later invocation."""


class MiroProtocolError(MiroError):
    """The response did not make sense: malformed/truncated body after retries, a repeated cursor.

    Callers must treat this as "the listing is incomplete", never as "these members are gone".
    """


class RefreshRefusedError(MiroAuthError):
    """Miro refused the refresh (400/401): the refresh token was already used, expired or revoked,
    or the client credentials are wrong."""


# --- the stored token ---------------------------------------------------------------------------


class TokenUnavailableError(MiroPackageError):
    """The secret exists but holds no usable token (message names the secret, never its value)."""


class TokenFormatError(MiroPackageError, ValueError):
    """The stored token cannot be read (the message never quotes the value)."""


class SecretNoLongerExpiringError(MiroPackageError):
    """Internal signal from `ExpiringToken` to `secrets.SecretsManagerToken`, which always catches it:
    the secret now holds a plain token (an operator switched formats)."""

    def __init__(self, raw: str) -> None:
        super().__init__("the secret now holds a plain token")
        self.raw = raw


# --- Miro's error answers -----------------------------------------------------------------------


@dataclass(frozen=True)
class AuthHint:
    """What an endpoint needs, quoted in auth errors (from Miro's docs for that endpoint)."""

    scope: str | None = None
    role: str | None = None


def _scrub(text: str, secret: str | None) -> str:
    if secret and secret in text:
        text = text.replace(secret, "**********")
    return text[:_MAX_ERROR_MESSAGE]


def error_for_response(
    response: httpx.Response, *, method: str, path: str, hint: AuthHint | None, token: str | None
) -> MiroError:
    """Map a 4xx/5xx to the error classes; reads REST ``{code,message}`` and SCIM ``{detail,scimType}``."""
    code: str | None = None
    message = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        raw_message = body.get("message") or body.get("detail")
        raw_code = body.get("code") or body.get("scimType")
        message = raw_message if isinstance(raw_message, str) else ""
        code = raw_code if isinstance(raw_code, str) else None
    message = _scrub(message or response.reason_phrase or "no error message", token)
    status = response.status_code
    kwargs: dict[str, Any] = {"status": status, "code": code, "method": method, "path": path}
    if status in (401, 403):
        needs = []
        if hint and hint.scope:
            needs.append(f"scope '{hint.scope}'")
        if hint and hint.role:
            needs.append(f"the {hint.role} role")
        what = "token invalid, expired or revoked" if status == 401 else "token lacks a permission"
        text = f"Miro refused the token ({what}): {message}"
        if needs:
            text += f"; this call needs {' and '.join(needs)}"
        return MiroAuthError(
            text,
            required_scope=hint.scope if hint else None,
            required_role=hint.role if hint else None,
            **kwargs,
        )
    if status == 400:
        return MiroBadRequest(message, **kwargs)
    if status == 404:
        return MiroNotFound(message, **kwargs)
    if status == 409:
        return MiroConflict(message, **kwargs)
    if status == 429:
        return MiroRateLimited(f"rate limited: {message}", **kwargs)
    if status >= 500:
        return MiroUnavailable(f"Miro server error: {message}", **kwargs)
    return MiroError(message, **kwargs)
