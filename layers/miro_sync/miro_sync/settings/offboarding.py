"""Settings of the OffboardingFunction, built once per container from the environment by the handler.

Standalone for now (the shared `MiroSettings` base of `settings/__init__.py` did not exist when this
was written); the field names follow the environment contract of docs/CONVENTIONS.md.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class SettingsError(ValueError):
    """Configuration is missing or invalid; the message names the variables to set."""


_REQUIRED_ENV: dict[str, str] = {
    "miro_api_url": "MIRO_API_URL",
    "miro_scim_url": "MIRO_SCIM_URL",
    "miro_org_id": "MIRO_ORG_ID",
    "miro_token_secret": "MIRO_TOKEN_SECRET",
    "miro_scim_token_secret": "MIRO_SCIM_TOKEN_SECRET",
    "members_table": "MEMBERS_TABLE",
    "actions_table": "ACTIONS_TABLE",
    "state_table": "STATE_TABLE",
    "idempotency_table": "IDEMPOTENCY_TABLE",
    "queue_url": "OFFBOARDING_QUEUE_URL",
}


class OffboardingSettings(BaseModel):
    """Frozen and hashable, so the handler can key its cached adapters on it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    miro_api_url: str = Field(min_length=1)
    miro_scim_url: str = Field(min_length=1)
    miro_org_id: str = Field(min_length=1)
    miro_token_secret: str = Field(min_length=1)
    miro_scim_token_secret: str = Field(min_length=1)
    members_table: str = Field(min_length=3)
    actions_table: str = Field(min_length=3)
    state_table: str = Field(min_length=3)
    idempotency_table: str = Field(min_length=3)
    queue_url: str = Field(min_length=1)
    protected_emails: tuple[str, ...] = ()
    allow_admin_offboarding: bool = False
    max_actions_per_hour: int = Field(default=50, ge=0)
    # How long a completed request id stays in the Powertools idempotency table. The actions table
    # keeps every request forever, so an expired key still cannot act twice (see offboarding.worker).
    idempotency_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OffboardingSettings:
        missing = [name for name in _REQUIRED_ENV.values() if not env.get(name)]
        if missing:
            raise SettingsError(
                f"OffboardingFunction needs these environment variables: {', '.join(missing)}"
            )
        values: dict[str, object] = {field: env[name] for field, name in _REQUIRED_ENV.items()}
        values["protected_emails"] = tuple(
            sorted(
                {
                    email.strip().lower()
                    for email in env.get("PROTECTED_EMAILS", "").split(",")
                    if email.strip()
                }
            )
        )
        allow_admins = env.get("ALLOW_ADMIN_OFFBOARDING", "false").strip().lower()
        if allow_admins not in {"true", "false"}:
            raise SettingsError("ALLOW_ADMIN_OFFBOARDING must be 'true' or 'false'")
        values["allow_admin_offboarding"] = allow_admins == "true"
        if env.get("MAX_ACTIONS_PER_HOUR"):
            values["max_actions_per_hour"] = env["MAX_ACTIONS_PER_HOUR"]
        try:
            return cls.model_validate(values)
        except ValidationError as invalid:
            names = ", ".join(
                _REQUIRED_ENV.get(str(error["loc"][0]), str(error["loc"][0]).upper())
                for error in invalid.errors()
            )
            raise SettingsError(f"invalid OffboardingFunction configuration ({names}): {invalid}") from None
