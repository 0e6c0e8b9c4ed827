"""What the Miro clients need from a bearer-token source: a zero-argument callable returning the current
token, and `refresh()` for those that can replace a token Miro refused (called once after a 401).

A module of its own, importing nothing from the Miro package: `http.py` depends on these protocols, and
the providers (`expiring_token.py`, `miro_sync.secrets`) depend on the HTTP code for their refresh, so
the protocols live where both can import them without importing each other.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class TokenProvider(Protocol):
    def __call__(self) -> str: ...


@runtime_checkable
class RefreshableTokenProvider(TokenProvider, Protocol):
    def refresh(self) -> str:
        """Bypass any cache and return the current token (after a 401, in case it was rotated)."""
        ...
