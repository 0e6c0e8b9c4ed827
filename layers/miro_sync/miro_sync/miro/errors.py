"""Errors raised by the Miro REST and SCIM clients.

Every error carries the HTTP status (when there was one), Miro's error code and message, and a
hint naming what the call needs (scope/role). None of them ever carries the bearer token: the
clients build messages from Miro's response body only, and scrub the token from it regardless.
"""

from __future__ import annotations


class MiroError(Exception):
    """Base class for everything the Miro clients raise."""

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
