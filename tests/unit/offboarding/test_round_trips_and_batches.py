"""What a request costs in DynamoDB writes and Miro lookups, and what survives an invocation that dies
between its write before Miro and the one after (attempts are stored with the outcome)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from miro_sync.miro.errors import MiroUnavailable
from miro_sync.miro.http import SCIM_LIMITS
from miro_sync.offboarding.errors import RetryableError
from tests.unit.offboarding.fakes import InvocationCrashError, make_world, offboarding_settings


def body(action: str = "suspend", **fields: Any) -> str:
    message: dict[str, Any] = {"action": action, "requestedBy": "it-ops@example.com", "reason": "left"}
    if "email" not in fields and "memberId" not in fields:
        message["email"] = "ann@example.com"
    message.update(fields)
    return json.dumps(message)


def test_a_new_request_is_recorded_by_three_writes_and_no_read() -> None:
    world = make_world()
    assert world.worker().handle_message(body(requestId="r-1")).outcome == "done"
    # the member's other requests are read (a later, opposing one would overtake this one); the first
    # write creates the record naming the PATCH; the second stores the blast-radius count before Miro
    # is called (so a crash inside the PATCH does not count it again); the last stores the outcome
    assert world.actions.round_trips == [
        "query ann@example.com",
        "query id:m1",
        "create r-1",
        "update r-1",
        "update r-1",
    ]
    record = world.actions.items["r-1"]
    assert [(a.operation, a.status) for a in record.attempts] == [("PATCH /Users/s-ann active=false", 200)]
    assert record.budget_counted_at is not None
    assert record.in_flight is None
    assert (record.member_id, record.scim_id) == ("m1", "s-ann")


def test_a_delete_is_recorded_by_one_write_per_writing_step_with_every_attempt() -> None:
    world = make_world()
    assert world.worker().handle_message(body("delete", requestId="d-1")).outcome == "done"
    # created naming the PATCH; the count before the PATCH; between the deactivation and the DELETE;
    # the outcome
    assert world.actions.round_trips == [
        "query ann@example.com",
        "query id:m1",
        "create d-1",
        "update d-1",
        "update d-1",
        "update d-1",
    ]
    assert [step.kind for step in world.actions.items["d-1"].steps] == ["deactivate", "read_back", "delete"]
    statuses = [(a.operation, a.status) for a in world.actions.items["d-1"].attempts]
    assert statuses == [("PATCH /Users/s-ann active=false", 200), ("DELETE /Users/s-ann", 204)]


def test_a_refusal_is_one_write() -> None:
    world = make_world()
    result = world.worker().handle_message(body(email="guest@partner.com", requestId="g-1"))
    assert result.outcome == "refused"
    assert world.actions.round_trips == ["create g-1"]
    assert world.miro.writes == []


def test_a_retry_after_a_transient_failure_reads_its_record_and_keeps_every_attempt() -> None:
    world = make_world()
    world.miro.fail("set_active", MiroUnavailable("bad gateway", status=502))
    worker = world.worker()
    with pytest.raises(RetryableError):
        worker.handle_message(body(requestId="r-1"))
    assert world.actions.items["r-1"].outcome == "failed"
    assert world.actions.items["r-1"].budget_counted_at is not None  # stored with the failure
    assert worker.handle_message(body(requestId="r-1"), receive_count=2).outcome == "done"
    assert [a.status for a in world.actions.items["r-1"].attempts] == [502, 200]
    assert len(world.blast.taken) == 1


def test_an_invocation_that_dies_inside_miro_leaves_a_trace_and_the_retry_completes_once() -> None:
    world = make_world()
    worker = world.worker()
    world.miro.crash_after("set_active")
    with pytest.raises(InvocationCrashError):
        worker.handle_message(body(requestId="r-1"))
    crashed = world.actions.items["r-1"]
    assert crashed.outcome == "received"
    assert crashed.in_flight == "PATCH /Users/s-ann active=false"
    assert world.miro.writes == ["active=False:s-ann"]  # the PATCH did reach Miro

    result = worker.handle_message(body(requestId="r-1"), receive_count=2)
    assert result.outcome == "done"
    # the retry confirms the interrupted PATCH took effect instead of calling it a no-op
    assert result.reason is not None
    assert result.reason.startswith("suspend confirmed")
    record = world.actions.items["r-1"]
    deactivate = record.step("deactivate")
    assert deactivate is not None
    assert deactivate.count == 1
    assert "after the earlier attempt's PATCH" in (deactivate.answer or "")
    assert [(a.operation, a.status) for a in record.attempts] == [("PATCH /Users/s-ann active=false", None)]
    assert "interrupted" in str(record.attempts[0].detail)
    assert record.in_flight is None
    assert world.miro.writes == ["active=False:s-ann"]  # no second effect
    assert world.members.status_changes == [("m1", "suspended", False)]
    assert len(world.blast.taken) == 1  # counted by the invocation that acted, not again by the retry


def test_a_batch_looks_its_members_up_in_one_call() -> None:
    world = make_world()
    worker = world.worker()
    bodies = [
        body(email="ann@example.com", requestId="a"),
        body(email="bob@example.com", requestId="b"),
        body(email="ceo@example.com", requestId="c"),
        body(email="nobody@example.com", requestId="n"),
        body(memberId="m7", requestId="i"),
        "{not json",
    ]
    with worker.batch(bodies):
        world.miro.calls.clear()
        outcomes = [worker.handle_message(b).outcome for b in bodies[:5]]
    assert outcomes == ["done", "done", "done", "refused", "done"]
    assert world.miro.calls.count("find_members_by_email") == 0  # answered by the batch's lookup
    assert world.miro.calls.count("get_member") == 1  # by member id: no batch form in Miro's API
    assert world.actions.items["n"].outcome_reason is not None
    assert "unknown member" in world.actions.items["n"].outcome_reason


def test_the_batch_lookup_ends_with_the_batch_and_a_failed_one_falls_back() -> None:
    world = make_world()
    worker = world.worker()
    world.miro.fail("find_members_by_email", MiroUnavailable("bad gateway", status=502))
    with worker.batch([body(requestId="a")]):
        assert world.miro.calls == ["find_members_by_email"]
        assert worker.handle_message(body(requestId="a")).outcome == "done"
    assert world.miro.calls.count("find_members_by_email") == 2  # the message looked up on its own
    world.miro.calls.clear()
    assert worker.handle_message(body(email="bob@example.com", requestId="b")).outcome == "done"
    assert world.miro.calls.count("find_members_by_email") == 1  # no stale batch answer after the batch


def test_the_batch_lookup_is_not_trusted_for_long() -> None:
    world = make_world()
    worker = world.worker()
    with worker.batch([body(requestId="a")]):
        world.miro.people["m1"].role = "organization_internal_admin"  # promoted meanwhile
        world.clock.advance(minutes=2)
        result = worker.handle_message(body(requestId="a"))
    assert result.outcome == "refused"
    assert world.miro.writes == []


def test_each_container_paces_to_its_share_of_the_scim_budget() -> None:
    assert offboarding_settings().scim_limits(SCIM_LIMITS)["PATCH"] == 100  # one container: the whole budget
    two = offboarding_settings(OFFBOARDING_MAX_CONCURRENCY="2").scim_limits(SCIM_LIMITS)
    assert (two["GET"], two["PATCH"], two["DELETE"]) == (100, 50, 10)
    overridden = offboarding_settings(OFFBOARDING_MAX_CONCURRENCY="2", SCIM_BUDGET_SHARE="0.25")
    assert overridden.scim_limits(SCIM_LIMITS)["DELETE"] == 5
    assert offboarding_settings(OFFBOARDING_MAX_CONCURRENCY="1000").scim_limits(SCIM_LIMITS)["DELETE"] == 1


@pytest.mark.parametrize("share", ["0", "1.5", "half"])
def test_a_share_outside_0_to_1_is_rejected(share: str) -> None:
    with pytest.raises(Exception, match="SCIM_BUDGET_SHARE"):
        offboarding_settings(SCIM_BUDGET_SHARE=share)
