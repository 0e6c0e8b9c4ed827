"""ExpiringToken with fakes for Miro's token endpoint and the secret: proactive refresh before expiresAt,
the 401 path, a lost race reloads the winner's pair, and secret values never reach a repr, log or error."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from miro_sync.miro.oauth import IssuedTokens, RefreshRefusedError
from miro_sync.secrets import (
    ExpiringToken,
    RefreshableTokenProvider,
    SecretsManagerToken,
    StaticToken,
    TokenPair,
    TokenUnavailableError,
    as_token_provider,
    expiring_pair,
)

T0 = 1_800_000_000.0


def secret_json(access: str, refresh: str, expires_at: float, **extra: str) -> str:
    return json.dumps(
        {
            "accessToken": access,
            "refreshToken": refresh,
            "clientId": "client-id-1",
            "clientSecret": "client-secret-1",
            "expiresAt": datetime.fromtimestamp(expires_at, tz=UTC).isoformat().replace("+00:00", "Z"),
            **extra,
        }
    )


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class FakeMiro:
    """Miro's token endpoint: a refresh token works once and yields a new pair."""

    def __init__(self, refresh_token: str = "rt-0", expires_in: float = 3600) -> None:  # noqa: S107
        self.valid_refresh = refresh_token
        self.expires_in = expires_in
        self.calls: list[str] = []
        self.api_urls: list[str] = []
        self.before_answer: Callable[[], None] | None = None

    def __call__(self, api_url: str, pair: TokenPair) -> IssuedTokens:
        used = pair.refresh_token.get_secret_value()
        self.calls.append(used)
        self.api_urls.append(api_url)
        assert pair.client_secret.get_secret_value() == "client-secret-1"
        if used != self.valid_refresh:
            raise RefreshRefusedError("Miro refused the token refresh", status=401, code="oauthError")
        n = len(self.calls)
        self.valid_refresh = f"rt-{n}"
        if self.before_answer is not None:
            self.before_answer()
        return IssuedTokens(SecretStr(f"at-{n}"), SecretStr(f"rt-{n}"), self.expires_in)


