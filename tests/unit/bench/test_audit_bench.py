"""bench.audit_sync's own arithmetic: where a run's time went, and how the sizes become one result."""

from __future__ import annotations

from typing import Any

import pytest

from bench.audit_sync import size_figures, summarize, time_breakdown

START = 1_700_000_000.0
# Windows of 60 s that opened 50 s before the run started; 1,000 credits were spent in it before.
LIMITS = {
    "rest": {
        "limit": 100_000,
        "windowS": 60.0,
        "phaseS": START - 50,
        "windowStartS": START - 50,
        "spent": 1000,
    }
}


def page(at: float, *, cost: int = 100, budget: str | None = "rest") -> dict[str, Any]:
    return {
        "receivedS": START + at,
        "chargedS": START + at + 0.05 if budget else None,
        "answeredS": START + at + 0.05,
        "budget": budget,
        "cost": cost if budget else 0,
    }


def test_time_breakdown_shows_start_up_each_windows_credits_and_the_tail() -> None:
    record = [page(2.0), page(5.0), page(11.0), page(75.0, budget=None), page(80.0)]
    breakdown = time_breakdown(record, LIMITS, START, wall_s=90.0)
    assert breakdown["startup_s"] == pytest.approx(2.0)
    # The last answer (a 429 counts: the run was still talking to Miro) came at 80.05 s of 90.
    assert breakdown["tail_s"] == pytest.approx(9.95)
    assert breakdown["rest_spent_before_start"] == 1000
    # Windows open at -50 s, 10 s, 70 s relative to the start; the third holds only the page at 80 s.
    assert breakdown["rest_windows"] == [[-50.0, 200], [10.0, 100], [70.0, 100]]


def test_time_breakdown_of_a_run_that_started_in_a_fresh_window() -> None:
    fresh = {"rest": {**LIMITS["rest"], "windowStartS": START - 110, "phaseS": START - 110}}
    breakdown = time_breakdown([page(1.0)], fresh, START, wall_s=2.0)
    assert breakdown["rest_spent_before_start"] == 0  # what was spent belongs to an earlier window
    assert breakdown["rest_windows"] == [[-50.0, 100]]


def measured_run(stored: int, invocation_s: list[float], efficiency: float) -> dict[str, Any]:
    run = {
        "started_epoch_s": START,
        "wall_s": sum(invocation_s),
        "invocation_s": invocation_s,
        "invocations": len(invocation_s),
        "pages": 20,
        "stored": stored,
        "duplicates": 3,
        "signals_written": 7,
        "peak_rss_mb": 100.0,
        "cpu_s": 4.0,
        "usage": {"lambda": {"invocations": len(invocation_s)}},
    }
    floor = {"floor_s": 9.0, "floor_bound_by": "store", "efficiency": efficiency, "items_written": stored}
    stats = {
        "requests": {"enterprise-get-audit-logs": 20},
        "creditsSpent": 2000,
        "totalRequests": 20,
        "totalRateLimited": 0,
    }
    return {"run": run, "floor": floor, "stats": stats, "time_breakdown": {}}


def figures(events: int, *, second_stored: int, efficiency: float) -> dict[str, Any]:
    return size_figures(
        events=events,
        events_generated=events + 10,
        members=events // 10,
        store_rate=1000.0,
        setup_s=1.0,
        first=measured_run(events, [6.0, 4.0], efficiency),
        second=measured_run(second_stored, [1.5], 0.2),
        new_events=1000,
    )


def test_a_size_says_whether_the_second_run_wrote_exactly_the_new_events() -> None:
    exact = figures(2000, second_stored=1000, efficiency=0.95)
    assert exact["second_run_writes_exactly_new"] is True
    assert exact["second_run_items_written"] == 1000
    assert exact["sustained_rate_estimate_s"] == pytest.approx(1.2)  # 2,000 credits of 100,000 per 60 s
    assert not figures(2000, second_stored=1003, efficiency=0.95)["second_run_writes_exactly_new"]


def test_usage_runs_cover_both_runs_of_both_sizes_with_the_invocations_summed() -> None:
    sizes = {
        2000: figures(2000, second_stored=1000, efficiency=0.95),
        9000: figures(9000, second_stored=1000, efficiency=0.85),
    }
    summary = summarize(sizes, 2000, 9000)
    assert [(u["events"], u["kind"]) for u in summary["usage_runs"]] == [
        (2000, "first"),
        (2000, "incremental"),
        (9000, "first"),
        (9000, "incremental"),
    ]
    assert [u["lambda_duration_s_real_windows"] for u in summary["usage_runs"]] == [10.0, 1.5, 10.0, 1.5]
    assert "usage_runs" not in summary["big_run"]
    assert summary["efficiency"] == 0.95
    assert summary["efficiency_1m"] == 0.85
    assert summary["floor_method"] == "ideal-client"
    assert summary["targets_met"] == {
        "efficiency>=0.9": True,
        "second_run_writes_exactly_new": True,
        "efficiency_1m>=0.9": False,
        "second_run_writes_exactly_new_1m": True,
    }


def test_without_the_big_size_there_are_no_1m_figures() -> None:
    summary = summarize({2000: figures(2000, second_stored=1000, efficiency=0.95)}, 2000, None)
    assert "efficiency_1m" not in summary
    assert "big_run" not in summary
    assert len(summary["usage_runs"]) == 2
