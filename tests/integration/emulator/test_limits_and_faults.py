"""Rate limits, fault profiles and introspection over real HTTP."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import httpx
import pytest

from miro_emulator import RunningEmulator
from tests.fixtures.emulator import MiroSpec
from tests.integration.emulator.conftest_helpers import rest, scim

pytestmark = pytest.mark.integration


def test_credits_run_out_with_429_and_headers(
    emulator_factory: Callable[..., RunningEmulator], miro_spec: MiroSpec
) -> None:
    emulator = emulator_factory(credits_per_window=1200, window_s=3600)
    path = f"/v2/orgs/{emulator.org_id}/members"  # level 3: 500 credits
    with rest(emulator) as client:
        responses = [client.get(path, params={"limit": 1}) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["700", "200", "200"]
    assert responses[2].json()["code"] == "tooManyRequests"
    miro_spec.validate("enterprise-get-organization-members", 429, responses[2].json())
    assert int(responses[2].headers["X-RateLimit-Reset"]) > 0
    stats = emulator.stats()
    assert stats["creditsSpent"] == 1000
    assert stats["rateLimited"] == {"enterprise-get-organization-members": 1}


def test_scim_delete_limit_is_20_per_window(emulator_factory: Callable[..., RunningEmulator]) -> None:
    emulator = emulator_factory(window_s=7200)
    with scim(emulator) as client:
        statuses = [client.delete("/Users/1").status_code for _ in range(21)]
    assert statuses == [404] * 20 + [429]


def run_sequence(emulator: RunningEmulator, count: int) -> list[str]:
    outcomes = []
    with rest(emulator) as client:
        for _ in range(count):
            try:
                response = client.get(f"/v2/orgs/{emulator.org_id}/members", params={"limit": 2})
            except httpx.TransportError as error:
                outcomes.append(type(error).__name__)
                continue
            try:
                response.json()
                outcomes.append(str(response.status_code))
            except ValueError:
                outcomes.append(f"{response.status_code}-not-json")
    return outcomes


@pytest.mark.parametrize("profile", ["flaky", "chaos", "truncated", "429-storm"])
def test_fault_profiles_reproduce_for_a_seed(
    emulator_factory: Callable[..., RunningEmulator], profile: str
) -> None:
    first = run_sequence(emulator_factory(faults=profile, seed=3), 60)
    second = run_sequence(emulator_factory(faults=profile, seed=3), 60)
    other_seed = run_sequence(emulator_factory(faults=profile, seed=4), 60)
    assert first == second
    assert set(first) != {"200"}, f"{profile} injected nothing in 60 requests"
    assert first != other_seed


def test_429_storm_ends_for_a_client_that_waits_as_told(
    emulator_factory: Callable[..., RunningEmulator], miro_spec: MiroSpec
) -> None:
    # 50 ms storms (window_s / 30); Retry-After rounds up to whole seconds.
    emulator = emulator_factory(faults="429-storm", seed=3, window_s=1.5, credits_per_window=10**9)
    statuses: list[int] = []
    storm_answers: list[httpx.Response] = []
    with rest(emulator) as client:
        while statuses.count(200) < 24:
            response = client.get(f"/v2/orgs/{emulator.org_id}/members", params={"limit": 2})
            statuses.append(response.status_code)
            if response.status_code == 429:
                storm_answers.append(response)
                time.sleep(float(response.headers["Retry-After"]))
    assert storm_answers, "no storm in 24 requests"
    assert all(after == 200 for before, after in itertools.pairwise(statuses) if before == 429)
    for answer in storm_answers:
        miro_spec.validate("enterprise-get-organization-members", 429, answer.json())
        assert answer.headers["Retry-After"] == "1"
        assert answer.headers["X-RateLimit-Remaining"] == "0"
        assert int(answer.headers["X-RateLimit-Reset"]) > 1_000_000_000
    assert emulator.stats()["totalRateLimited"] == len(storm_answers)


def test_expired_token_profile_and_runtime_switch(emulator_factory: Callable[..., RunningEmulator]) -> None:
    emulator = emulator_factory(faults="expired-token")
    outcomes = run_sequence(emulator, 52)
    assert outcomes == ["200"] * 50 + ["401", "401"]
    with rest(emulator) as client:
        assert client.post("/_emulator/faults", json={"profile": "none"}).status_code == 200
        assert client.post("/_emulator/faults", json={"profile": "bogus"}).status_code == 400
    assert run_sequence(emulator, 1) == ["200"]


def test_introspection_reports_counts_and_truth(emulator: RunningEmulator) -> None:
    run_sequence(emulator, 3)
    with rest(emulator, token="whatever") as client:
        stats = client.get("/_emulator/stats").json()
        members = client.get(
            "/_emulator/state/members", params={"email": emulator.state.all_members[0].email}
        )
        org = client.get("/_emulator/state/org").json()
        client.post("/_emulator/reset-stats")
        after_reset = client.get("/_emulator/stats").json()
    assert stats["requests"] == {"enterprise-get-organization-members": 3}
    assert stats["creditsSpent"] == 1500
    assert members.json()["data"][0]["scimId"] == emulator.state.all_members[0].scim_id
    assert org["members"] == 200
    assert after_reset["totalRequests"] == 0
