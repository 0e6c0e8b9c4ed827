"""The floor calculator on synthetic schedules; every expected value is worked out by hand in the test."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from bench.floor import (
    API,
    LATENCY,
    STORE,
    ApiFloor,
    Budget,
    FloorAboveWallError,
    Request,
    api_floor,
    combined_floor,
    cursor_chain,
    efficiency,
    page_arrival_bounds,
    pipeline_floor,
    store_floor,
)

START = 1_700_000_000.0  # a whole epoch second, like the emulator's window origin
ONE = (("rest", 1),)


def _rest(limit: int = 100, window_s: float = 10.0, into_window_s: float = 0.0, spent: int = 0) -> Budget:
    """A budget whose window started `into_window_s` before START."""
    return Budget("rest", limit, window_s, START - into_window_s, spent)


def _independent(
    count: int, latency_s: float = 0.1, costs: tuple[tuple[str, int], ...] = ONE
) -> list[Request]:
    return [Request(costs, latency_s) for _ in range(count)]


def _assert_feasible(budgets: list[Budget], requests: list[Request], result: ApiFloor) -> None:
    """The ideal client's schedule keeps every chain and every window's limit, and finishes at floor_s."""
    send = result.send_times_s
    assert len(send) == len(requests)
    answers = [t + r.latency_s for t, r in zip(send, requests, strict=True)]
    for t, r in zip(send, requests, strict=True):
        assert t >= -1e-9
        if r.after is not None:
            assert t >= answers[r.after] - 1e-9
    for budget in budgets:
        per_window: Counter[int] = Counter()
        for t, r in zip(send, requests, strict=True):
            charged = START + t + r.charge_offset_s
            window = math.floor((charged - budget.phase_s) / budget.window_s + 1e-9)
            per_window[window] += sum(u for name, u in r.costs if name == budget.name)
        first = math.floor((START - budget.phase_s) / budget.window_s + 1e-9)
        per_window[first] += budget.spent_at_start
        assert max(per_window.values(), default=0) <= budget.limit
    assert max(answers, default=0.0) == pytest.approx(result.floor_s)
    assert result.lower_bound_s <= result.floor_s + 1e-9


def test_perfect_schedule_has_efficiency_one() -> None:
    # 9 s into a 10 s window: 100 requests now, the other 100 when the next window opens 1 s later.
    budgets = [_rest(into_window_s=9.0)]
    requests = _independent(200)
    result = api_floor(budgets, START, requests, keep_schedule=True)
    _assert_feasible(budgets, requests, result)
    assert result.floor_s == pytest.approx(1.1)
    assert result.lower_bound_s == pytest.approx(1.1)  # exact
    assert result.binding == "rest"
    # The run that did exactly this: 100 sent at START, 100 at START + 1, last answer at START + 1.1
    # (epoch floats resolve ~0.2 us, hence the tolerance).
    run_sends = [START] * 100 + [START + 1.0] * 100
    wall = max(t + 0.1 for t in run_sends) - START
    assert efficiency(result.floor_s, wall, strict=True, tolerance=1e-6) == pytest.approx(1.0)
    # The old formula (credits / limit x window) claimed 20 s.
    assert 200 / 100 * 10.0 == 20.0


def test_idling_through_a_window_lowers_efficiency() -> None:
    result = api_floor([_rest(into_window_s=9.0)], START, _independent(200))
    # 100 at START, then idles through the window [START + 1, START + 11), the rest at START + 11.
    wall = 11.0 + 0.1
    assert efficiency(result.floor_s, wall) == pytest.approx(1.1 / 11.1)


@pytest.mark.parametrize(
    ("into_window_s", "expected_s"),
    [
        (0.0, 10.1),  # starts as a window opens: the second 100 wait the whole window
        (5.0, 5.1),  # half way: the next window opens 5 s later
        (9.0, 1.1),  # late: this window's budget and the next one's in little more than 1 s
        (9.95, 0.15),  # the next window opens 0.05 s in, before the first answers arrive
    ],
)
def test_phase_shift_of_the_start_moves_the_floor(into_window_s: float, expected_s: float) -> None:
    budgets = [_rest(into_window_s=into_window_s)]
    requests = _independent(200)
    result = api_floor(budgets, START, requests, keep_schedule=True)
    _assert_feasible(budgets, requests, result)
    assert result.floor_s == pytest.approx(expected_s)


def test_third_window_needed_after_a_late_start() -> None:
    # 250 units, 9 s into the window: 100 now, 100 at +1, 50 at +11.
    result = api_floor([_rest(into_window_s=9.0)], START, _independent(250))
    assert result.floor_s == pytest.approx(11.1)


def test_chain_with_plenty_of_budget_is_n_times_latency() -> None:
    budgets = [_rest(limit=10_000)]
    requests = cursor_chain(20, (("rest", 100),), 0.05)
    result = api_floor(budgets, START, requests, keep_schedule=True)
    _assert_feasible(budgets, requests, result)
    assert result.floor_s == pytest.approx(20 * 0.05)
    assert result.binding == LATENCY
    assert result.lower_bound_s == pytest.approx(result.floor_s)


def test_chain_through_windows() -> None:
    # 100 credits a page, 250 per 1 s window, 0.1 s per page: 2 pages per window, 5 pages -> windows 0, 0,
    # 1, 1, 2: the fifth page goes at 2.0 and answers at 2.1.
    requests = cursor_chain(5, (("rest", 100),), 0.1)
    result = api_floor([_rest(limit=250, window_s=1.0)], START, requests)
    assert result.floor_s == pytest.approx(2.1)


def test_second_budget_binds() -> None:
    budgets = [Budget("scim_GET", 200, 60.0, START), Budget("scim_PATCH", 100, 60.0, START)]
    get, patch = (("scim_GET", 1),), (("scim_PATCH", 1),)
    requests = _independent(150, 0.05, get) + _independent(250, 0.05, patch)
    result = api_floor(budgets, START, requests, keep_schedule=True)
    _assert_feasible(budgets, requests, result)
    # GETs all in the first window; PATCH 100 at 0, 100 at 60, 50 at 120.
    assert result.floor_s == pytest.approx(120.05)
    assert result.binding == "scim_PATCH"
    assert result.bounds_s["scim_GET"] == pytest.approx(0.05)


def test_per_user_chains_over_two_budgets() -> None:
    budgets = [Budget("scim_GET", 200, 60.0, START), Budget("scim_PATCH", 100, 60.0, START)]
    requests: list[Request] = []
    for _ in range(250):  # GET the user, then PATCH it
        requests.append(Request((("scim_GET", 1),), 0.05))
        requests.append(Request((("scim_PATCH", 1),), 0.05, after=len(requests) - 1))
    result = api_floor(budgets, START, requests, keep_schedule=True)
    _assert_feasible(budgets, requests, result)
    # GETs: 200 at 0, 50 at 60; PATCHes: 100 at 0.05, 100 at 60, the last 50 at 120.
    assert result.floor_s == pytest.approx(120.05)
    assert result.binding == "scim_PATCH"


def test_request_spending_two_budgets() -> None:
    budgets = [Budget("a", 10, 1.0, START), Budget("b", 5, 1.0, START - 0.5)]
    requests = _independent(10, 0.01, (("a", 1), ("b", 1)))
    result = api_floor(budgets, START, requests, keep_schedule=True)
    _assert_feasible(budgets, requests, result)
    # b: 5 now, the other 5 when b's window opens at +0.5; a has room for all 10 in its first window.
    assert result.floor_s == pytest.approx(0.51)
    assert result.binding == "b"


def test_budget_is_kept_for_the_chain() -> None:
    # 10 units per 1 s window; a chain of 20 (0.01 s each) and 100 independent requests. Spending window 0
    # on independents would move the chain one step per window (19.01 s); the ideal client runs the chain's
    # 20 steps in windows 0 and 1 and the independents in windows 2..11: the 120 units need 12 windows.
    budgets = [_rest(limit=10, window_s=1.0)]
    requests = cursor_chain(20, ONE, 0.01) + _independent(100, 0.01)
    result = api_floor(budgets, START, requests, keep_schedule=True)
    _assert_feasible(budgets, requests, result)
    assert result.floor_s == pytest.approx(11.01)
    assert result.lower_bound_s == pytest.approx(11.01)
    assert result.client == "earliest_fit"


def test_budget_already_spent_at_start() -> None:
    # 60 of 100 spent in the window the run starts in: 40 now, 10 when the next one opens at 10.
    result = api_floor([_rest(spent=60)], START, _independent(50))
    assert result.floor_s == pytest.approx(10.1)


def test_charge_at_answer() -> None:
    # 1 unit per 1 s window, charged when answered (0.4 s after sending, like the emulator's delay): page 1
    # charged at 0.4; page 2 could be charged at 0.8 but window 0 is spent, so it is sent at 0.6 and charged
    # at 1.0; page 3 likewise charged at 2.0.
    budgets = [_rest(limit=1, window_s=1.0)]
    requests = cursor_chain(3, ONE, 0.4, charge_offset_s=0.4)
    result = api_floor(budgets, START, requests, keep_schedule=True)
    _assert_feasible(budgets, requests, result)
    assert result.floor_s == pytest.approx(2.0)
    assert result.send_times_s == pytest.approx((0.0, 0.6, 1.6))


def test_max_concurrency() -> None:
    result = api_floor([_rest(limit=1000)], START, _independent(10, 1.0), max_concurrency=2)
    assert result.floor_s == pytest.approx(5.0)
    assert result.client == "non_delay"
    assert api_floor([_rest(limit=1000)], START, _independent(10, 1.0)).floor_s == pytest.approx(1.0)


def test_store_floor_binds() -> None:
    api = api_floor([_rest(into_window_s=9.0)], START, _independent(200)).floor_s
    store = store_floor(5000, 1000.0)
    assert combined_floor(api, store) == (5.0, STORE)
    assert combined_floor(api, store_floor(100, 1000.0)) == (api, API)
    assert api == pytest.approx(1.1)


def test_page_arrivals_follow_the_budget_windows_from_the_start() -> None:
    # 250 units a window, pages of 100: two pages per window. Started 4 s into a 10 s window that had
    # 50 units spent: the first window still fits two, then the windows at +6 s and +16 s.
    budget = _rest(limit=250, into_window_s=4.0, spent=50)
    assert page_arrival_bounds(budget, START, [100] * 5) == [0.0, 0.0, 6.0, 6.0, 16.0]
    # The cheapest pages are counted first: no client gets more of them in earlier.
    assert page_arrival_bounds(budget, START, [200, 100, 100]) == [0.0, 0.0, 6.0]
    with pytest.raises(ValueError, match="costs more"):
        page_arrival_bounds(budget, START, [300])


def test_a_chain_of_pages_arrives_no_sooner_than_its_latencies_add_up() -> None:
    budget = _rest(limit=10_000)
    arrivals = page_arrival_bounds(budget, START, [100] * 3, chain_latencies_s=[0.5, 0.25, 1.0])
    assert arrivals == [0.5, 0.75, 1.75]


def test_pipeline_floor_waits_for_the_pages_that_carry_the_items() -> None:
    # 300 items, pages of at most 100, 100 items a second: 3 s of writes. All pages at 0: the store floor.
    assert pipeline_floor([0.0, 0.0, 0.0], 300, 100, 100.0) == pytest.approx(3.0)
    assert store_floor(300, 100.0) == pytest.approx(3.0)
    # The third page only at 10 s: its 100 items (at least) are written after it.
    assert pipeline_floor([0.0, 0.0, 10.0], 300, 100, 100.0) == pytest.approx(11.0)
    # Second and third pages at 2 s: at most 100 items before, 200 after.
    assert pipeline_floor([0.0, 2.0, 2.0], 300, 100, 100.0) == pytest.approx(4.0)
    # Fewer items written than the pages carry (a re-run writing only new ones): counted as at most.
    assert pipeline_floor([0.0, 50.0], 80, 100, 100.0) == pytest.approx(0.8)
    assert pipeline_floor([], 80, 100, 100.0) == pytest.approx(0.8)


def test_pipeline_floor_is_met_by_a_client_that_writes_every_page_as_it_arrives() -> None:
    # A schedule some client can run reaches the floor exactly: pages of 100 at 0, 0, 6, 6, 16 s (the
    # windows above), 250 items a second: the writer is busy 0-0.8 s, 6-6.8 s, then 16-16.4 s.
    arrivals = page_arrival_bounds(_rest(limit=250, into_window_s=4.0, spent=50), START, [100] * 5)
    assert pipeline_floor(arrivals, 500, 100, 250.0) == pytest.approx(16.4)


def test_efficiency_is_never_clamped() -> None:
    assert efficiency(12.0, 10.0) == pytest.approx(1.2)
    with pytest.raises(FloorAboveWallError):
        efficiency(12.0, 10.0, strict=True)
    assert efficiency(10.001, 10.0, strict=True, tolerance=0.01) > 1.0


@pytest.mark.parametrize(
    "requests",
    [
        [Request(ONE, 0.1, after=0)],  # follows itself
        [Request(ONE, 0.1), Request(ONE, 0.1, after=2)],  # follows a later request
        [Request((("rest", 101),), 0.1)],  # more than a window grants
        [Request((("nope", 1),), 0.1)],
    ],
)
def test_rejects_impossible_inputs(requests: list[Request]) -> None:
    with pytest.raises(ValueError, match="request"):
        api_floor([_rest()], START, requests)


def test_random_schedules_are_feasible_and_above_the_lower_bound() -> None:
    rng = random.Random(7)
    for _ in range(40):
        budgets = [
            Budget("rest", rng.choice([100, 250, 1000]), rng.choice([1.0, 2.0]), START - rng.random() * 2),
            Budget("scim_DELETE", rng.choice([1, 3, 20]), 1.0, START - rng.random()),
        ]
        kinds = [(("rest", 50),), (("rest", 100),), (("scim_DELETE", 1),), (("rest", 50), ("scim_DELETE", 1))]
        requests: list[Request] = []
        for i in range(rng.randrange(1, 80)):
            after = rng.randrange(i) if i and rng.random() < 0.5 else None
            latency = rng.choice([0.0, 0.01, 0.05, 0.3])
            requests.append(Request(rng.choice(kinds), latency, after, rng.choice([0.0, latency])))
        for cap in (None, 3):
            result = api_floor(budgets, START, requests, max_concurrency=cap, keep_schedule=True)
            _assert_feasible(budgets, requests, result)


def test_empty_run() -> None:
    result = api_floor([_rest()], START, [])
    assert result.floor_s == 0.0
    assert result.lower_bound_s == 0.0


def test_100k_requests_run() -> None:
    # Not timed: only that a bench-sized run (a page chain fanning out) goes through. 1,000 pages of 100
    # credits, each followed by 99 requests of 50 credits.
    budgets = [Budget("rest", 100_000, 60.0, START - 30.0)]
    requests: list[Request] = []
    page, item = (("rest", 100),), (("rest", 50),)
    previous_page: int | None = None
    for _ in range(1000):
        requests.append(Request(page, 0.05, previous_page))
        previous_page = len(requests) - 1
        requests.extend(Request(item, 0.05, previous_page) for _ in range(99))
    result = api_floor(budgets, START, requests)
    # 100,000 + 99,000 x 50 = 5,050,000 credits: 51 windows; the 51st opens at 30 + 49 x 60 = 2970 s.
    assert result.lower_bound_s == pytest.approx(2970.05)
    assert result.floor_s >= result.lower_bound_s
    assert result.floor_s < 3100
