"""Pacing math: RateLimitPacer (credit headers) and WindowPacer (SCIM fixed windows)."""

from __future__ import annotations

import pytest

from miro_sync.miro.http import close_shared_http_clients, shared_http_client
from miro_sync.miro.pacing import RateLimitPacer, WindowPacer, reset_time, retry_after_seconds

NOW = 1_700_000_000.0


def headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(int(reset)),
    }


def test_no_headers_seen_means_no_wait() -> None:
    assert RateLimitPacer().wait_before("GET", 500, NOW) == 0.0


def test_plenty_of_budget_sends_immediately() -> None:
    pacer = RateLimitPacer(reserve_fraction=0.1, burst_fraction=0.5)
    pacer.observe(headers(100_000, 90_000, NOW + 60), NOW)
    assert pacer.wait_before("GET", 500, NOW) == 0.0


def test_low_budget_spreads_remaining_credits_until_reset() -> None:
    pacer = RateLimitPacer(reserve_fraction=0.1, burst_fraction=0.5)
    # usable = 20_000 - 10_000 reserve = 10_000 credits for 40 s -> a 500-credit call every 2 s.
    pacer.observe(headers(100_000, 20_000, NOW + 40), NOW)
    assert pacer.wait_before("GET", 500, NOW) == pytest.approx(2.0)
    # Time already spent since the response counts towards the interval.
    assert pacer.wait_before("GET", 500, NOW + 1.5) == pytest.approx(0.5)
    assert pacer.wait_before("GET", 500, NOW + 3) == 0.0


def test_cheaper_calls_wait_proportionally_less() -> None:
    pacer = RateLimitPacer(reserve_fraction=0.1, burst_fraction=0.5)
    pacer.observe(headers(100_000, 20_000, NOW + 40), NOW)
    assert pacer.wait_before("GET", 50, NOW) == pytest.approx(0.2)


def test_call_that_would_eat_into_the_reserve_waits_for_reset() -> None:
    pacer = RateLimitPacer(reserve_fraction=0.1, burst_fraction=0.5, release_fraction=0.0)
    pacer.observe(headers(100_000, 10_300, NOW + 25), NOW)
    assert pacer.wait_before("GET", 500, NOW) == pytest.approx(25.0)


def test_reserve_is_released_over_the_last_part_of_the_window() -> None:
    pacer = RateLimitPacer(reserve_fraction=0.1, burst_fraction=0.0, release_fraction=0.1)
    pacer.observe(headers(100_000, 100_000, NOW + 60), NOW)  # a fresh 60 s window: release over 6 s
    pacer.observe(headers(100_000, 10_300, NOW + 60), NOW + 30)
    assert pacer.reserve_at(NOW + 30) == pytest.approx(10_000)
    assert pacer.reserve_at(NOW + 57) == pytest.approx(5_000)
    assert pacer.reserve_at(NOW + 60) == 0.0
    # 9,800 credits would be left after the call: the reserve shrinks to that 5.88 s before the reset.
    assert pacer.wait_before("GET", 500, NOW + 30) == pytest.approx(60 - 5.88 - 30)
    assert pacer.wait_before("GET", 500, NOW + 54.2) == 0.0
    # A call larger than what is left waits for the reset.
    assert pacer.wait_before("GET", 20_000, NOW + 30) == pytest.approx(30.0)


def test_concurrent_callers_never_book_the_same_credits() -> None:
    pacer = RateLimitPacer(reserve_fraction=0.1, burst_fraction=0.0, release_fraction=0.0)
    pacer.observe(headers(100_000, 11_000, NOW + 60), NOW)
    assert pacer.acquire("GET", 500, NOW) == 0.0  # booked: 10,500 left before the reserve
    assert pacer.acquire("GET", 500, NOW) == 0.0  # 10,000: exactly the reserve
    held = pacer.acquire("GET", 500, NOW)
    assert 0 < held < 1  # only requests in flight are in the way: ask again shortly
    pacer.release("GET", 500)
    pacer.observe(headers(100_000, 10_500, NOW + 60), NOW + 0.1)
    # The other booked request is still in flight: 10,500 - 500 leaves nothing above the reserve.
    assert pacer.acquire("GET", 500, NOW + 0.1) > 0
    pacer.release("GET", 500)
    pacer.observe(headers(100_000, 10_000, NOW + 60), NOW + 0.2)
    assert pacer.acquire("GET", 500, NOW + 0.2) == pytest.approx(59.8)  # now the reserve itself


def test_an_overtaken_response_does_not_give_back_spent_credits() -> None:
    pacer = RateLimitPacer()
    pacer.observe(headers(100_000, 40_000, NOW + 60), NOW)
    pacer.observe(headers(100_000, 41_000, NOW + 60), NOW + 0.1)  # an older count, answered later
    assert pacer.remaining == 40_000
    pacer.observe(headers(100_000, 99_000, NOW + 120), NOW + 61)  # the next window
    assert pacer.remaining == 99_000


def test_after_reset_time_the_budget_is_fresh() -> None:
    pacer = RateLimitPacer()
    pacer.observe(headers(100_000, 0, NOW + 10), NOW)
    assert pacer.wait_before("GET", 500, NOW + 10) == 0.0


