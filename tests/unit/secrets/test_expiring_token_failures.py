"""ExpiringToken when something around the refresh fails: the write-back, the token endpoint during a
proactive refresh, a dead pair; a 401 right after a refresh; Miro's snake_case secret form; and a switch
from the expiring form to a plain token. Values never reach a log or error."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from botocore.exceptions import ClientError

from miro_sync.miro.errors import MiroUnavailable
from miro_sync.secrets import SecretsManagerToken, TokenPair, TokenUnavailableError, expiring_pair
from tests.unit.secrets.test_expiring_token import (
    T0,
    Clock,
    FakeFetcher,
    FakeMiro,
    FakeStore,
    provider,
    secret_json,
    stored,
)

VALUES = ("at-0", "rt-0", "at-1", "rt-1", "at-2", "rt-2", "client-secret-1", "client-id-1")


def access_denied(operation: str = "PutSecretValue") -> ClientError:
    return ClientError({"Error": {"Code": "AccessDeniedException", "Message": "denied"}}, operation)


class FailingSaves:
    """Wraps FakeStore.save: the next `failures` saves raise."""

    def __init__(self, store: FakeStore, failures: int) -> None:
        self.store, self.failures, self.attempts = store, failures, 0
        self._save = store.save
        store.save = self  # type: ignore[method-assign]

    def __call__(self, value: str, replaces: str) -> str | None:
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            raise access_denied()
        return self._save(value, replaces)


def assert_no_values(text: str) -> None:
    for value in VALUES:
        assert value not in text


# --- 1. a failed write-back keeps the new pair -------------------------------------------------------


def test_a_failed_write_back_keeps_the_new_pair_and_saves_it_later(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock, miro = Clock(), FakeMiro()
    store = FakeStore(secret_json("at-0", "rt-0", T0 + 3600))
    token = provider(store, miro, clock, max_age=1.0)
    saves = FailingSaves(store, failures=2)
    assert token() == "at-0"
    assert token.refresh() == "at-1"  # refreshed at Miro; the write-back failed
    assert stored(store)["accessToken"] == "at-0"
    assert "could not write" in caplog.text
    # Later calls keep the new pair: the secret's older pair (spent refresh token) is not taken.
    clock.now += 2
    assert token() == "at-1"
    assert saves.attempts == 1  # not yet due
    clock.now += 4
    assert token() == "at-1"  # due: retried, failed again
    assert saves.attempts == 2
    assert stored(store)["accessToken"] == "at-0"
    clock.now += 6
    assert token() == "at-1"  # saved now, conditionally on the version read before the refresh
    assert saves.attempts == 3
    assert stored(store)["accessToken"] == "at-1"
    assert stored(store)["refreshToken"] == "rt-1"
    assert miro.calls == ["rt-0"]  # never refreshed with the spent token
    clock.now += 60
    assert token() == "at-1"
    assert saves.attempts == 3
    assert_no_values(caplog.text)


def test_an_unsaved_pair_is_refreshed_with_its_own_refresh_token() -> None:
    clock, miro = Clock(), FakeMiro()
    store = FakeStore(secret_json("at-0", "rt-0", T0 + 3600))
    token = provider(store, miro, clock)
    FailingSaves(store, failures=1)
    assert token.refresh() == "at-1"
    clock.now += 3600 - 30  # the unsaved pair is due (its save retry is too)
    assert token() == "at-2"
    assert miro.calls == ["rt-0", "rt-1"]
    assert stored(store)["refreshToken"] == "rt-2"


def test_an_unsaved_pair_gives_way_to_a_newer_version_in_the_secret() -> None:
    clock, miro = Clock(), FakeMiro()
    store = FakeStore(secret_json("at-0", "rt-0", T0 + 3600))
    token = provider(store, miro, clock)
    FailingSaves(store, failures=1)
    assert token.refresh() == "at-1"
    store.write(secret_json("at-operator", "rt-operator", T0 + 7200))  # re-authorized meanwhile
    clock.now += 10
    assert token() == "at-operator"
    assert stored(store)["accessToken"] == "at-operator"


# --- 2. a proactive refresh that fails while the token is valid -------------------------------------


def test_a_failed_proactive_refresh_keeps_the_valid_token_and_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    clock, miro = Clock(), FakeMiro()
    store = FakeStore(secret_json("at-0", "rt-0", T0 + 3600))
    token = provider(store, miro, clock)
    outage = [True]
    real = miro.__call__

    def refresher(api_url: str, pair: TokenPair) -> Any:
        if outage[0]:
            miro.calls.append("outage")
            raise MiroUnavailable("Miro's token endpoint answered HTTP 503", method="POST", path="/x")
        return real(api_url, pair)

    token._refresher = refresher
    clock.now = T0 + 3600 - 30
    assert token() == "at-0"  # still valid: no error
    assert "could not refresh" in caplog.text
    assert miro.calls == ["outage"]
    clock.now += 2
    assert token() == "at-0"  # next attempt only a few seconds later
    assert miro.calls == ["outage"]
    clock.now += 4
    outage[0] = False
    assert token() == "at-2"  # FakeMiro numbers pairs by call: the outage was call 1
    assert stored(store)["accessToken"] == "at-2"
    assert_no_values(caplog.text)


def test_a_failed_refresh_of_an_expired_token_raises() -> None:
    clock, miro = Clock(), FakeMiro()
    store = FakeStore(secret_json("at-0", "rt-0", T0 + 3600))
    token = provider(store, miro, clock)

    def refresher(api_url: str, pair: TokenPair) -> Any:
        raise MiroUnavailable("Miro's token endpoint answered HTTP 503", method="POST", path="/x")

    token._refresher = refresher
    clock.now = T0 + 3600 + 1
    with pytest.raises(MiroUnavailable):
        token()


# --- 3. Miro's snake_case form -----------------------------------------------------------------------


def snake_case(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "access_token": "at-0",
        "refresh_token": "rt-0",
        "client_id": "client-id-1",
        "client_secret": "client-secret-1",
        "expires_at": T0 + 3600,
    }
    value.update(overrides)
    return value


@pytest.mark.parametrize("expires_at", [T0 + 3600, (T0 + 3600) * 1000, str(int(T0 + 3600))])
def test_snake_case_secrets_and_epoch_expiry_are_expiring_pairs(expires_at: Any) -> None:
    pair = expiring_pair(json.dumps(snake_case(expires_at=expires_at)), "miro/token")
    assert pair is not None
    assert pair.access_token.get_secret_value() == "at-0"
    assert pair.refresh_token.get_secret_value() == "rt-0"
    assert pair.client_secret.get_secret_value() == "client-secret-1"
    assert pair.expires_at.timestamp() == T0 + 3600


def test_camel_case_accepts_epoch_expires_at() -> None:
    value = json.loads(secret_json("at-0", "rt-0", T0))
    value["expiresAt"] = T0
    pair = expiring_pair(json.dumps(value), "x")
    assert pair is not None
    assert pair.expires_at.timestamp() == T0


def test_a_refresh_token_in_a_form_not_understood_fails_clearly() -> None:
    value = snake_case()
    del value["expires_at"]
    value["expires_in"] = 3600
    with pytest.raises(TokenUnavailableError, match="expiresAt") as caught:
        expiring_pair(json.dumps(value), "miro/token")
    assert "expires_in" in str(caught.value)
    assert_no_values(str(caught.value))
    with pytest.raises(TokenUnavailableError, match="clientSecret"):
        expiring_pair(json.dumps(snake_case(client_secret="")), "miro/token")


def test_a_snake_case_secret_is_refreshed_and_written_back() -> None:
    clock, miro = Clock(), FakeMiro()
    store = FakeStore(json.dumps(snake_case()))
    token = SecretsManagerToken(
        "miro/token",
        fetcher=FakeFetcher(store),
        store=store,
        expiring_options={"refresher": miro, "clock": clock, "sleep": lambda _: None},
    )
    assert token() == "at-0"
    assert token.refresh() == "at-1"
    assert stored(store)["refreshToken"] == "rt-1"


# --- 4. switching to a plain token ---------------------------------------------------------------------


class StaleFetcher(FakeFetcher):
    """Powertools' cache: keeps answering the value it first fetched."""

    def get(self, name: str, *, max_age: int | None = None, force_fetch: bool = False) -> Any:
        self.calls += 1
        if not hasattr(self, "cached") or force_fetch:
            self.cached = self.store.value
        return self.cached


