"""Settings of OffboardingFunction (and of `miro-sync offboard`, which reads the same variables)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field, field_validator

from miro_sync.settings import MiroSettings


class OffboardingSettings(MiroSettings):
    required_env: ClassVar[tuple[str, ...]] = (
        *MiroSettings.required_env,
        "MIRO_SCIM_TOKEN_SECRET",
        "MEMBERS_TABLE",
        "ACTIONS_TABLE",
        "STATE_TABLE",
        "IDEMPOTENCY_TABLE",
        "OFFBOARDING_QUEUE_URL",
    )

    members_table: str = Field(alias="MEMBERS_TABLE", min_length=3)
    actions_table: str = Field(alias="ACTIONS_TABLE", min_length=3)
    state_table: str = Field(alias="STATE_TABLE", min_length=3)
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", min_length=3)
    queue_url: str = Field(alias="OFFBOARDING_QUEUE_URL", min_length=1)
    # Where a malformed message goes (with its reason) besides the actions table. Optional so a
    # stack without it still runs; the template always sets it.
    dlq_url: str | None = Field(default=None, alias="OFFBOARDING_DLQ_URL")
    # Comma-separated in the environment; kept as a sorted tuple of lower-case emails (hashable).
    protected_emails: tuple[str, ...] = Field(default=(), alias="PROTECTED_EMAILS")
    allow_admin_offboarding: bool = Field(default=False, alias="ALLOW_ADMIN_OFFBOARDING", strict=False)
    # Blast radius: destructive actions (suspend, delete) per rolling hour before further ones are held.
    # Same default as the template's MaxActionsPerHour parameter and the README.
    max_actions_per_hour: int = Field(default=25, alias="MAX_ACTIONS_PER_HOUR", ge=0)
    # Length of SCIM's fixed rate windows (Miro: 30 s). Not in the template: only the benchmark and tests,
    # whose emulator compresses the windows, change it.
    scim_window_s: float = Field(default=30.0, alias="MIRO_SCIM_WINDOW_S", gt=0)
    # SCIM's limits hold for the token, not per container: each of the event source mapping's concurrent
    # containers paces to its share. The template sets OFFBOARDING_MAX_CONCURRENCY to the mapping's
    # MaximumConcurrency.
    max_concurrency: int = Field(default=1, alias="OFFBOARDING_MAX_CONCURRENCY", ge=1)
    # Overrides the resulting 1/OFFBOARDING_MAX_CONCURRENCY share (e.g. to leave room for the CLI).
    scim_budget_share_override: float | None = Field(default=None, alias="SCIM_BUDGET_SHARE", gt=0, le=1)
    # How long a finished request id stays in the Powertools idempotency table; also the dedupe window of
    # hand-written messages without a requestId. A request with an explicit id stays finished for good
    # (the actions table keeps it): a redelivery after expiry finds it finished and does nothing. A
    # hand-written message whose derived id finished longer ago than this is a new request.
    idempotency_ttl_s: int = Field(default=7 * 24 * 3600, alias="OFFBOARDING_IDEMPOTENCY_TTL_S", ge=60)

    @property
    def scim_budget_share(self) -> float:
        """The fraction of each SCIM limit this container may spend."""
        if self.scim_budget_share_override is not None:
            return self.scim_budget_share_override
        return 1.0 / self.max_concurrency

    def scim_limits(self, limits: Mapping[str, int]) -> dict[str, int]:
        """Miro's SCIM limits (requests per window) scaled to this container's share, at least 1 each."""
        return {method: max(1, int(limit * self.scim_budget_share)) for method, limit in limits.items()}

    @field_validator("protected_emails", mode="before")
    @classmethod
    def _split_emails(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(sorted({email.strip().lower() for email in value.split(",") if email.strip()}))
        return value

    @field_validator("allow_admin_offboarding", mode="before")
    @classmethod
    def _true_or_false(cls, value: object) -> object:
        # only the two words the template documents; "yes"/"1" would be a guess about intent
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered not in {"true", "false"}:
                raise ValueError("must be 'true' or 'false'")
            return lowered == "true"
        return value