def test_waits_are_capped_against_clock_skew() -> None:
    pacer = RateLimitPacer(max_wait=65.0)
    pacer.observe(headers(100_000, 0, NOW + 3600), NOW)
    assert pacer.wait_before("GET", 500, NOW) == 65.0


def test_spending_a_whole_window_never_exceeds_the_budget() -> None:
    """Simulate a run: each call costs 500, the server decrements remaining; the pacer must keep
    the reserve until its release, never let remaining go negative, and use the window up."""
    limit, cost, window = 100_000, 500, 60.0
    pacer = RateLimitPacer(reserve_fraction=0.1, burst_fraction=0.5, release_fraction=0.1)
    now, remaining, reset_at = NOW, limit, NOW + window
    pacer.observe(headers(limit, remaining, reset_at), now)
    calls_in_window = 0
    while now < reset_at:
        wait = pacer.wait_before("GET", cost, now)
        now += wait
        if now >= reset_at:
            break
        remaining -= cost
        calls_in_window += 1
        assert remaining >= 0
        if now < reset_at - 0.1 * window:  # before the release the reserve is kept
            assert remaining >= limit * 0.1 - cost
        pacer.observe(headers(limit, remaining, reset_at), now)
        now += 0.01  # the request itself
    assert calls_in_window * cost <= limit
    # It used (nearly) the whole window, the released reserve included, rather than stalling early.
    assert calls_in_window * cost >= limit * 0.97


def test_reset_header_as_delta_seconds_is_understood() -> None:
    assert reset_time({"X-RateLimit-Reset": "30"}, NOW) == NOW + 30
    assert reset_time({"X-RateLimit-Reset": str(int(NOW + 12))}, NOW) == NOW + 12
    assert reset_time({}, NOW) is None
    assert reset_time({"X-RateLimit-Reset": "soon"}, NOW) is None


def test_retry_after_wins_over_reset() -> None:
    both = {"Retry-After": "7", "X-RateLimit-Reset": str(int(NOW + 30))}
    assert retry_after_seconds(both, NOW) == 7.0
    assert retry_after_seconds({"X-RateLimit-Reset": str(int(NOW + 30))}, NOW) == 30.0
    assert retry_after_seconds({}, NOW) is None


def test_retry_after_http_date() -> None:
    assert retry_after_seconds({"Retry-After": "Tue, 14 Nov 2023 22:13:40 GMT"}, NOW) == pytest.approx(20.0)


def test_429_wait_is_capped_and_clears_remaining() -> None:
    pacer = RateLimitPacer(max_wait=65.0)
    assert pacer.wait_after_429("GET", {"Retry-After": "600"}, NOW) == 65.0
    assert pacer.wait_after_429("GET", {}, NOW) is None
    assert pacer.remaining == 0.0


def test_window_pacer_lets_a_burst_through_then_waits_for_the_oldest_to_expire() -> None:
    pacer = WindowPacer({"DELETE": 10}, window_s=30.0, headroom_fraction=0.0)
    for i in range(10):
        assert pacer.wait_before("DELETE", 0, NOW + i) == 0.0
        pacer.record_sent("DELETE", NOW + i)
    # The 11th DELETE at NOW+10 must wait until the first (sent at NOW) leaves the window.
    assert pacer.wait_before("DELETE", 0, NOW + 10) == pytest.approx(20.0)
    assert pacer.wait_before("DELETE", 0, NOW + 30) == 0.0


def test_window_pacer_keeps_headroom_and_separates_methods() -> None:
    pacer = WindowPacer({"GET": 200, "DELETE": 20}, window_s=30.0, headroom_fraction=0.1)
    for _ in range(18):
        pacer.record_sent("DELETE", NOW)
    assert pacer.wait_before("DELETE", 0, NOW + 1) == pytest.approx(29.0)
    assert pacer.wait_before("GET", 0, NOW + 1) == 0.0
    assert pacer.wait_before("OPTIONS", 0, NOW + 1) == 0.0


def test_window_pacer_429_without_headers_waits_out_the_window() -> None:
    pacer = WindowPacer({"PATCH": 100}, window_s=30.0)
    pacer.record_sent("PATCH", NOW)
    assert pacer.wait_after_429("PATCH", {}, NOW + 5) == pytest.approx(25.0)
    assert pacer.wait_after_429("PATCH", {"Retry-After": "3"}, NOW + 5) == 3.0


def test_shared_pool_is_reused_per_base_url_and_reopened_after_close() -> None:
    try:
        first = shared_http_client("https://api.miro.test/")
        assert shared_http_client("https://api.miro.test") is first
        assert shared_http_client("https://scim.miro.test") is not first
        close_shared_http_clients()
        assert first.is_closed
        assert shared_http_client("https://api.miro.test") is not first
    finally:
        close_shared_http_clients()