def test_switching_to_a_plain_token_works_while_the_fetch_cache_is_stale() -> None:
    clock, miro = Clock(), FakeMiro()
    store = FakeStore(secret_json("at-0", "rt-0", T0 + 3600))
    token = SecretsManagerToken(
        "miro/token",
        max_age=300,
        fetcher=StaleFetcher(store),
        store=store,
        expiring_options={"refresher": miro, "clock": clock, "sleep": lambda _: None},
    )
    assert token() == "at-0"
    store.write("plain-token")
    clock.now += 301  # the expiring provider re-reads the secret
    assert token() == "plain-token"
    assert miro.calls == []


# --- 5. a dead pair --------------------------------------------------------------------------------------


def test_a_dead_pair_fails_at_once_and_rereads_the_secret_only_now_and_then() -> None:
    clock, miro = Clock(), FakeMiro(refresh_token="spent")
    store = FakeStore(secret_json("at-0", "rt-0", T0 + 3600))
    sleeps: list[float] = []
    token = provider(store, miro, clock, sleeps, max_age=300.0)
    with pytest.raises(TokenUnavailableError, match="re-authorize"):
        token.refresh()
    assert miro.calls == ["rt-0"]
    waited, loads = len(sleeps), store.loads
    for _ in range(3):
        clock.now += 1
        with pytest.raises(TokenUnavailableError, match="re-authorize"):
            token.refresh()
    assert miro.calls == ["rt-0"]  # not refused again
    assert len(sleeps) == waited  # no reload waits
    assert store.loads == loads  # not even a read
    clock.now += 30
    with pytest.raises(TokenUnavailableError):
        token.refresh()
    assert store.loads == loads + 1  # re-read once
    store.write(secret_json("at-new", "rt-new", T0 + 7200))  # an operator re-authorized
    clock.now += 31
    assert token.refresh() == "at-new"
    assert miro.calls == ["rt-0"]


# --- 6. a 401 right after a refresh ---------------------------------------------------------------------


def test_a_401_on_a_fresh_pair_only_rereads_the_secret() -> None:
    clock, miro = Clock(), FakeMiro()
    store = FakeStore(secret_json("at-0", "rt-0", T0 + 3600))
    token = provider(store, miro, clock)
    assert token.refresh() == "at-1"
    clock.now += 5
    assert token.refresh() == "at-1"  # a 401 with a pair 5 s old: nothing spent
    assert miro.calls == ["rt-0"]
    store.write(secret_json("at-other", "rt-other", T0 + 7200))
    assert token.refresh() == "at-other"
    assert miro.calls == ["rt-0"]
    miro.valid_refresh = "rt-other"
    clock.now += 31
    assert token.refresh() == "at-2"
    assert miro.calls == ["rt-0", "rt-other"]
