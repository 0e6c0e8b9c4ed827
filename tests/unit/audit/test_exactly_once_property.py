"""Property: whatever the faults and wherever the process dies, the stored set equals Miro's event set.

Real repositories on moto's in-process DynamoDB, the fake audit API with random refusals and
outages, random hard kills (every adapter call after the kill raises, like a dead process: no
cleanup, the lease stays held until it expires) and random hand-overs.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from miro_sync.miro.errors import MiroUnavailable
from miro_sync.store.audit import canonical_time
from miro_sync.sync.audit import AuditSyncConfig
from tests.unit.audit.fakes import (
    T0,
    FakeAuditApi,
    FakeClock,
    Killed,
    KillSwitch,
    PagesDeadline,
    make_event,
)
from tests.unit.audit.harness import Harness
from tests.unit.audit.tables import create_tables

LEASE_MS = 60_000
MEMBERS = [f"m{number}" for number in range(8)]
EVENT_TYPES = ["sign_in_succeeded", "sign_in_failed", "board_opened", "board_shared"]


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(min_value=40, max_value=150))
    span_ms = int(timedelta(days=1).total_seconds() * 1000) - 3_600_000
    offsets = draw(st.lists(st.integers(min_value=1, max_value=span_ms), min_size=count, max_size=count))
    # Several events in the same millisecond, as a busy org produces.
    offsets += offsets[: draw(st.integers(min_value=0, max_value=20))]
    return {
        "offsets": offsets,
        "actors": draw(st.lists(st.sampled_from(MEMBERS), min_size=len(offsets), max_size=len(offsets))),
        "types": draw(st.lists(st.sampled_from(EVENT_TYPES), min_size=len(offsets), max_size=len(offsets))),
        "bad": draw(st.integers(min_value=0, max_value=3)),
        "unavailable_rate": draw(st.sampled_from([0.0, 0.0, 0.1, 0.25])),
        "max_window": draw(st.sampled_from([None, timedelta(hours=3), timedelta(hours=1)])),
        "kills": draw(st.lists(st.integers(min_value=1, max_value=60), max_size=3)),
        "deadline_pages": draw(st.one_of(st.none(), st.integers(min_value=3, max_value=8))),
        "late": draw(st.lists(st.integers(min_value=1, max_value=9 * 60_000), max_size=8)),
        "new": draw(st.integers(min_value=0, max_value=40)),
        "seed": draw(st.integers(min_value=0, max_value=10_000)),
        # Whether a background write still waiting when an invocation dies lands or is lost.
        "land_writes_on_exit": draw(st.booleans()),
    }


def _drive(h: Harness, kills: list[int], deadline_pages: int | None) -> int:
    """Invoke until a run completes; returns the number of invocations."""
    pending_kills = list(kills)
    for invocation in range(400):
        switch = KillSwitch(at=pending_kills.pop(0) if pending_kills else None)
        try:
            result = h.sync(switch).run(
                owner=f"inv-{invocation}", deadline=PagesDeadline(pages=deadline_pages), lease_ms=LEASE_MS
            )
        except Killed:
            h.clock.advance(timedelta(milliseconds=LEASE_MS + 1000))  # the dead lease expires
            continue
        except MiroUnavailable:
            h.clock.advance(timedelta(seconds=30))  # the next scheduled run
            continue
        if result.outcome == "complete":
            return invocation + 1
        h.clock.advance(timedelta(seconds=1))
    raise AssertionError("no complete run after 400 invocations")


# 200 examples take minutes on a 2-core CI machine; the suite's default timeout is 300 s.
@pytest.mark.timeout(2400)
@settings(
    max_examples=int(os.environ.get("AUDIT_PROPERTY_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(scenario=scenarios())
def test_stored_set_equals_the_api_event_set(aws_env: None, scenario: dict[str, Any]) -> None:
    with mock_aws():
        tables = create_tables()
        clock = FakeClock()
        api = FakeAuditApi(
            clock=clock,
            max_window=scenario["max_window"],
            unavailable_rate=scenario["unavailable_rate"],
            seed=scenario["seed"],
        )
        config = AuditSyncConfig(
            backfill_days=1,
            overlap=timedelta(minutes=10),
            window=timedelta(hours=6),
            page_size=25,
            signal_workers=1,  # moto's in-process DynamoDB is not thread-safe
        )
        h = Harness(
            tables=tables,
            api=api,
            clock=clock,
            config=config,
            land_writes_on_exit=scenario["land_writes_on_exit"],
        )
        for member in MEMBERS:
            h.add_member(member, f"{member}@acme.example")

        truth: dict[str, Any] = {}
        start = T0 - timedelta(days=1) + timedelta(hours=1)
        for number, (offset, actor, kind) in enumerate(
            zip(scenario["offsets"], scenario["actors"], scenario["types"], strict=True)
        ):
            at = start + timedelta(milliseconds=offset)
            event = make_event(f"e{number:05d}", at, event=kind, actor_id=actor)
            api.add(at, event)
            truth[event["id"]] = (at, event)
        for number in range(scenario["bad"]):
            at = start + timedelta(hours=number + 1)
            api.add(at, make_event(f"bad{number}", at) | ({"id": ""} if number % 2 else {"createdAt": "?"}))

        _drive(h, scenario["kills"], scenario["deadline_pages"])

        # Later: events Miro shows late (inside the overlap) and new ones, then another run.
        watermark = h.checkpoint()["watermark"]
        clock.advance(timedelta(hours=1))
        for number, back_ms in enumerate(scenario["late"]):
            at = (
                T0 - timedelta(hours=1)
                if watermark is None
                else _parse(watermark) - timedelta(milliseconds=back_ms)
            )
            event = make_event(
                f"late{number}", at, event="board_opened", actor_id=MEMBERS[number % len(MEMBERS)]
            )
            api.add(at, event)
            truth[event["id"]] = (at, event)
        for number in range(scenario["new"]):
            at = clock.now - timedelta(minutes=50) + timedelta(seconds=number)
            event = make_event(
                f"new{number}", at, event="sign_in_succeeded", actor_id=MEMBERS[number % len(MEMBERS)]
            )
            api.add(at, event)
            truth[event["id"]] = (at, event)
        _drive(h, scenario["kills"][:1], scenario["deadline_pages"])

        stored = h.stored_ids()
        assert stored == sorted(truth), "stored set differs from the API's event set"
        assert len(stored) == len(set(stored))
        assert {event["id"] for event in h.forwarder.published} == set(truth)
        assert len(h.rejected()) == scenario["bad"]
        # The writes really went through the write-behind path (deferred past the next page).
        assert sum(runner.submitted for runner in h.write_runners) > 0
        for member in MEMBERS:
            record = h.members.get(member)
            assert record is not None
            sign_ins = [
                at
                for at, event in truth.values()
                if event["createdBy"]["id"] == member and event["event"] == "sign_in_succeeded"
            ]
            assert record.last_sign_in_at == (max(sign_ins) if sign_ins else None)
        tables.drop()


def _parse(value: str) -> Any:
    from miro_sync.sync.audit_events import parse_timestamp

    moment = parse_timestamp(value)
    assert moment is not None
    assert canonical_time(moment) == value
    return moment
