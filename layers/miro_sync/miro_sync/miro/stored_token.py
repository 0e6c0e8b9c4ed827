"""The forms a Miro token is stored in (a Secrets Manager secret, a ``--token`` argument):

* a plain token (a non-expiring Miro token; also JSON ``{"token": ...}``): ``token_from_secret_value``,
  held by a ``StaticToken`` when given directly;
* Miro's expiring tokens, JSON ``{"accessToken", "refreshToken", "clientId", "clientSecret",
  "expiresAt"}`` (``expiresAt`` ISO-8601 UTC; Miro's snake_case names accepted too): a ``TokenPair``,
  read by ``expiring_pair`` and kept fresh by ``expiring_token.ExpiringToken``.

Token values are held in pydantic ``SecretStr`` so they never show up in reprs, logs or errors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from miro_sync.miro.errors import TokenFormatError, TokenUnavailableError

if TYPE_CHECKING:
    from miro_sync.miro.oauth import IssuedTokens


class StaticToken:
    """A fixed token (CLI, local runs, tests)."""

    def __init__(self, value: str) -> None:
        if not value:
            raise TokenUnavailableError("empty Miro token")
        self._value = SecretStr(value)

    def __call__(self) -> str:
        return self._value.get_secret_value()

    def __repr__(self) -> str:
        return "StaticToken('**********')"


def token_from_secret_value(raw: object, secret_name: str) -> str:
    """Accept a plain-string secret or JSON ``{"token": "..."}`` (also ``access_token``)."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("{"):
            try:
                raw = json.loads(text)
            except ValueError:
                raise TokenUnavailableError(
                    f"secret {secret_name!r} looks like JSON but does not parse"
                ) from None
        else:
            if not text:
                raise TokenUnavailableError(f"secret {secret_name!r} is empty")
            return text
    if isinstance(raw, dict):
        for key in ("token", "access_token", "accessToken"):
            value = raw.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        raise TokenUnavailableError(f"secret {secret_name!r} is JSON without a non-empty 'token' field")
    raise TokenUnavailableError(f"secret {secret_name!r} holds no usable token")


def parse_expiry(value: object) -> datetime | None:
    """ISO-8601 (naive = UTC), epoch seconds or epoch milliseconds; None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TokenFormatError("expiresAt must be a time, not true/false")
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 100_000_000_000 else value  # epoch ms or epoch s
        return datetime.fromtimestamp(seconds, tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            return parse_expiry(number)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise TokenFormatError("expiresAt is neither an ISO-8601 time nor epoch seconds") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise TokenFormatError("expiresAt must be an ISO-8601 time or epoch seconds")


EXPIRING_FIELDS = ("accessToken", "refreshToken", "clientId", "clientSecret", "expiresAt")
# Miro's own (snake_case) names for the same fields, also accepted when reading.
_SNAKE_CASE = {
    "accessToken": "access_token",
    "refreshToken": "refresh_token",
    "clientId": "client_id",
    "clientSecret": "client_secret",
    "expiresAt": "expires_at",
}


def _field(data: Mapping[str, Any], key: str) -> Any:
    value = data.get(key)
    return value if value is not None else data.get(_SNAKE_CASE[key])


def _parse_expires_at(value: object, secret_name: str) -> datetime:
    """ISO-8601 (naive = UTC), epoch seconds or epoch milliseconds."""
    try:
        moment = parse_expiry(value)
    except (TokenFormatError, ValueError, OverflowError, OSError) as error:
        reason = str(error) if isinstance(error, TokenFormatError) else "expiresAt is not a valid time"
        raise TokenUnavailableError(f"secret {secret_name!r}: {reason}") from None
    if moment is None:  # pragma: no cover - checked as missing before
        raise TokenUnavailableError(f"secret {secret_name!r} holds an expiring token without expiresAt")
    return moment.astimezone(UTC)


def format_expires_at(moment: datetime) -> str:
    """`expiresAt` as written back to the secret (and shown in reprs): UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, repr=False)
class TokenPair:
    """The JSON form of the REST token secret. Every value but ``expires_at`` is a SecretStr."""

    access_token: SecretStr
    refresh_token: SecretStr
    client_id: SecretStr
    client_secret: SecretStr
    expires_at: datetime

    def __repr__(self) -> str:
        return f"TokenPair(expires_at={format_expires_at(self.expires_at)!r})"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], secret_name: str) -> TokenPair:
        """The camelCase form, or Miro's snake_case names (``access_token``, ``refresh_token``,
        ``client_id``, ``client_secret``, ``expires_at``); ``expiresAt`` is ISO-8601 (naive = UTC),
        epoch seconds or epoch milliseconds."""
        texts = {key: _field(data, key) for key in EXPIRING_FIELDS if key != "expiresAt"}
        missing = [key for key, value in texts.items() if not isinstance(value, str) or not value.strip()]
        expiry = _field(data, "expiresAt")
        if expiry is None or expiry == "" or (isinstance(expiry, str) and not expiry.strip()):
            missing.append("expiresAt")
        if missing:
            hint = ""
            if "expiresAt" in missing and "expires_in" in data:
                hint = " (expires_in is relative to an unknown time: store expiresAt, an absolute time)"
            raise TokenUnavailableError(
                f"secret {secret_name!r} holds an expiring token without non-empty {', '.join(missing)}{hint}"
            )
        return cls(
            SecretStr(texts["accessToken"].strip()),
            SecretStr(texts["refreshToken"].strip()),
            SecretStr(texts["clientId"].strip()),
            SecretStr(texts["clientSecret"].strip()),
            _parse_expires_at(expiry, secret_name),
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "accessToken": self.access_token.get_secret_value(),
                "refreshToken": self.refresh_token.get_secret_value(),
                "clientId": self.client_id.get_secret_value(),
                "clientSecret": self.client_secret.get_secret_value(),
                "expiresAt": format_expires_at(self.expires_at),
            }
        )

    def renewed(self, issued: IssuedTokens, now: float) -> TokenPair:
        return TokenPair(
            issued.access_token,
            issued.refresh_token,
            self.client_id,
            self.client_secret,
            datetime.fromtimestamp(now, tz=UTC) + timedelta(seconds=issued.expires_in),
        )

    def same_tokens(self, other: TokenPair) -> bool:
        return (
            self.access_token.get_secret_value() == other.access_token.get_secret_value()
            and self.refresh_token.get_secret_value() == other.refresh_token.get_secret_value()
        )


def expiring_pair(raw: object, secret_name: str) -> TokenPair | None:
    """The pair when `raw` is the expiring JSON form (it has ``refreshToken`` or ``refresh_token``),
    else None. A secret with a refresh token that is not a complete pair raises TokenUnavailableError
    rather than being used as a plain token."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    if isinstance(raw, str):
        text = raw.strip()
        if not text.startswith("{"):
            return None
        try:
            raw = json.loads(text)
        except ValueError:
            return None  # token_from_secret_value reports it
    if isinstance(raw, dict) and ("refreshToken" in raw or "refresh_token" in raw):
        return TokenPair.from_mapping(raw, secret_name)
    return None
