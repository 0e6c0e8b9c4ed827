"""Emulator configuration and its clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_ORG_ID = "3458764500000000001"
# Every REST scope the miro-sync stack needs (miro_sync.miro.scopes.all_scopes(); a unit test keeps the
# two in step): what a default emulated token was granted.
ALL_SCOPES: tuple[str, ...] = (
    "organizations:read",
    "organizations:teams:read",
    "boards:read",
    "auditlogs:read",
    "organizations:teams:write",
    "boards:write",
    "sessions:delete",
)


class EmulatorConfig(BaseModel):
    """Everything that shapes an emulated org. Same config (with a fixed `now`) = same org, byte for byte."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    members: int = Field(default=200, ge=1, le=1_000_000)
    seed: int = 1
    org_id: str = Field(default=DEFAULT_ORG_ID, pattern=r"^[0-9]{1,30}$")
    org_name: str = "Acme Corporation"
    token: str = Field(default="emulator-rest-token", min_length=1)
    scim_token: str = Field(default="emulator-scim-token", min_length=1)
    # Expiring tokens (Miro: access token 1 hour, refresh token 60 days). `token` is the first access
    # token; after `token_ttl_s` seconds it answers 401 (None: it never expires). `POST /v1/oauth/token`
    # with `refresh_token` and the client credentials issues a new pair and invalidates the old one.
    token_ttl_s: float | None = Field(default=None, gt=0)
    refresh_token: str = Field(default="emulator-refresh-token", min_length=1)
    client_id: str = Field(default="3458764599999999999", min_length=1)
    client_secret: str = Field(default="emulator-client-secret", min_length=1)
    # The REST token's scopes: what `GET /v1/oauth-token` reports, and every REST operation whose
    # required scope is not in here answers 403 insufficientPermissions (a list is accepted).
    scopes: tuple[str, ...] = ALL_SCOPES
    latency_ms: float = Field(default=0.0, ge=0)
    faults: str = "none"
    window_s: float = Field(default=60.0, gt=0)
    audit_events: int | None = Field(default=None, ge=0)
    credits_per_window: int = Field(default=100_000, ge=1)
    now: datetime | None = None
    # Miro only accepts https callbacks. A local stack cannot easily serve TLS, so plain http is allowed
    # for loopback hosts only; every other host must be https exactly as the spec's pattern says.
    allow_http_loopback_callbacks: bool = True
    callback_timeout_s: float = Field(default=5.0, gt=0)
    # The token's user (OrgState.token_user) is a Company Admin with Content Admin permissions: GET
    # /v2/boards lists every board of the org. False: only the boards that user owns or was invited to,
    # and every other board answers 404 to its board-member endpoints, as Miro does for a board the user
    # cannot access.
    content_admin: bool = True

    @field_validator("scopes", mode="before")
    @classmethod
    def _clean_scopes(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError("scopes must be a list of scope names, not one string")
        if isinstance(value, list | tuple):
            scopes = [str(scope).strip() for scope in value]
            if any(not scope or " " in scope for scope in scopes):
                raise ValueError("a scope must be a non-empty name without spaces")
            return tuple(dict.fromkeys(scopes))
        return value

    @property
    def audit_event_count(self) -> int:
        return self.audit_events if self.audit_events is not None else self.members * 10

    @property
    def scim_window_s(self) -> float:
        return self.window_s / 2


class Clock:
    """Wall clock of the emulated org: starts at `config.now` (or real now) and advances in real time,
    so live events sort after generated ones while generated data stays deterministic."""

    def __init__(self, start: datetime | None) -> None:
        self._start = (start or datetime.now(UTC)).astimezone(UTC)
        self._origin = time.monotonic()

    @property
    def start(self) -> datetime:
        return self._start

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._origin)

    def now_ms(self) -> int:
        return to_ms(self.now())


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def iso_ms(epoch_ms: int) -> str:
    """Miro's timestamp format: UTC, milliseconds, trailing Z."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def iso_s(epoch_ms: int) -> str:
    """Second-precision UTC timestamp (as Miro renders member and board dates)."""
    return datetime.fromtimestamp(epoch_ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
