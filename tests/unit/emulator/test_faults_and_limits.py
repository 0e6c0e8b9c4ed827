"""Fault decisions and rate-limit windows, with the clock handed in."""

from __future__ import annotations

from miro_emulator.faults import PROFILES, FaultKind, decide
from miro_emulator.ratelimit import WindowBudget


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
    storm = kinds("429-storm", 1)
    first_storm = storm.index(FaultKind.TOO_MANY_REQUESTS)
    assert storm[first_storm : first_storm + 10] == [FaultKind.TOO_MANY_REQUESTS] * 10
    assert kinds("expired-token", 1, 52)[49:] == [
        FaultKind.NONE,
        FaultKind.EXPIRED_TOKEN,
        FaultKind.EXPIRED_TOKEN,
    ]
    latencies = [decide(PROFILES["slow"], 1, "op", i, i).latency_ms for i in range(400)]
    assert min(latencies) > 0
    assert max(latencies) >= 1500  # the tail


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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
