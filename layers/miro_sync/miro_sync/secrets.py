"""Bearer tokens kept in AWS Secrets Manager, for the Miro clients: ``SecretsManagerToken``.

The secret is read through Powertools Parameters (cached for ``max_age`` seconds per warm container);
it is imported lazily so importing this module on a cold start costs nothing. Two secret formats:

* a plain token (a non-expiring Miro token; also JSON ``{"token": ...}``): ``refresh()`` re-reads it;
* Miro's expiring tokens, JSON ``{"accessToken", "refreshToken", "clientId", "clientSecret",
  "expiresAt"}`` (``expiresAt`` ISO-8601 UTC): handed to ``miro.expiring_token.ExpiringToken``, which
  refreshes the pair at Miro shortly before ``expiresAt`` and after a 401, and writes the new pair back
  to the secret (``store.token_secret.SecretVersionStore``) conditionally on the version it read, so
  concurrent functions never lose the pair.

The token forms, the protocols and the expiring provider live in the Miro package (``miro/stored_token.py``,
``miro/token_provider.py``, ``miro/expiring_token.py``): the clients need them and must not import this
module, which builds on them. Their names stay importable from here.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol

from miro_sync.miro.errors import SecretNoLongerExpiringError
from miro_sync.miro.errors import TokenUnavailableError as TokenUnavailableError
from miro_sync.miro.expiring_token import DEAD_PAIR_RELOAD_S as DEAD_PAIR_RELOAD_S
from miro_sync.miro.expiring_token import DEFAULT_API_URL as DEFAULT_API_URL
from miro_sync.miro.expiring_token import DEFAULT_REFRESH_MARGIN_S as DEFAULT_REFRESH_MARGIN_S
from miro_sync.miro.expiring_token import DEFAULT_RELOAD_WAITS_S as DEFAULT_RELOAD_WAITS_S
from miro_sync.miro.expiring_token import FRESH_PAIR_S as FRESH_PAIR_S
from miro_sync.miro.expiring_token import RENEW_RETRY_S as RENEW_RETRY_S
from miro_sync.miro.expiring_token import SAVE_RETRY_S as SAVE_RETRY_S
from miro_sync.miro.expiring_token import ExpiringToken, PairStore
from miro_sync.miro.expiring_token import Refresher as Refresher
from miro_sync.miro.expiring_token import as_token_provider as as_token_provider
from miro_sync.miro.expiring_token import miro_refresher as miro_refresher
from miro_sync.miro.stored_token import EXPIRING_FIELDS as EXPIRING_FIELDS
from miro_sync.miro.stored_token import StaticToken as StaticToken
from miro_sync.miro.stored_token import TokenPair as TokenPair
from miro_sync.miro.stored_token import expiring_pair, token_from_secret_value
from miro_sync.miro.token_provider import RefreshableTokenProvider as RefreshableTokenProvider
from miro_sync.miro.token_provider import TokenProvider as TokenProvider

# The `name as name` imports: moved to the Miro package, still importable from here.


class SecretFetcher(Protocol):
    """The slice of Powertools' ``SecretsProvider.get`` this module uses (fakes implement it in tests)."""

    def get(self, name: str, *, max_age: int | None = None, force_fetch: bool = False) -> Any: ...


class SecretsManagerToken:
    """Token read from AWS Secrets Manager through Powertools Parameters, cached ``max_age`` seconds.

    A secret in the expiring JSON form is handed to an ``ExpiringToken`` that reads and writes it
    through ``store`` (default: ``store.token_secret.SecretVersionStore`` on the fetcher's boto3
    client), refreshes it at Miro and writes the new pair back (see ``ExpiringToken``).
    """

    def __init__(
        self,
        secret_name: str,
        max_age: int = 300,
        *,
        fetcher: SecretFetcher | None = None,
        store: PairStore | None = None,
        api_url: str | None = None,
        expiring_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.secret_name = secret_name
        self.max_age = max_age
        self._fetcher = fetcher
        self._store = store
        self._api_url = api_url
        self._expiring_options = dict(expiring_options or {})
        self._expiring: ExpiringToken | None = None
        self._lock = threading.Lock()

    def _get_fetcher(self) -> SecretFetcher:
        if self._fetcher is None:
            # Lazy: Powertools Parameters pulls in boto3, which only the first real call needs.
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            self._fetcher = SecretsProvider()
        return self._fetcher

    def _get_store(self) -> PairStore:
        if self._store is None:
            from miro_sync.store.token_secret import SecretVersionStore, secrets_manager_client

            self._store = SecretVersionStore(secrets_manager_client(self._fetcher), self.secret_name)
        return self._store

    def _read(self, force_fetch: bool) -> str:
        raw = self._get_fetcher().get(self.secret_name, max_age=self.max_age, force_fetch=force_fetch)
        if expiring_pair(raw, self.secret_name) is not None:
            return self._start_expiring()()
        return token_from_secret_value(raw, self.secret_name)

    def _start_expiring(self) -> ExpiringToken:
        with self._lock:
            if self._expiring is None:
                store = self._get_store()
                value, version = store.load()  # with its version: the conditional write needs it
                pair = expiring_pair(value, self.secret_name)
                if pair is None:  # pragma: no cover - changed between the two reads
                    raise TokenUnavailableError(f"secret {self.secret_name!r} changed format while read")
                options: dict[str, Any] = {"max_age": float(self.max_age), **self._expiring_options}
                self._expiring = ExpiringToken(
                    pair, version, store=store, name=self.secret_name, api_url=self._api_url, **options
                )
            return self._expiring

    def __call__(self) -> str:
        expiring = self._expiring
        if expiring is not None:
            try:
                return expiring()
            except SecretNoLongerExpiringError as switched:
                # The store read it just now; Powertools' cache may still hold the old JSON form.
                self._expiring = None
                return token_from_secret_value(switched.raw, self.secret_name)
        return self._read(force_fetch=False)

    def refresh(self) -> str:
        expiring = self._expiring
        if expiring is not None:
            try:
                return expiring.refresh()
            except SecretNoLongerExpiringError as switched:
                self._expiring = None
                return token_from_secret_value(switched.raw, self.secret_name)
        return self._read(force_fetch=True)

    def use_api_url(self, api_url: str) -> None:
        """The REST client's base URL, when none was given (for the token endpoint)."""
        if self._api_url is None:
            self._api_url = api_url
            if self._expiring is not None:
                self._expiring.use_api_url(api_url)

    def __repr__(self) -> str:
        return f"SecretsManagerToken(secret_name={self.secret_name!r}, max_age={self.max_age})"
