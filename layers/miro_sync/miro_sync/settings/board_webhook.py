"""Settings of BoardWebhookFunction (no Miro access: the webhook only receives)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from miro_sync.settings import EnvSettings

DEFAULT_MAX_BODY_BYTES = 256 * 1024


class BoardWebhookSettings(EnvSettings):
    required_env: ClassVar[tuple[str, ...]] = ("BOARD_EVENTS_TABLE", "MEMBERS_TABLE", "STATE_TABLE")

    board_events_table: str = Field(alias="BOARD_EVENTS_TABLE", min_length=3)
    members_table: str = Field(alias="MEMBERS_TABLE", min_length=3)
    state_table: str = Field(alias="STATE_TABLE", min_length=3)
    board_event_retention_days: int = Field(default=400, alias="BOARD_EVENT_RETENTION_DAYS", ge=1, le=3650)
    # Miro's deliveries are a few KiB; the cap answers 413 long before Function URL's 6 MB limit.
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, alias="WEBHOOK_MAX_BODY_BYTES", ge=1024)
    # A disabled or deleted subscription is refused at most this long after the CLI changed it.
    subscription_cache_seconds: float = Field(default=30.0, alias="WEBHOOK_SUBSCRIPTION_CACHE_SECONDS", ge=0)
