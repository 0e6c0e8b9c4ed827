"""Miro's expiring access tokens, kept fresh: ``ExpiringToken`` refreshes the pair at Miro
(``oauth.refresh_access_token``) shortly before ``expiresAt`` and after a 401, and writes the new pair back
to where it is stored (a ``PairStore``: the Secrets Manager secret, through ``miro_sync.secrets``)
conditionally on the version it read, so concurrent functions never lose the pair.

``as_token_provider`` turns a ``--token`` string (plain, or the expiring JSON form) into a provider; the
clients call it on whatever token they are given.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from pydantic import SecretStr

from miro_sync.miro.errors import RefreshRefusedError, SecretNoLongerExpiringError, TokenUnavailableError
from miro_sync.miro.stored_token import (
    StaticToken,
    TokenPair,
    expiring_pair,
    format_expires_at,
    token_from_secret_value,
)
from miro_sync.miro.token_provider import TokenProvider

if TYPE_CHECKING:
    from miro_sync.miro.oauth import IssuedTokens

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.miro.com"
# Miro's expiring access tokens live an hour: refresh this long before expiresAt (at most a quarter of
# the lifetime left when the pair was first seen, so short-lived test tokens are not refreshed at once).
DEFAULT_REFRESH_MARGIN_S = 60.0
# After Miro refuses our refresh token (another function spent it), wait for that function's pair to
# reach the secret: reload after each of these waits.
DEFAULT_RELOAD_WAITS_S = (0.2, 0.4, 0.8, 1.6, 3.2)
# A refreshed pair that could not be written back is kept in memory and saved again this often.
SAVE_RETRY_S = 5.0
# A proactive refresh that failed while the access token is still valid is tried again this much later.
RENEW_RETRY_S = 5.0
# After Miro refused the pair and no newer one appeared, the secret is re-read at most this often
# (or every max_age, if shorter); calls in between fail at once without spending anything.
DEAD_PAIR_RELOAD_S = 30.0
# A 401 with a pair refreshed or taken from the secret this recently only re-reads the secret: a
# brand-new pair is not expired, so spending its refresh token at Miro would not help.
FRESH_PAIR_S = 30.0


class PairStore(Protocol):
    """Where an expiring pair lives (``store.token_secret.SecretVersionStore``; fakes in tests)."""

    def load(self) -> tuple[str, str]:
        """(value, version id), read now."""
        ...

    def save(self, value: str, replaces: str) -> str | None:
        """Write `value` if `replaces` is still current: the new version id, or None if another writer won."""
        ...


Refresher = Callable[[str, TokenPair], "IssuedTokens"]


def miro_refresher(api_url: str, pair: TokenPair) -> IssuedTokens:
    """The real refresh: `POST {api_url}/v1/oauth/token` (lazy import: only expiring tokens need it)."""
    from miro_sync.miro.oauth import refresh_access_token

    return refresh_access_token(
        api_url,
        refresh_token=pair.refresh_token.get_secret_value(),
        client_id=pair.client_id.get_secret_value(),
        client_secret=pair.client_secret.get_secret_value(),
    )


class ExpiringToken:
    """Miro's expiring access token, refreshed with its refresh token shortly before ``expiresAt``
    (proactively, in ``__call__``) and after a 401 (``refresh()``).

    With a ``store`` (the Secrets Manager secret) the new pair is written back conditionally on the
    secret version this provider read, so that concurrent functions never lose it:

    1. before refreshing, the secret is read again: if it holds another pair (another function
       refreshed), that pair is used and nothing is refreshed;
    2. otherwise the pair is refreshed at Miro and saved as a new version that becomes AWSCURRENT
       only if the version read in 1. still is; if another writer won, its pair is reloaded and used;
    3. if Miro refuses the refresh token (another function spent it a moment ago), the secret is
       reloaded after short waits until that function's pair shows up.

    Without a store (a JSON ``--token`` in the CLI) the new pair is kept in memory only: it cannot be
    written back anywhere, so the pair passed in is spent after the first refresh.

    Failures are contained where the pair is still usable:

    * a write-back that fails for any reason but a lost race (access denied, throttling, network)
      keeps the new pair in memory, marked unsaved, and retries the conditional write at most every
      ``SAVE_RETRY_S`` on later calls; meanwhile the secret's older pair (the version read before the
      refresh, whose refresh token is spent) is never taken over it;
    * a proactive refresh that fails while the access token is still valid logs a warning, keeps the
      token and tries again ``RENEW_RETRY_S`` later; only an expired token raises;
    * after Miro refused the pair and no newer one appeared, calls fail at once (no second refusal,
      no reload waits) and the secret is re-read at most every ``DEAD_PAIR_RELOAD_S``;
    * a 401 with a pair refreshed or taken over less than ``FRESH_PAIR_S`` ago only re-reads the
      secret instead of spending the new refresh token.

    Threads sharing one provider refresh once: a thread whose request failed with a token that another
    thread has already replaced just gets the new token. Values never reach a repr, log or error.
    """

    def __init__(
        self,
        pair: TokenPair,
        version: str | None = None,
        *,
        store: PairStore | None = None,
        name: str = "REST token",
        api_url: str | None = None,
        refresher: Refresher = miro_refresher,
        refresh_margin_s: float = DEFAULT_REFRESH_MARGIN_S,
        max_age: float | None = None,
        reload_waits: Sequence[float] = DEFAULT_RELOAD_WAITS_S,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self._store = store
        self._api_url = api_url
        self._refresher = refresher
        self._margin_cap = refresh_margin_s
        self._max_age = max_age
        self._reload_waits = tuple(reload_waits)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.RLock()
        self._local = threading.local()
        self.refreshes = 0  # refreshes this provider did at Miro
        self.adopted = 0  # pairs another writer refreshed, taken from the store
        self._unsaved = False  # the pair in memory is newer than the secret (its write-back failed)
        self._next_save_at = 0.0
        self._refused: SecretStr | None = None  # a refresh token Miro refused, with no newer pair found
        self._refused_checked_at = 0.0
        self._set(pair, version, fresh=False)

    def __repr__(self) -> str:
        stored = "secret" if self._store is not None else "memory"
        expires = format_expires_at(self._pair.expires_at)
        return f"ExpiringToken(name={self.name!r}, kept_in={stored!r}, expires_at={expires!r})"

    # --- the provider interface ---------------------------------------------------------------
    def __call__(self) -> str:
        with self._lock:
            now = self._clock()
            self._retry_save_if_due(now)
            if now >= self._refresh_at:
                self._renew_proactively(now)
            elif (
                self._store is not None
                and self._max_age is not None
                and now - self._loaded_at >= self._max_age
            ):
                self._reload_if_changed()
            token = self._pair.access_token.get_secret_value()
        self._local.last = token
        return token

    def refresh(self) -> str:
        """After a 401: the token that failed in this thread is replaced (by another thread, another
        function via the secret, or a refresh at Miro), and the new one returned."""
        failed = getattr(self._local, "last", None)
        with self._lock:
            now = self._clock()
            self._retry_save_if_due(now)
            current = self._pair.access_token.get_secret_value()
            if failed is None or failed == current:
                if self._store is not None and now - self._fresh_at < FRESH_PAIR_S:
                    # A pair this new has not expired: the 401 is not cured by spending its refresh
                    # token. Only look for a pair another function wrote since.
                    self._reload_if_changed()
                else:
                    self._renew(failed=current)
            token = self._pair.access_token.get_secret_value()
        self._local.last = token
        return token

    @property
    def expires_at(self) -> datetime:
        return self._pair.expires_at

    def api_url(self) -> str:
        return (self._api_url or os.environ.get("MIRO_API_URL") or DEFAULT_API_URL).rstrip("/")

    def use_api_url(self, api_url: str) -> None:
        """The REST client's base URL, when none was given (the token endpoint lives on the same host)."""
        if self._api_url is None:
            self._api_url = api_url

    # --- internals (under self._lock) ---------------------------------------------------------
    def _set(self, pair: TokenPair, version: str | None, *, fresh: bool = True) -> None:
        self._pair = pair
        self._version = version
        self._unsaved = False
        now = self._clock()
        self._loaded_at = now
        self._fresh_at = now if fresh else float("-inf")
        left = pair.expires_at.timestamp() - now
        margin = min(self._margin_cap, max(0.0, left) / 4)
        self._refresh_at = pair.expires_at.timestamp() - margin

    def _load(self) -> tuple[TokenPair, str] | None:
        if self._store is None:
            return None
        raw, version = self._store.load()
        pair = expiring_pair(raw, self.name)
        if pair is None:
            raise SecretNoLongerExpiringError(raw)
        return pair, version

    def _adopt_if_other(self, loaded: tuple[TokenPair, str] | None) -> bool:
        if loaded is None:
            return False
        pair, version = loaded
        if self._unsaved and version == self._version:
            # The version our unsaved pair replaces: its refresh token is spent, ours is the live one.
            self._loaded_at = self._clock()
            return False
        if pair.same_tokens(self._pair):
            self._version = version
            self._loaded_at = self._clock()
            return False
        self._set(pair, version)
        self.adopted += 1
        logger.info("took the Miro token pair another function refreshed", extra={"secret": self.name})
        return True

    def _reload_if_changed(self) -> None:
        self._adopt_if_other(self._load())

    def _renew_proactively(self, now: float) -> None:
        """The refresh before expiresAt: while the token is still valid a failure only postpones it."""
        try:
            self._renew(failed=None)
        except SecretNoLongerExpiringError:
            raise
        except Exception as error:
            expires = self._pair.expires_at.timestamp()
            if self._clock() >= expires:
                raise
            self._refresh_at = min(now + RENEW_RETRY_S, expires)
            logger.warning(
                "could not refresh the Miro token pair before it expires; using the current token "
                "and trying again shortly",
                extra={"secret": self.name, "error": _error_name(error)},
            )

    def _refused_pair_error(self) -> TokenUnavailableError:
        return TokenUnavailableError(
            f"Miro refused to refresh the token in {self.name!r} and no newer pair appeared; "
            "re-authorize the app and store a new pair"
        )

    def _dead_pair_reload_s(self) -> float:
        if self._max_age is None:
            return DEAD_PAIR_RELOAD_S
        return min(DEAD_PAIR_RELOAD_S, self._max_age)

    def _renew(self, failed: str | None) -> None:
        refused = self._refused
        if refused is not None and refused.get_secret_value() == self._pair.refresh_token.get_secret_value():
            if self._recover_refused_pair():
                return
        # 1. Another function may have refreshed already: use its pair.
        elif self._adopt_if_other(self._load()) and self._clock() < self._refresh_at:
            return
        # 2. Refresh at Miro with the pair we hold.
        issued = self._refresh_or_adopt()
        if issued is None:
            return
        self.refreshes += 1
        self._store_renewed(self._pair.renewed(issued, self._clock()))

    def _recover_refused_pair(self) -> bool:
        """Miro already refused this pair: fail at once, re-reading the secret only now and then. True
        when another function's newer pair was adopted and is still fresh."""
        now = self._clock()
        if self._store is None or now - self._refused_checked_at < self._dead_pair_reload_s():
            raise self._refused_pair_error()
        self._refused_checked_at = now
        if not self._adopt_if_other(self._load()):
            raise self._refused_pair_error()
        self._refused = None
        return self._clock() < self._refresh_at

    def _refresh_or_adopt(self) -> IssuedTokens | None:
        """Miro's new tokens; None when another function's pair was adopted instead."""
        try:
            return self._refresher(self.api_url(), self._pair)
        except RefreshRefusedError:
            # 3. Spent by someone else a moment ago (or revoked): wait for their pair in the secret.
            for wait in self._reload_waits if self._store is not None else ():
                self._sleep(wait)
                if self._adopt_if_other(self._load()):
                    return None
            self._refused = self._pair.refresh_token
            self._refused_checked_at = self._clock()
            raise self._refused_pair_error() from None

    def _store_renewed(self, renewed: TokenPair) -> None:
        if self._store is None or self._version is None:
            self._set(renewed, self._version)
            return
        try:
            version = self._store.save(renewed.to_json(), self._version)
        except Exception as error:
            # The refresh token is spent at Miro: the new pair exists only here. Keep it and write it
            # back later; raising would lose it for every function.
            read_version = self._version
            self._set(renewed, read_version)
            self._keep_unsaved(error)
            return
        if version is not None:
            self._set(renewed, version)
            logger.info("refreshed the Miro token pair", extra={"secret": self.name})
            return
        # Lost the race to another writer: its pair is current, ours never will be.
        logger.info("another function wrote the Miro token pair first; using it", extra={"secret": self.name})
        if not self._adopt_if_other(self._load()):
            self._set(renewed, self._version)  # pragma: no cover - the store said someone else won

    def _keep_unsaved(self, error: BaseException) -> None:
        self._unsaved = True
        self._next_save_at = self._clock() + SAVE_RETRY_S
        logger.error(
            "could not write the refreshed Miro token pair back to the secret; keeping it in memory "
            "and retrying",
            extra={"secret": self.name, "error": _error_name(error)},
        )

    def _retry_save_if_due(self, now: float) -> None:
        """Write an unsaved pair back (conditionally on the version it replaces), at most every
        SAVE_RETRY_S; failures are logged and leave the pair in memory."""
        if not self._unsaved or self._store is None or self._version is None or now < self._next_save_at:
            return
        try:
            version = self._store.save(self._pair.to_json(), self._version)
        except Exception as error:
            self._keep_unsaved(error)
            return
        if version is not None:
            self._unsaved = False
            self._version = version
            self._loaded_at = self._clock()
            logger.info("wrote the refreshed Miro token pair back to the secret", extra={"secret": self.name})
            return
        # Someone wrote a newer version since (an operator storing a new pair): the secret wins.
        self._unsaved = False
        try:
            self._reload_if_changed()
        except SecretNoLongerExpiringError:
            raise
        except Exception as error:
            self._unsaved = True
            self._next_save_at = self._clock() + SAVE_RETRY_S
            logger.warning(
                "could not re-read the Miro token secret",
                extra={"secret": self.name, "error": _error_name(error)},
            )
            return
        logger.warning(
            "the secret changed while the refreshed Miro token pair was unsaved; using the secret's pair",
            extra={"secret": self.name},
        )


def _error_name(error: BaseException) -> str:
    """The error's type and AWS/Miro code, never its message (which could echo a request)."""
    name = type(error).__name__
    response = getattr(error, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    if code is None:
        code = getattr(error, "code", None)
    return f"{name}({code})" if isinstance(code, str) and code else name


def as_token_provider(token: TokenProvider | str) -> TokenProvider:
    """A provider for a ``--token`` string: a plain token, or the expiring JSON form (refreshed at Miro
    and kept in memory: a CLI run cannot write the new pair back, so store the pair it started with
    nowhere else that still needs it)."""
    if not isinstance(token, str):
        return token
    pair = expiring_pair(token, "--token")
    if pair is not None:
        return ExpiringToken(pair, name="--token")
    if token.strip().startswith("{"):
        return StaticToken(token_from_secret_value(token, "--token"))
    return StaticToken(token)
