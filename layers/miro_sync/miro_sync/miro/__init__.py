"""Miro REST and SCIM clients (the only code in miro_sync that talks HTTP).

The names below are resolved lazily (PEP 562): `import miro_sync.miro.models` (the wire models, used by
the stores and the webhook) must not drag in the clients and httpx, which only the Miro-calling
functions need. `from miro_sync.miro import MiroRestClient` still works and is typed (see the
TYPE_CHECKING block).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from miro_sync.miro.client import MiroRestClient, format_miro_time
    from miro_sync.miro.errors import (
        MiroAuthError,
        MiroBadRequest,
        MiroConflict,
        MiroError,
        MiroNotFound,
        MiroProtocolError,
        MiroRateLimited,
        MiroUnavailable,
    )
    from miro_sync.miro.http import RequestStats, shared_http_client
    from miro_sync.miro.pacing import RateLimitPacer, WindowPacer
    from miro_sync.miro.scim import MiroScimClient

# Public name -> submodule that defines it.
_EXPORTS = {
    "MiroRestClient": "client",
    "format_miro_time": "client",
    "MiroAuthError": "errors",
    "MiroBadRequest": "errors",
    "MiroConflict": "errors",
    "MiroError": "errors",
    "MiroNotFound": "errors",
    "MiroProtocolError": "errors",
    "MiroRateLimited": "errors",
    "MiroUnavailable": "errors",
    "RateLimitPacer": "pacing",
    "RequestStats": "http",
    "WindowPacer": "pacing",
    "shared_http_client": "http",
    "MiroScimClient": "scim",
}

__all__ = [
    "MiroAuthError",
    "MiroBadRequest",
    "MiroConflict",
    "MiroError",
    "MiroNotFound",
    "MiroProtocolError",
    "MiroRateLimited",
    "MiroRestClient",
    "MiroScimClient",
    "MiroUnavailable",
    "RateLimitPacer",
    "RequestStats",
    "WindowPacer",
    "format_miro_time",
    "shared_http_client",
]


def __getattr__(name: str) -> Any:
    submodule = _EXPORTS.get(name)
    if submodule is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{submodule}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