class FakeStore:
    """The secret: AWSCURRENT value + version; save is conditional on the version read."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.version = "v0"
        self.saves = 0
        self.loads = 0
        self.on_load: Callable[[int], None] | None = None
        self.before_save: Callable[[], None] | None = None

    def load(self) -> tuple[str, str]:
        self.loads += 1
        if self.on_load is not None:
            self.on_load(self.loads)
        return self.value, self.version

    def write(self, value: str) -> None:
        self.saves += 1
        self.value, self.version = value, f"v{self.saves}"

    def save(self, value: str, replaces: str) -> str | None:
        if self.before_save is not None:
            hook, self.before_save = self.before_save, None
            hook()
        if replaces != self.version:
            return None
        self.write(value)
        return self.version


def provider(
    store: FakeStore, miro: FakeMiro, clock: Clock, sleeps: list[float] | None = None, **options: Any
) -> ExpiringToken:
    value, version = store.load()
    pair = expiring_pair(value, "miro/token")
    assert pair is not None
    waits = sleeps if sleeps is not None else []
    return ExpiringToken(
        pair,
        version,
        store=store,
        name="miro/token",
        api_url="https://api.example",
        refresher=miro,
        clock=clock,
        sleep=waits.append,
        **options,
    )


def stored(store: FakeStore) -> dict[str, str]:
    value: dict[str, str] = json.loads(store.value)
    return value


def test_uses_the_pair_until_shortly_before_expires_at_then_refreshes_and_writes_back() -> None:
    clock, miro = Clock(), FakeMiro()
    store = FakeStore(secret_json("at-0", "rt-0", T0 + 3600))
    token = provider(store, miro, clock)
    assert isinstance(token, RefreshableTokenProvider)
    assert token() == "at-0"
    clock.now = T0 + 3600 - 61
    assert token() == "at-0"
    assert miro.calls == []
    clock.now = T0 + 3600 - 59  # inside the 60 s margin
    assert token() == "at-1"
    assert miro.calls == ["rt-0"]
    assert miro.api_urls == ["https://api.example"]
    written = stored(store)
    assert written["accessToken"] == "at-1"
    assert written["refreshToken"] == "rt-1"
    assert written["clientId"] == "client-id-1"
    assert written["clientSecret"] == "client-secret-1"
    assert datetime.fromisoformat(written["expiresAt"]) == datetime.fromtimestamp(clock.now + 3600, tz=UTC)
    assert written["expiresAt"].endswith("Z")
    assert token() == "at-1"
    assert len(miro.calls) == 1


def test_margin_is_at_most_a_quarter_of_the_lifetime_left() -> None:
    clock, miro = Clock(), FakeMiro(expires_in=2)
    store = FakeStore(secret_json("at-0", "rt-0", T0 + 2))
    token = provider(store, miro, clock)
    clock.now = T0 + 1.4
    assert token() == "at-0"  # a 2 s token is not refreshed at once
    clock.now = T0 + 1.6
    assert token() == "at-1"


def test_a_401_refreshes_at_miro_and_retries_with_the_new_token() -> None:
    clock, miro = Clock(), FakeMiro()
    store = FakeStore(secret_json("at-0", "rt-0", T0 + 3600))
    token = provider(store, miro, clock)
    assert token() == "at-0"
    assert token.refresh() == "at-1"
    assert stored(store)["accessToken"] == "at-1"


def test_a_pair_another_function_wrote_is_used_without_refreshing() -> None:
    clock, miro = Clock(), FakeMiro()
    store = FakeStore(secret_json("at-0", "rt-0", T0 + 3600))
    token = provider(store, miro, clock)
    assert token() == "at-0"
    store.write(secret_json("at-other", "rt-other", T0 + 7200))
    assert token.refresh() == "at-other"  # after the 401 the secret is read first
    assert miro.calls == []
    assert token.adopted == 1


def test_losing_the_write_race_reloads_the_winners_pair() -> None:
    clock, miro = Clock(), FakeMiro()
    store = FakeStore(secret_json("at-0", "rt-0", T0 + 3600))
    token = provider(store, miro, clock)
    winner = secret_json("at-winner", "rt-winner", T0 + 7200)
    store.before_save = lambda: store.write(winner)
    assert token.refresh() == "at-winner"
    assert store.value == winner  # ours never became current
    assert miro.calls == ["rt-0"]


def test_a_refused_refresh_waits_for_the_winners_pair() -> None:
    clock, miro = Clock(), FakeMiro(refresh_token="spent-by-someone-else")
    store = FakeStore(secret_json("at-0", "rt-0", T0 + 3600))
    sleeps: list[float] = []
    token = provider(store, miro, clock, sleeps)
    base_loads = store.loads

    def winner_arrives(loads: int) -> None:
        if loads == base_loads + 3:
            store.write(secret_json("at-winner", "rt-winner", T0 + 7200))

    store.on_load = winner_arrives
    assert token.refresh() == "at-winner"
    assert len(sleeps) == 2
    assert miro.calls == ["rt-0"]


def test_a_refused_refresh_with_no_newer_pair_fails_clearly_without_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    clock, miro = Clock(), FakeMiro(refresh_token="spent")
    store = FakeStore(secret_json("at-0", "rt-0", T0 + 3600))
    token = provider(store, miro, clock, reload_waits=(0.1, 0.1))
    with pytest.raises(TokenUnavailableError, match="re-authorize") as caught:
        token.refresh()
    text = f"{caught.value!r} {caught.value} {token!r} {caplog.text}"
    for value in ("at-0", "rt-0", "client-secret-1", "client-id-1"):
        assert value not in text


def test_threads_sharing_a_provider_refresh_once() -> None:
    clock, miro = Clock(), FakeMiro()
    store = FakeStore(secret_json("at-0", "rt-0", T0 + 3600))
    token = provider(store, miro, clock)
    barrier = threading.Barrier(8)
    results: list[str] = []

    def worker() -> None:
        assert token() == "at-0"
        barrier.wait()
        results.append(token.refresh())  # every thread saw a 401 with at-0

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["at-1"] * 8
    assert miro.calls == ["rt-0"]
    assert store.saves == 1


def test_values_never_reach_a_repr_or_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock, miro = Clock(), FakeMiro()
    store = FakeStore(secret_json("at-0", "rt-0", T0 + 10))
    token = provider(store, miro, clock)
    pair = expiring_pair(store.value, "x")
    clock.now = T0 + 9
    assert token() == "at-1"
    text = f"{token!r} {pair!r} {caplog.text}"
    for value in ("at-0", "rt-0", "at-1", "rt-1", "client-secret-1", "client-id-1"):
        assert value not in text
    assert "refreshed" in caplog.text


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        (json.dumps({"accessToken": "a", "refreshToken": "r"}), "clientId, clientSecret, expiresAt"),
        (secret_json("a", "r", T0).replace("Z", "not-a-time"), "expiresAt"),
    ],
)
def test_incomplete_expiring_secrets_fail_clearly(value: str, complaint: str) -> None:
    with pytest.raises(TokenUnavailableError, match=complaint) as caught:
        expiring_pair(value, "miro/token")
    assert "client-secret-1" not in str(caught.value)


def test_naive_expires_at_is_utc() -> None:
    value = json.loads(secret_json("a", "r", T0))
    value["expiresAt"] = "2027-01-01T00:00:00"
    pair = expiring_pair(json.dumps(value), "x")
    assert pair is not None
    assert pair.expires_at == datetime(2027, 1, 1, tzinfo=UTC)


# --- the CLI's --token and SecretsManagerToken --------------------------------------------------


def test_cli_token_accepts_the_json_form_and_keeps_the_new_pair_in_memory() -> None:
    expires = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()
    value = secret_json("at-0", "rt-0", T0).replace(
        json.loads(secret_json("a", "r", T0))["expiresAt"], expires
    )
    token = as_token_provider(value)
    assert isinstance(token, ExpiringToken)
    assert token() == "at-0"
    miro = FakeMiro()
    token._refresher = miro
    assert token.refresh() == "at-1"
    assert token() == "at-1"
    assert miro.calls == ["rt-0"]
    assert isinstance(as_token_provider("plain"), StaticToken)
    assert as_token_provider(json.dumps({"accessToken": "only-access"}))() == "only-access"


class FakeFetcher:
    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.calls = 0

    def get(self, name: str, *, max_age: int | None = None, force_fetch: bool = False) -> Any:
        self.calls += 1
        return self.store.value


def test_secrets_manager_token_hands_the_json_form_to_an_expiring_token() -> None:
    clock, miro = Clock(), FakeMiro()
    store = FakeStore(secret_json("at-0", "rt-0", T0 + 3600))
    token = SecretsManagerToken(
        "miro/token",
        fetcher=FakeFetcher(store),
        store=store,
        expiring_options={"refresher": miro, "clock": clock, "sleep": lambda _: None},
    )
    token.use_api_url("http://emulator")
    assert token() == "at-0"
    assert token.refresh() == "at-1"
    assert miro.api_urls == ["http://emulator"]
    assert stored(store)["accessToken"] == "at-1"
    assert "at-" not in repr(token)
    # An operator switches the secret back to a plain token: the next read after a 401 uses it.
    store.write("plain-token")
    assert token.refresh() == "plain-token"
