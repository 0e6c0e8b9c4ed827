"""Fault decisions and rate-limit windows, with the clock handed in."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from contextlib import contextmanager

from miro_emulator.app import RESET, Emulator
from miro_emulator.config import EmulatorConfig
from miro_emulator.faults import PROFILES, FaultKind, decide
from miro_emulator.http import Request, Response
from miro_emulator.ratelimit import WindowBudget
from tests.unit.emulator.clocks import FakeClock, FakeTime


def kinds(profile: str, seed: int, count: int = 400) -> list[FaultKind]:
    return [decide(PROFILES[profile], seed, "op", i, i).kind for i in range(count)]


def test_decisions_depend_only_on_seed_operation_and_ordinal() -> None:
    assert kinds("chaos", 1) == kinds("chaos", 1)
    assert kinds("chaos", 1) != kinds("chaos", 2)
    other_operation = [decide(PROFILES["chaos"], 1, "other", i, i).kind for i in range(400)]
    assert other_operation != kinds("chaos", 1)


def test_each_profile_injects_its_fault() -> None:
    assert set(kinds("none", 1)) == {FaultKind.NONE}
    assert {FaultKind.SERVER_ERROR, FaultKind.RESET} <= set(kinds("flaky", 1))
    assert FaultKind.TRUNCATED in kinds("truncated", 1)
    storm = kinds("429-storm", 1, 120)
    every = PROFILES["429-storm"].storm_every
    # Exactly one storm starts in each period of `storm_every` requests, at a seeded offset.
    for period in range(120 // every):
        window = storm[period * every : (period + 1) * every]
        assert window.count(FaultKind.TOO_MANY_REQUESTS) == 1
    assert storm != kinds("429-storm", 2, 120)
    assert kinds("expired-token", 1, 52)[49:] == [
        FaultKind.NONE,
        FaultKind.EXPIRED_TOKEN,
        FaultKind.EXPIRED_TOKEN,
    ]
    latencies = [decide(PROFILES["slow"], 1, "op", i, i).latency_ms for i in range(400)]
    assert min(latencies) > 0
    assert max(latencies) >= 1500  # the tail


def test_budget_refuses_over_limit_and_refills_next_window() -> None:
    clock = FakeClock()
    budget = WindowBudget(1000, 60, monotonic=clock, wall=lambda: 1_700_000_000.0)
    assert budget.charge("t", 500).allowed
    second = budget.charge("t", 500)
    assert second.allowed
    assert second.remaining == 0
    refused = budget.charge("t", 50)
    assert not refused.allowed
    assert refused.reset_epoch_s == 1_700_000_060
    assert budget.charge("other-token", 500).allowed
    clock.now += 60
    assert budget.charge("t", 500).remaining == 500


def test_windows_open_on_whole_epoch_seconds_so_the_reset_header_is_exact() -> None:
    clock = FakeClock()
    # Started 0.75 s into an epoch second: the first window is the one that began at ...000.
    budget = WindowBudget(100, 10, monotonic=clock, wall=lambda: 1_700_000_000.75)
    spent = budget.charge("t", 100)
    assert spent.reset_epoch_s == 1_700_000_010
    clock.now += 9.2  # epoch ...009.95: still the first window
    assert not budget.charge("t", 1).allowed
    clock.now += 0.1  # epoch ...010.05: past the announced reset, a fresh window
    fresh = budget.charge("t", 1)
    assert fresh.allowed
    assert fresh.reset_epoch_s == 1_700_000_020


def test_storms_last_a_profile_scaled_share_of_the_window() -> None:
    storm = PROFILES["429-storm"]
    assert storm.storm_duration_s(60) == 2.0
    assert math.isclose(storm.storm_duration_s(3), 0.1)


# --- storms through the emulator core, with the clocks handed in ------------------------------------


@contextmanager
def core(faults: str, seed: int = 3, window_s: float = 60.0) -> Iterator[tuple[Emulator, FakeTime]]:
    clock = FakeTime()
    emulator = Emulator(
        EmulatorConfig(members=30, seed=seed, faults=faults, window_s=window_s, credits_per_window=10**9),
        sleep=clock.advance,
        monotonic=clock.monotonic,
        wall=clock.time,
    )
    try:
        yield emulator, clock
    finally:
        emulator.close()


def get_members(emulator: Emulator, token: str | None = None) -> Response:
    """One request; a connection reset comes back as status 0."""
    request = Request(
        "GET",
        f"/v2/orgs/{emulator.config.org_id}/members",
        {"limit": ["1"]},
        {"authorization": f"Bearer {token or emulator.config.token}"},
    )
    response = emulator.handle(request)
    if response is RESET:
        return Response(0)
    assert isinstance(response, Response)
    return response


def fetch(emulator: Emulator, clock: FakeTime, successes: int, honour_retry_after: bool) -> list[int]:
    """Statuses seen until `successes` requests succeeded; on a 429 wait as told, or only 50 ms."""
    statuses: list[int] = []
    while statuses.count(200) < successes:
        response = get_members(emulator)
        statuses.append(response.status)
        if response.status == 429:
            clock.advance(float(response.headers["Retry-After"]) if honour_retry_after else 0.05)
        else:
            clock.advance(0.01)
    return statuses


def test_a_client_that_waits_as_told_meets_one_429_per_storm() -> None:
    with core("429-storm") as (emulator, clock):
        polite = fetch(emulator, clock, 100, honour_retry_after=True)
        stats = emulator.stats()
    with core("429-storm") as (emulator, clock):
        again = fetch(emulator, clock, 100, honour_retry_after=True)
    assert polite == again
    storms = polite.count(429)
    assert storms >= 100 // PROFILES["429-storm"].storm_every
    assert all(after == 200 for before, after in itertools.pairwise(polite) if before == 429)
    assert stats["rateLimited"] == {"enterprise-get-organization-members": storms}
    assert stats["faultsInjected"] == {"too_many_requests": storms}


def test_a_client_that_hammers_meets_more_429s_and_the_same_other_faults() -> None:
    with core("429-storm") as (emulator, clock):
        polite = fetch(emulator, clock, 100, honour_retry_after=True)
    with core("429-storm") as (emulator, clock):
        hammering = fetch(emulator, clock, 100, honour_retry_after=False)
    with core("429-storm") as (emulator, clock):
        hammering_again = fetch(emulator, clock, 100, honour_retry_after=False)
    assert hammering == hammering_again
    assert hammering.count(429) > polite.count(429)
    # 2 s storms, retried every 50 ms: about 40 429s per storm (float steps blur the last one).
    assert hammering.count(429) >= polite.count(429) * 39
    # Requests answered by a running storm draw no fault ordinal: the chaos profile's other faults hit
    # the same admitted requests whatever the client does during a storm.
    with core("chaos") as (emulator, clock):
        polite_chaos = fetch(emulator, clock, 150, honour_retry_after=True)
    with core("chaos") as (emulator, clock):
        hammering_chaos = fetch(emulator, clock, 150, honour_retry_after=False)
    assert 429 in polite_chaos
    assert [s for s in polite_chaos if s != 429] == [s for s in hammering_chaos if s != 429]


def test_storm_answers_say_when_it_ends() -> None:
    with core("429-storm", window_s=3) as (emulator, clock):  # 0.1 s storms
        statuses = []
        while True:
            response = get_members(emulator)
            statuses.append(response.status)
            if response.status == 429:
                break
            clock.advance(0.01)
        assert response.body["code"] == "tooManyRequests"
        assert response.headers["X-RateLimit-Remaining"] == "0"
        assert response.headers["X-RateLimit-Limit"] == str(10**9)
        assert response.headers["Retry-After"] == "1"  # 0.1 s, rounded up
        assert int(response.headers["X-RateLimit-Reset"]) == math.ceil(clock.wall + 0.1)
        clock.advance(0.06)
        assert get_members(emulator).status == 429
        other_token = get_members(emulator, token="someone-else")
        assert other_token.status == 401  # storms are per token
        clock.advance(0.05)
        assert get_members(emulator).status == 200
