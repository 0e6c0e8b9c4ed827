"""Miro REST and SCIM clients (the only code in miro_sync that talks HTTP)."""

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
from miro_sync.miro.http import RateLimitPacer, RequestStats, WindowPacer, shared_http_client
from miro_sync.miro.scim import MiroScimClient

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
