"""Per-function settings, built from the environment by the handler (logic never reads os.environ).

`MiroSettings` holds what every Miro-facing function needs; each function adds a module
`settings/<function>.py` with a subclass. `from_env` turns a missing or invalid variable into a
`ConfigurationError` that names the variable to set, so a misconfigured deployment fails at start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_MIRO_API_URL = "https://api.miro.com"
DEFAULT_MIRO_SCIM_URL = "https://miro.com/api/v1/scim"


class ConfigurationError(ValueError):
    """The environment is missing or has an invalid value; the message says what to set."""


class EnvSettings(BaseModel):
    """Frozen (hence hashable: handlers key their adapter cache on it) and built from env vars.

    Each field's alias is its environment variable name.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    # Variables that must be present and non-empty (beyond pydantic's own required fields, which
    # cover most); listed so the error can name every missing one at once.
    required_env: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Self:
        missing = [name for name in cls.required_env if not env.get(name, "").strip()]
        if missing:
            raise ConfigurationError(f"{cls.__name__}: set the environment variable(s) {', '.join(missing)}")
        # Empty strings mean "not set" so the field default applies (SAM renders unset params as "").
        values: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            key = field.alias or name
            raw = env.get(key)
            if raw is not None and raw.strip() != "":
                values[key] = raw.strip()
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                variable = ".".join(str(part) for part in error["loc"])
                problems.append(f"{variable}: {error['msg']}")
            raise ConfigurationError(f"{cls.__name__}: invalid environment: {'; '.join(problems)}") from None


class MiroSettings(EnvSettings):
    """Where Miro is and where its tokens live (Secrets Manager names, never the tokens)."""

    required_env: ClassVar[tuple[str, ...]] = ("MIRO_ORG_ID", "MIRO_TOKEN_SECRET")

    org_id: str = Field(alias="MIRO_ORG_ID", min_length=1)
    api_url: str = Field(default=DEFAULT_MIRO_API_URL, alias="MIRO_API_URL")
    scim_url: str = Field(default=DEFAULT_MIRO_SCIM_URL, alias="MIRO_SCIM_URL")
    token_secret: str = Field(alias="MIRO_TOKEN_SECRET", min_length=1)
    # Optional: without a SCIM token the sync cannot resolve SCIM ids (offboarding needs them).
    scim_token_secret: str | None = Field(default=None, alias="MIRO_SCIM_TOKEN_SECRET")

    @field_validator("api_url", "scim_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")
