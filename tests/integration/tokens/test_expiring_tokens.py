"""Expiring OAuth tokens end to end: the emulator's access tokens expire every second or two, the REST
token secret (moto server) holds the JSON pair, and the functions refresh it and write it back."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from miro_emulator import EmulatorConfig, RunningEmulator, start_emulator
from miro_sync.miro.client import MiroRestClient
from miro_sync.miro.http import RateLimitPacer
from miro_sync.secrets import SecretsManagerToken
from miro_sync_cli.local.stack import LocalStack, MiroConnection

pytestmark = pytest.mark.integration

# Access tokens live a second; the 150 ms latency per request stays well inside the refresh margin
# (a quarter of the lifetime), so a token is refreshed before any request meets it expired.
TTL_S = 1.0
SCHEDULED_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "5b1bd5a9-2f2b-4c4e-9f0a-1a2b3c4d5e6f",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-03-01T12:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/miro-sync-members"],
    "detail": {},
}


def first_pair(emulator: RunningEmulator) -> str:
    config = emulator.config
    assert config.token_ttl_s is not None
    expires_at = datetime.now(UTC) + timedelta(seconds=config.token_ttl_s)
    return json.dumps(
        {
            "accessToken": config.token,
            "refreshToken": config.refresh_token,
            "clientId": config.client_id,
            "clientSecret": config.client_secret,
            "expiresAt": expires_at.isoformat().replace("+00:00", "Z"),
        }
    )


def connect(stack: LocalStack, emulator: RunningEmulator) -> None:
    stack.connect_miro(
        MiroConnection(
            emulator.base_url, emulator.scim_url, emulator.org_id, first_pair(emulator), emulator.scim_token
        )
    )


def stored_pair(stack: LocalStack) -> dict[str, str]:
    secrets = stack.client("secretsmanager")
    value: dict[str, str] = json.loads(
        secrets.get_secret_value(SecretId=stack.secrets["MiroTokenSecret"], VersionStage="AWSCURRENT")[
            "SecretString"
        ]
    )
    return value


def rest_statuses(emulator: RunningEmulator) -> dict[str, int]:
    by_status: dict[str, int] = emulator.stats()["byOperationStatus"]
    return {key: count for key, count in by_status.items() if not key.startswith("oauth-token")}


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    # Latency stretches the sync over several token lifetimes.
    config = EmulatorConfig(members=2000, seed=11, window_s=5, token_ttl_s=TTL_S, latency_ms=150)
    with start_emulator(config, port=0) as running:
        yield running


def test_a_sync_across_several_expiries_completes_without_a_failed_request(
    local_stack: LocalStack, emulator: RunningEmulator
) -> None:
    connect(local_stack, emulator)

    results = local_stack.invoke("MembersSyncFunction", SCHEDULED_EVENT)

    assert results[-1]["outcome"] == "complete"
    assert results[-1]["snapshot"]["members"] == sum(1 for m in emulator.state.all_members if not m.deleted)
    stats = emulator.stats()
    assert stats["tokenRefreshes"] >= 3  # the run spanned several token lifetimes
    # Refreshed before expiresAt: no request met an expired token. A refresh invalidates the old access
    # token at once (as at Miro), so the sync's concurrent page fetches still in flight with it get a
    # 401; each is retried once with the new token (MiroHttp), so no request of the run failed.
    others = {
        key: count
        for key, count in rest_statuses(emulator).items()
        if not key.endswith(" 200") and not key.endswith(" 401")
    }
    assert others == {}
    invalidated = sum(count for key, count in rest_statuses(emulator).items() if key.endswith(" 401"))
    assert invalidated <= 16 * stats["tokenRefreshes"]  # at most the fetch threads in flight per refresh
    # The secret holds the pair the emulator accepts now.
    access, refresh = emulator.emulator.oauth.current()
    assert (stored_pair(local_stack)["accessToken"], stored_pair(local_stack)["refreshToken"]) == (
        access,
        refresh,
    )


def test_three_concurrent_functions_refreshing_at_once_keep_one_valid_pair(
    local_stack: LocalStack, emulator: RunningEmulator
) -> None:
    connect(local_stack, emulator)
    secret_arn = local_stack.secrets["MiroTokenSecret"]
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []
    calls = [0, 0, 0]
    providers: list[SecretsManagerToken] = []
    stop_at = time.monotonic() + 4.5 * TTL_S

    def function(index: int) -> None:
        try:
            # Each "function" has its own secrets client and provider on the same secret, as three
            # Lambda containers would (its own cache, its own view of the version).
            token = SecretsManagerToken(
                secret_arn,
                fetcher=_Fetcher(local_stack.client("secretsmanager")),
                expiring_options={"reload_waits": (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)},
            )
            providers.append(token)
            client = MiroRestClient(
                emulator.base_url, token, emulator.org_id, pacer=RateLimitPacer(reserve_fraction=0.0)
            )
            barrier.wait()
            while time.monotonic() < stop_at:
                client.get_organization()
                calls[index] += 1
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=function, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert all(count > 0 for count in calls)
    stats = emulator.stats()
    assert stats["tokenRefreshes"] >= 3  # several expiries, each refreshed once by whoever got there
    # Exactly one pair is valid and the secret holds it.
    access, refresh = emulator.emulator.oauth.current()
    assert (stored_pair(local_stack)["accessToken"], stored_pair(local_stack)["refreshToken"]) == (
        access,
        refresh,
    )
    # Every pair Miro issued was written back by the function that got it, and the other two took it
    # from the secret (before refreshing, after a 401, or after Miro refused their spent refresh token).
    expiring = [provider._expiring for provider in providers]
    assert all(token is not None for token in expiring)
    assert sum(token.refreshes for token in expiring if token) == stats["tokenRefreshes"]
    assert sum(token.adopted for token in expiring if token) >= 2 * (stats["tokenRefreshes"] - 1)


def test_a_conditional_write_on_a_moved_version_loses(local_stack: LocalStack) -> None:
    """The compare-and-set the race relies on, against moto server: two writers read the same version,
    the second write never becomes current."""
    from miro_sync.store.token_secret import SecretVersionStore

    secret_arn = local_stack.secrets["MiroTokenSecret"]
    local_stack.client("secretsmanager").put_secret_value(SecretId=secret_arn, SecretString="v0")
    first = SecretVersionStore(local_stack.client("secretsmanager"), secret_arn)
    second = SecretVersionStore(local_stack.client("secretsmanager"), secret_arn)
    value, read = first.load()
    assert (value, read) == second.load()
    winner = first.save("first", read)
    assert winner is not None
    assert second.save("second", read) is None
    assert first.load() == ("first", winner)
    assert second.save("third", winner) is not None
    assert first.load()[0] == "third"


class _Fetcher:
    """Powertools' SecretsProvider shape on a given boto3 client (no cache)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def get(self, name: str, *, max_age: int | None = None, force_fetch: bool = False) -> Any:
        return self.client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"]
