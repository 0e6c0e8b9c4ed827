"""The emulator's record of a run: timing, cost per budget and cursor links, as benchmarks read them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from miro_emulator.app import Emulator
from miro_emulator.config import EmulatorConfig
from miro_emulator.http import Request, Response
from miro_emulator.record import listing_of
from tests.unit.emulator.clocks import FakeTime


@contextmanager
def core(latency_ms: float = 50.0, credits: int = 10**9) -> Iterator[tuple[Emulator, FakeTime]]:
    clock = FakeTime()
    emulator = Emulator(
        EmulatorConfig(members=25, seed=4, latency_ms=latency_ms, window_s=10, credits_per_window=credits),
        sleep=clock.advance,
        monotonic=clock.monotonic,
        wall=clock.time,
    )
    try:
        yield emulator, clock
    finally:
        emulator.close()


def get(emulator: Emulator, path: str, query: dict[str, list[str]], token: str | None = None) -> Response:
    response = emulator.handle(Request("GET", path, query, {"authorization": f"Bearer {token}"}))
    assert isinstance(response, Response)
    return response


def test_member_pages_are_recorded_as_one_cursor_chain_with_cost_and_timing() -> None:
    with core() as (emulator, _clock):
        path = f"/v2/orgs/{emulator.config.org_id}/members"
        cursor: str | None = None
        pages = 0
        while True:
            query = {"limit": ["10"], **({"cursor": [cursor]} if cursor else {})}
            body = get(emulator, path, query, emulator.config.token).body
            assert isinstance(body, dict)
            pages += 1
            cursor = body.get("cursor")
            if not cursor:
                break
        records = emulator.requests_log.snapshot()["requests"]
    assert pages == 3
    assert len(records) == 3
    assert {r["listing"] for r in records} == {f"{path}?limit=10"}
    # Each page sends the cursor the previous answer returned; the last answer returns none.
    assert records[0]["position"] is None
    assert [r["position"] for r in records[1:]] == [r["nextPosition"] for r in records[:-1]]
    assert records[-1]["nextPosition"] is None
    for record in records:
        assert record["budget"] == "rest"
        assert record["cost"] == 500
        assert record["status"] == 200
        # Charged after the injected latency, answered at once (the fake clock only moves in sleeps).
        assert abs(record["chargedS"] - record["receivedS"] - 0.05) < 1e-6
        assert record["answeredS"] == record["chargedS"]


def test_refused_requests_are_recorded_without_a_charge_and_reset_clears_the_record() -> None:
    with core(latency_ms=0, credits=700) as (emulator, _clock):
        path = f"/v2/orgs/{emulator.config.org_id}/members"
        statuses = [get(emulator, path, {"limit": ["1"]}, emulator.config.token).status for _ in range(2)]
        assert get(emulator, path, {}, "not-a-token").status == 401
        records = emulator.requests_log.snapshot()["requests"]
        assert statuses == [200, 429]
        assert [(r["status"], r["budget"], r["cost"]) for r in records] == [
            (200, "rest", 500),
            (429, None, 0),
            (401, None, 0),
        ]
        assert emulator.requests_log.snapshot(since=2)["requests"] == records[2:]
        emulator.reset_stats()
        assert emulator.requests_log.snapshot()["requests"] == []


def test_scim_requests_charge_their_method_budget_and_record_start_index() -> None:
    with core(latency_ms=0) as (emulator, _clock):
        token = emulator.config.scim_token
        get(emulator, "/api/v1/scim/Users", {"count": ["10"]}, token)
        get(emulator, "/api/v1/scim/Users", {"count": ["10"], "startIndex": ["11"]}, token)
        records = emulator.requests_log.snapshot()["requests"]
        limits = emulator.rate_limits()
    assert [(r["budget"], r["cost"], r["position"]) for r in records] == [
        ("scim_GET", 1, None),
        ("scim_GET", 1, "11"),
    ]
    assert records[0]["listing"] == records[1]["listing"] == "/api/v1/scim/Users?count=10"
    assert limits["scim_GET"]["spent"] == 2
    assert limits["scim_GET"]["limit"] == 200
    assert limits["rest"]["spent"] == 0


def test_rate_limits_describe_the_window_phase_and_the_spend_in_the_open_window() -> None:
    with core(latency_ms=0, credits=1000) as (emulator, clock):
        path = f"/v2/orgs/{emulator.config.org_id}/members"
        get(emulator, path, {"limit": ["1"]}, emulator.config.token)
        rest = emulator.rate_limits()["rest"]
        assert rest == {
            "limit": 1000,
            "windowS": 10,
            "phaseS": 1_700_000_000,
            "windowStartS": 1_700_000_000,
            "spent": 500,
        }
        clock.advance(10)  # the next window: nothing spent in it yet
        assert emulator.rate_limits()["rest"]["spent"] == 0
        assert emulator.rate_limits()["rest"]["windowStartS"] == 1_700_000_010


def test_a_listing_is_its_path_and_query_without_the_position() -> None:
    assert listing_of("/v2/x", {"limit": ["5"], "cursor": ["abc"], "a": ["1"]}) == (
        "/v2/x?a=1&limit=5",
        "abc",
    )
    assert listing_of("/v2/x", {}) == ("/v2/x", None)
    assert listing_of("/Users", {"startIndex": ["1001"], "count": ["1000"]}) == ("/Users?count=1000", "1001")