def test_headroom_is_the_share_usable_before_the_reserve_with_requests_in_flight_counted() -> None:
    pacer = RateLimitPacer(reserve_fraction=0.1, burst_fraction=0.0, release_fraction=0.1)
    assert pacer.headroom(NOW) is None  # nothing seen yet
    pacer.observe(headers(100_000, 100_000, NOW + 60), NOW)
    pacer.observe(headers(100_000, 60_000, NOW + 60), NOW + 1)
    assert pacer.headroom(NOW + 1) == pytest.approx(0.5)
    assert pacer.acquire("GET", 500, NOW + 1) == 0.0
    assert pacer.headroom(NOW + 1) == pytest.approx(0.495)
    assert pacer.headroom(NOW + 60) is None  # the window has reset: unknown until the next answer


def test_a_late_answer_from_the_previous_window_is_ignored() -> None:
    pacer = RateLimitPacer(reserve_fraction=0.1, burst_fraction=0.0, release_fraction=0.0)
    pacer.observe(headers(100_000, 5_000, NOW + 60), NOW)  # the new window, nearly spent
    pacer.observe(headers(100_000, 80_000, NOW), NOW + 0.1)  # an answer from the old one, late
    assert pacer.remaining == 5_000
    assert pacer.wait_before("GET", 500, NOW + 0.1) == pytest.approx(59.9)


def test_after_a_429_the_next_answer_counts_again() -> None:
    pacer = RateLimitPacer()
    pacer.observe(headers(100_000, 40_000, NOW + 60), NOW)
    pacer.wait_after_429("GET", {}, NOW + 1)  # no headers: remaining assumed 0
    pacer.observe(headers(100_000, 30_000, NOW + 60), NOW + 2)
    assert pacer.remaining == 30_000


# --- the reserve held back only once another caller shares the token ------------------------------


def spend(pacer: RateLimitPacer, cost: int, limit: int, remaining: int, reset: float, now: float) -> None:
    """One request of this pacer: booked, answered with the budget Miro reports, released."""
    assert pacer.acquire("GET", cost, now) == 0.0
    pacer.observe(headers(limit, remaining, reset), now)
    pacer.release("GET", cost)


def test_alone_on_the_token_the_whole_budget_is_spent() -> None:
    pacer = RateLimitPacer(
        reserve_fraction=0.1, burst_fraction=0.0, release_fraction=0.0, reserve_only_when_shared=True
    )
    remaining = 100_000
    for _ in range(190):  # 95,000 credits of 500: into what would be the reserve
        remaining -= 500
        spend(pacer, 500, 100_000, remaining, NOW + 30, NOW)
    assert not pacer.shared
    assert pacer.wait_before("GET", 500, NOW) == 0.0


def test_another_callers_spending_turns_the_reserve_on() -> None:
    pacer = RateLimitPacer(
        reserve_fraction=0.1, burst_fraction=0.0, release_fraction=0.0, reserve_only_when_shared=True
    )
    spend(pacer, 500, 100_000, 99_500, NOW + 30, NOW)
    # Someone else spent 2,000 credits on the same token: Miro counts 2,500 spent for our 1,000.
    spend(pacer, 500, 100_000, 97_500, NOW + 30, NOW + 1)
    assert pacer.shared
    pacer.observe(headers(100_000, 10_300, NOW + 30), NOW + 2)
    assert pacer.wait_before("GET", 500, NOW + 2) == pytest.approx(28.0)  # 10% held back until the reset


def test_a_previous_invocations_spending_in_the_first_window_is_not_another_caller() -> None:
    pacer = RateLimitPacer(
        reserve_fraction=0.1, burst_fraction=0.0, release_fraction=0.0, reserve_only_when_shared=True
    )
    # A continuation starts in a window its previous invocation already spent 60,000 of.
    spend(pacer, 500, 100_000, 39_500, NOW + 30, NOW)
    spend(pacer, 500, 100_000, 39_000, NOW + 30, NOW + 1)
    assert not pacer.shared
    # Next window: everything spent is ours until someone else's credits show.
    spend(pacer, 500, 100_000, 99_500, NOW + 90, NOW + 31)
    assert not pacer.shared
    spend(pacer, 500, 100_000, 98_000, NOW + 90, NOW + 32)
    assert pacer.shared


def test_answers_overtaking_each_other_are_not_another_caller() -> None:
    pacer = RateLimitPacer(
        reserve_fraction=0.1, burst_fraction=0.0, release_fraction=0.0, reserve_only_when_shared=True
    )
    spend(pacer, 500, 100_000, 99_500, NOW + 30, NOW)
    # Two requests in flight; the later-charged one answers first (Miro counted both).
    assert pacer.acquire("GET", 500, NOW) == 0.0
    assert pacer.acquire("GET", 500, NOW) == 0.0
    pacer.observe(headers(100_000, 98_500, NOW + 30), NOW)
    pacer.release("GET", 500)
    pacer.observe(headers(100_000, 99_000, NOW + 30), NOW)
    pacer.release("GET", 500)
    assert not pacer.shared


def test_without_the_option_the_reserve_is_always_held() -> None:
    pacer = RateLimitPacer(reserve_fraction=0.1, burst_fraction=0.0, release_fraction=0.0)
    pacer.observe(headers(100_000, 10_300, NOW + 25), NOW)
    assert pacer.wait_before("GET", 500, NOW) == pytest.approx(25.0)
