"""A run's floor from the emulator's record: chains from cursors, waste left out, windows from the record."""

from __future__ import annotations

from typing import Any

import pytest

from bench._recorded import ideal_inputs, operation_spans, recorded_floor, run_floor

START = 1_700_000_000.0
LIMITS = {
    "rest": {"limit": 1000, "windowS": 10.0, "phaseS": START, "windowStartS": START, "spent": 0},
    "scim_GET": {"limit": 200, "windowS": 10.0, "phaseS": START, "windowStartS": START, "spent": 0},
}


def req(
    at: float,
    listing: str = "/v2/orgs/1/members?limit=100",
    position: str | None = None,
    next_position: str | None = None,
    *,
    cost: int = 100,
    budget: str | None = "rest",
    latency: float = 0.05,
    method: str = "GET",
) -> dict[str, Any]:
    return {
        "operation": "op",
        "method": method,
        "listing": listing,
        "position": position,
        "receivedS": START + at,
        "budget": budget,
        "cost": cost if budget else 0,
        "chargedS": START + at + latency if budget else None,
        "answeredS": START + at + latency,
        "status": 200 if budget else 429,
        "nextPosition": next_position,
    }


def test_cursor_pages_chain_and_independent_listings_do_not() -> None:
    record = [
        req(0.0, position=None, next_position="a"),
        req(0.0, listing="/v2/orgs/1/teams", next_position=None),
        req(0.1, position="a", next_position="b"),
        req(0.2, position="b"),
    ]
    inputs = ideal_inputs(record, LIMITS, START)
    assert [r.after for r in inputs.requests] == [None, None, 0, 2]
    # Four requests of 50 ms: the member chain is three long; budget 400 of 1000 fits one window.
    floor = recorded_floor(record, LIMITS, START)
    assert floor["api_floor_s"] == pytest.approx(0.15)
    assert floor["api_binding"] == "latency"


def test_refused_and_repeated_pages_are_waste_the_ideal_client_does_not_make() -> None:
    record = [
        req(0.0, next_position="a"),
        req(0.1, position="a", budget=None),  # a 429: not charged
        req(0.2, position="a"),
        req(0.3, position="a"),  # the same page again
        req(0.4, listing="/v2/orgs/1"),
        req(0.5, listing="/v2/orgs/1"),  # a repeated plain GET
    ]
    inputs = ideal_inputs(record, LIMITS, START)
    assert len(inputs.requests) == 3
    assert inputs.refused == 1
    assert inputs.duplicate_pages == 1
    assert inputs.repeated_gets == 1
    assert inputs.by_budget == {"rest": 300}


def test_scim_pages_follow_the_listings_first_page() -> None:
    scim = "/api/v1/scim/Users?count=1000"
    record = [
        req(0.0, listing=scim, budget="scim_GET", cost=1),
        req(0.1, listing=scim, position="1001", budget="scim_GET", cost=1),
        req(0.2, listing=scim, position="2001", budget="scim_GET", cost=1),
    ]
    assert [r.after for r in ideal_inputs(record, LIMITS, START).requests] == [None, 0, 0]


def test_the_budget_binds_across_fixed_windows_and_a_late_start_gains_a_window() -> None:
    # 30 independent requests of 100 units, 1000 per 10 s window: three windows' worth.
    record = [req(0.001 * k, listing=f"/v2/x/{k}") for k in range(30)]
    on_the_boundary = recorded_floor(record, LIMITS, START)
    assert on_the_boundary["api_binding"] == "rest"
    assert on_the_boundary["api_floor_s"] == pytest.approx(20.0)
    # Started 9 s into a window: that window's budget and the next two are spent by 1 + 10 s
    # (each request is charged as it is answered).
    late = {name: {**shape, "phaseS": START - 9, "windowStartS": START - 9} for name, shape in LIMITS.items()}
    assert recorded_floor(record, late, START)["api_floor_s"] == pytest.approx(11.0)
    # What was already spent in the open window before the start is not available to the run.
    spent = {name: {**shape, "spent": 1000} for name, shape in LIMITS.items()}
    assert recorded_floor(record, spent, START)["api_floor_s"] == pytest.approx(30.0)


def test_real_windows_stretch_a_budget_bound_run_and_the_store_can_bind() -> None:
    record = [req(0.001 * k, listing=f"/v2/x/{k}") for k in range(30)]
    result = run_floor(record, LIMITS, START, wall_s=25.0, items_written=100, store_rate_items_per_s=1000)
    assert result["floor_bound_by"] == "api"
    assert result["api_floor_s_real_windows"] == pytest.approx(120.0)
    assert result["efficiency"] == pytest.approx(0.8)
    slow_store = run_floor(
        record, LIMITS, START, wall_s=50.0, items_written=40_000, store_rate_items_per_s=1000
    )
    assert slow_store["floor_bound_by"] == "store"
    assert slow_store["floor_s"] == 40.0
    assert slow_store["efficiency"] == 0.8


def test_the_store_floor_counts_when_the_item_pages_can_arrive() -> None:
    # 25 member pages of 100 (cost 100, 1000 a 10 s window: 10 pages a window), a team listing beside
    # them, 2,500 items at 1,000 a second. Pages 21-25 arrive no sooner than the window at +20 s, and
    # their 500 items (at least) are written after it: 20.5 s, not the store's 2.5 s.
    record = [req(0.01 * k, position=str(k) if k else None, next_position=str(k + 1)) for k in range(25)]
    record.append(req(0.0, listing="/v2/orgs/1/teams"))
    record.append(req(0.3, position="3", next_position="4"))  # page 4 again: no new items
    result = run_floor(
        record,
        LIMITS,
        START,
        wall_s=41.0,
        items_written=2_500,
        store_rate_items_per_s=1000,
        item_listing=r"/v2/orgs/[^/?]+/members(\?|$)",
        single_chain=True,
    )
    assert result["store_floor_s"] == pytest.approx(2.5)
    assert result["pages_store_floor_s"] == pytest.approx(20.5)
    assert result["floor_bound_by"] in ("api", "pages+store")
    assert result["floor_s"] == pytest.approx(max(result["api_floor_s"], 20.5))
    # Without the listing named, the plain store floor (as before).
    plain = run_floor(record, LIMITS, START, wall_s=41.0, items_written=2_500, store_rate_items_per_s=1000)
    assert plain["pages_store_floor_s"] == plain["store_floor_s"] == pytest.approx(2.5)


def test_operation_spans_say_when_each_operation_was_busy() -> None:
    teams = "/v2/orgs/1/teams/7/members?limit=100"
    record = [
        req(0.0, teams, cost=100) | {"operation": "team-members"},
        req(4.0, teams, "c1", cost=100, latency=0.5) | {"operation": "team-members"},
        req(1.0, cost=500) | {"operation": "members"},
        req(9.0, "/v2/orgs/1/members?limit=100", "c2", cost=500, budget=None) | {"operation": "members"},
    ]
    spans = operation_spans(record, START - 1.0)
    assert list(spans) == ["team-members", "members"]  # in the order they started
    assert spans["team-members"] == {"first_s": 1.0, "last_s": 5.5, "requests": 2, "credits": 200}
    # A refused request was still received and answered; it charged nothing.
    assert spans["members"] == {"first_s": 2.0, "last_s": 10.05, "requests": 2, "credits": 500}
