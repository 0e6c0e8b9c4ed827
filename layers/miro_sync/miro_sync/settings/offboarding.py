"""Settings of OffboardingFunction (and of `miro-sync offboard`, which reads the same variables)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field, field_validator

from miro_sync.settings import MiroSettings

_SEPARATORS = re.compile(r"[,;\s]+")


class ProtectedEmailsError(ValueError):
    """PROTECTED_EMAILS holds something that is not an email address."""


def parse_protected_emails(text: str) -> tuple[str, ...]:
    """Emails separated by commas, semicolons or whitespace; every entry must be an email address."""
    from miro_sync.offboarding.messages import EMAIL_RE

    entries = [entry for entry in _SEPARATORS.split(text.strip()) if entry]
    bad = [entry for entry in entries if len(entry) > 254 or not EMAIL_RE.match(entry)]
    if bad:
        shown = ", ".join(repr(entry[:60]) for entry in bad[:5])
        raise ProtectedEmailsError(
            f"PROTECTED_EMAILS: not an email address: {shown}; separate addresses with commas, "
            "semicolons or spaces"
        )
    return tuple(sorted({entry.lower() for entry in entries}))


class DefaultSuccessorError(ValueError):
    """DEFAULT_SUCCESSOR is not one email address."""


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
    # As configured: emails separated by commas, semicolons or whitespace. Parsed by `protected_emails`
    # (strictly: a bad entry is a configuration error the worker acts on, never an empty list).
    protected_emails_text: str = Field(default="", alias="PROTECTED_EMAILS")
    allow_admin_offboarding: bool = Field(default=False, alias="ALLOW_ADMIN_OFFBOARDING", strict=False)
    # Blast radius: destructive actions (suspend, delete) per rolling hour before further ones are held.
    # Same default as the template's MaxActionsPerHour parameter and the README.
    max_actions_per_hour: int = Field(default=25, alias="MAX_ACTIONS_PER_HOUR", ge=0)
    # Who takes over the boards (and team admin roles) of a leaver whose request names no successor;
    # empty: nobody. Checked like PROTECTED_EMAILS: a bad value refuses destructive actions.
    default_successor_text: str = Field(default="", alias="DEFAULT_SUCCESSOR")
    # Sign the leaver out everywhere after the deactivation (POST /v2/sessions/reset_all).
    reset_sessions: bool = Field(default=True, alias="RESET_SESSIONS", strict=False)
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

    @property
    def protected_emails(self) -> tuple[str, ...]:
        """The protected accounts, sorted and lower case; raises ProtectedEmailsError naming every bad
        entry. Not a validator on purpose: a bad list must not stop the function from starting (every
        record would then fail and retry into the DLQ); the worker refuses destructive actions instead."""
        return parse_protected_emails(self.protected_emails_text)

    @property
    def default_successor(self) -> str | None:
        """DEFAULT_SUCCESSOR, lower case, or None; raises ProtectedEmailsError-like ValueError when it
        is not one email address."""
        from miro_sync.offboarding.messages import EMAIL_RE

        text = self.default_successor_text.strip()
        if not text:
            return None
        if len(text) > 254 or not EMAIL_RE.match(text):
            raise DefaultSuccessorError(f"DEFAULT_SUCCESSOR: not one email address: {text[:60]!r}")
        return text.lower()

    @field_validator("allow_admin_offboarding", "reset_sessions", mode="before")
    @classmethod
    def _true_or_false(cls, value: object) -> object:
        # only the two words the template documents; "yes"/"1" would be a guess about intent
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered not in {"true", "false"}:
                raise ValueError("must be 'true' or 'false'")
            return lowered == "true"
        return value
