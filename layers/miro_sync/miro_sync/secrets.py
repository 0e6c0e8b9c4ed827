"""Bearer-token providers for the Miro clients.

A token provider is any zero-argument callable returning the current token. Providers that can
re-read a rotated secret also implement ``refresh()``; the clients call it once after a 401.
Token values are held in pydantic ``SecretStr`` so they never show up in reprs, logs or errors.

Secrets Manager access goes through Powertools Parameters (cached for ``max_age`` seconds per warm
container); it is imported lazily so importing this module on a cold start costs nothing.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

from pydantic import SecretStr


@runtime_checkable
class TokenProvider(Protocol):
    def __call__(self) -> str: ...


@runtime_checkable
class RefreshableTokenProvider(TokenProvider, Protocol):
    def refresh(self) -> str:
        """Bypass any cache and return the current token (after a 401, in case it was rotated)."""
        ...


class SecretFetcher(Protocol):
    """The slice of Powertools' ``SecretsProvider.get`` this module uses (fakes implement it in tests)."""

    def get(self, name: str, *, max_age: int | None = None, force_fetch: bool = False) -> Any: ...


class TokenUnavailableError(Exception):
    """The secret exists but holds no usable token (message names the secret, never its value)."""


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


class SecretsManagerToken:
    """Token read from AWS Secrets Manager through Powertools Parameters, cached ``max_age`` seconds."""

    def __init__(self, secret_name: str, max_age: int = 300, *, fetcher: SecretFetcher | None = None) -> None:
        self.secret_name = secret_name
        self.max_age = max_age
        self._fetcher = fetcher

    def _get_fetcher(self) -> SecretFetcher:
        if self._fetcher is None:
            # Lazy: Powertools Parameters pulls in boto3, which only the first real call needs.
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            self._fetcher = SecretsProvider()
        return self._fetcher

    def _read(self, force_fetch: bool) -> str:
        raw = self._get_fetcher().get(self.secret_name, max_age=self.max_age, force_fetch=force_fetch)
        return token_from_secret_value(raw, self.secret_name)

    def __call__(self) -> str:
        return self._read(force_fetch=False)

    def refresh(self) -> str:
        return self._read(force_fetch=True)

    def __repr__(self) -> str:
        return f"SecretsManagerToken(secret_name={self.secret_name!r}, max_age={self.max_age})"


def as_token_provider(token: TokenProvider | str) -> TokenProvider:
    return StaticToken(token) if isinstance(token, str) else token
