"""Settings of MembersSyncFunction."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from miro_sync.settings import MiroSettings

DEFAULT_INACTIVE_THRESHOLDS_DAYS: tuple[int, ...] = (30, 60, 90)


class MembersSyncSettings(MiroSettings):
    required_env: ClassVar[tuple[str, ...]] = (*MiroSettings.required_env, "MEMBERS_TABLE", "STATE_TABLE")

    members_table: str = Field(alias="MEMBERS_TABLE", min_length=3)
    state_table: str = Field(alias="STATE_TABLE", min_length=3)
    # The function's own name, set by Lambda; without it the sync cannot continue itself and
    # instead keeps going until the deadline guard stops it (the next schedule resumes).
    function_name: str | None = Field(default=None, alias="AWS_LAMBDA_FUNCTION_NAME")
    inactive_days: int = Field(default=90, alias="INACTIVE_DAYS", ge=1, le=3650)
    # Stop fetching and hand over to a new invocation when less than this remains.
    min_remaining_ms: int = Field(default=90_000, alias="SYNC_MIN_REMAINING_MS", ge=1_000)
    page_size: int = Field(default=100, alias="MEMBERS_PAGE_SIZE", ge=1, le=100)
    # Set by the template from the EnableWebhook condition: with the webhook deployed, a complete run
    # also checks Miro for board subscriptions that lost access.
    webhook_enabled: bool = Field(default=False, alias="WEBHOOK_ENABLED")

    @field_validator("members_table", "state_table")
    @classmethod
    def _no_spaces(cls, value: str) -> str:
        if any(ch.isspace() for ch in value):
            raise ValueError("table names contain no whitespace")
        return value

    @property
    def inactive_thresholds_days(self) -> tuple[int, ...]:
        return tuple(sorted({*DEFAULT_INACTIVE_THRESHOLDS_DAYS, self.inactive_days}))
