from __future__ import annotations

import json
from datetime import timedelta

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from miro_sync.miro.errors import MiroBadRequest, MiroRateLimited, MiroUnavailable
from miro_sync.offboarding.errors import RetryableError
from miro_sync.offboarding.model import PHASE_ATTRIBUTE, PHASE_DUE, PHASE_RELEASE
from tests.unit.offboarding.fakes import START, DeadLetter, body, make_world


def test_suspend_patches_reads_back_and_updates_the_members_table() -> None:
    world = make_world()
    result = world.worker().handle_message(body())
    assert result.outcome == "done"
    assert world.miro.writes == ["active=False:s-ann"]
    assert world.miro.people["m1"].active is False
    # read back after the write
    assert world.miro.calls[-2:] == ["set_active", "get_user"]
    assert world.members.status_changes == [("m1", "suspended", False)]
    record = world.actions.items[result.request_id]
    assert record.outcome == "done"
    assert record.member_id == "m1"
    assert record.scim_id == "s-ann"
    assert record.role == "organization_internal_user"
    assert [(a.operation, a.status) for a in record.attempts] == [("PATCH /Users/s-ann active=false", 200)]
    assert world.metrics.values["OffboardingEffects"] == 1


def test_duplicates_and_redeliveries_have_one_effect() -> None:
    world = make_world()
    worker = world.worker()
    first = worker.handle_message(body(requestId="r-1"))
    again = worker.handle_message(body(requestId="r-1"), receive_count=2)
    # same intent without a requestId: derived key, also one effect
    derived_a = worker.handle_message(body(email="bob@example.com"))
    derived_b = worker.handle_message(body(email="bob@example.com"))
    assert (first.outcome, again.outcome) == ("done", "duplicate")
    assert again.reason == "duplicate of r-1 (done: suspend confirmed)"
    assert derived_a.request_id == derived_b.request_id
    assert (derived_a.outcome, derived_b.outcome) == ("done", "duplicate")
    assert world.miro.writes == ["active=False:s-ann", "active=False:s-bob"]


def test_duplicate_after_the_idempotency_key_expired_is_still_a_no_op() -> None:
    world = make_world()
    worker = world.worker()
    worker.handle_message(body(requestId="r-1"))
    world.idempotency.records.clear()  # TTL passed
    world.miro.people["m1"].active = True  # even if someone reactivated the user by hand since
    repeat = worker.handle_message(body(requestId="r-1"))
    # reported as a repeat of the original, never as "done" now: the member is active again
    assert (repeat.outcome, repeat.reason) == ("duplicate", "duplicate of r-1 (done: suspend confirmed)")
    assert world.miro.writes == ["active=False:s-ann"]


def test_concurrent_duplicate_is_retried_not_dropped() -> None:
    world = make_world()
    worker = world.worker()
    seen: list[Exception] = []

    def duplicate_arrives(operation: str) -> None:
        # the same request delivered to a second invocation while the first is inside Miro
        with pytest.raises(IdempotencyAlreadyInProgressError) as in_progress:
            worker.handle_message(body(requestId="r-1"))
        seen.append(in_progress.value)

    world.miro.on_call = duplicate_arrives
    assert worker.handle_message(body(requestId="r-1")).outcome == "done"
    assert len(seen) == 1  # the duplicate's SQS record fails and comes back later...
    assert worker.handle_message(body(requestId="r-1"), receive_count=2).outcome == "duplicate"
    assert world.miro.writes == ["active=False:s-ann"]  # ...to find the work done


@pytest.mark.parametrize(
    ("email", "why"),
    [
        ("guest@partner.com", "team guests cannot be changed"),
        ("ext@partner.com", "external users cannot be changed"),
        ("boss@example.com", "Company Admin"),
        ("ceo@example.com", "protected account"),
        ("nobody@example.com", "unknown member"),
    ],
)
def test_guards_refuse_before_any_write_and_for_good(email: str, why: str) -> None:
    world = make_world()
    worker = world.worker(protected=["ceo@example.com"])
    result = worker.handle_message(body("delete", email=email))
    assert result.outcome == "refused"
    assert why in (result.reason or "")
    assert world.miro.writes == []
    assert world.blast.taken == []
    assert world.actions.items[result.request_id].outcome_reason == result.reason
    # final: a redelivery does not try again
    calls = len(world.miro.calls)
    again = worker.handle_message(body("delete", email=email))
    assert (again.outcome, again.reason) == (
        "duplicate",
        f"duplicate of {result.request_id} (refused: {result.reason})",
    )
    assert len(world.miro.calls) == calls


def test_admins_can_be_offboarded_when_explicitly_allowed() -> None:
    world = make_world()
    assert world.worker(allow_admins=True).handle_message(body(email="boss@example.com")).outcome == "done"
    assert world.miro.writes == ["active=False:s-boss"]


def test_scim_user_of_another_person_is_refused() -> None:
    world = make_world()
    world.members.records["m1"].scim_id = "s-bob"  # a stale or corrupted table row
    result = world.worker().handle_message(body())
    assert result.outcome == "refused"
    assert "refusing to act on another account" in (result.reason or "")
    assert world.miro.writes == []


def test_member_missing_from_the_table_is_resolved_through_miro() -> None:
    world = make_world(table=False)
    result = world.worker().handle_message(body(email="bob@example.com"))
    assert result.outcome == "done"
    assert "find_members_by_email" in world.miro.calls
    assert "find_user_by_username" in world.miro.calls
    assert world.actions.items[result.request_id].scim_id == "s-bob"


def test_request_by_member_id() -> None:
    world = make_world()
    result = world.worker().handle_message(body("suspend", memberId="m2"))
    assert result.outcome == "done"
    assert world.miro.writes == ["active=False:s-bob"]


def test_delete_suspends_first_then_deletes_and_warns_about_boards() -> None:
    world = make_world()
    result = world.worker().handle_message(body("delete"))
    assert result.outcome == "done"
    assert world.miro.writes == ["active=False:s-ann", "delete:s-ann"]
    record = world.actions.items[result.request_id]
    assert record.warning is not None
    assert "3 boards change owner" in record.warning
    assert [a.status for a in record.attempts] == [200, 204]
    assert world.members.status_changes == [("m1", "deprovisioned", False)]


def test_delete_of_an_already_suspended_user_skips_the_patch() -> None:
    world = make_world()
    result = world.worker().handle_message(body("delete", email="gone@example.com"))
    assert result.outcome == "done"
    assert world.miro.writes == ["delete:s-gone"]


def test_reactivate() -> None:
    world = make_world()
    result = world.worker().handle_message(body("reactivate", email="gone@example.com"))
    assert result.outcome == "done"
    assert world.miro.people["m7"].active is True
    assert world.members.status_changes == [("m7", "active", True)]
    assert len(world.blast.taken) == 1  # a change like any other: it counts toward the limit


def test_downgrade_instead_of_deactivation_is_not_reported_done() -> None:
    world = make_world()
    world.miro.ignore_deactivation = True
    with pytest.raises(RetryableError, match="read-back"):
        world.worker().handle_message(body(requestId="r-1"))
    record = world.actions.items["r-1"]
    assert record.outcome == "failed"
    assert record.last_error is not None
    assert "read-back" in record.last_error
    assert world.members.status_changes == []


def test_transient_failures_go_back_to_the_queue_and_then_succeed_once() -> None:
    world = make_world()
    world.miro.fail("set_active", MiroRateLimited("too many requests", status=429))
    world.miro.fail("set_active", MiroUnavailable("bad gateway", status=502))
    worker = world.worker()
    for attempt in (1, 2):
        with pytest.raises(RetryableError):
            worker.handle_message(body(requestId="r-1"), receive_count=attempt)
        assert world.actions.items["r-1"].outcome == "failed"
    assert worker.handle_message(body(requestId="r-1"), receive_count=3).outcome == "done"
    record = world.actions.items["r-1"]
    assert [a.status for a in record.attempts] == [429, 502, 200]
    assert record.last_error is None
    assert world.miro.writes == ["active=False:s-ann"]
    assert len(world.blast.taken) == 1  # the budget is counted once per request, not per attempt


def test_last_error_is_kept_for_the_dlq() -> None:
    world = make_world()
    world.miro.fail("find_members_by_email", MiroUnavailable("connection reset", status=None))
    with pytest.raises(RetryableError):
        world.worker().handle_message(body(requestId="r-9"), receive_count=5)
    record = world.actions.items["r-9"]
    assert record.outcome == "failed"
    assert record.receive_count == 5
    assert record.last_error is not None
    assert "connection reset" in record.last_error


def test_last_admin_conflict_is_a_final_refusal() -> None:
    world = make_world()
    world.miro.last_admin_ids.add("m5")
    result = world.worker(allow_admins=True).handle_message(body("delete", email="boss@example.com"))
    assert result.outcome == "refused"
    assert "409" in (result.reason or "")
    assert world.actions.items[result.request_id].attempts[-1].status == 409


def test_bad_request_from_miro_is_a_final_refusal() -> None:
    world = make_world()
    world.miro.fail("set_active", MiroBadRequest("invalid patch", status=400))
    result = world.worker().handle_message(body())
    assert result.outcome == "refused"
    assert world.miro.writes == []


def test_dry_run_reports_the_plan_and_changes_nothing() -> None:
    world = make_world()
    result = world.worker().handle_message(body("delete", dryRun=True))
    assert result.outcome == "dry-run"
    assert result.reason is not None
    assert "would delete ann@example.com" in result.reason
    assert "owns 3 boards" in result.reason
    assert world.miro.writes == []
    assert world.blast.taken == []
    assert world.members.status_changes == []


def test_blast_radius_holds_then_release_lets_it_through() -> None:
    world = make_world()
    worker = world.worker(max_per_hour=1)
    assert worker.handle_message(body(email="ann@example.com", requestId="r-1")).outcome == "done"
    held = worker.handle_message(body(email="bob@example.com", requestId="r-2"))
    assert held.outcome == "held"
    assert world.actions.items["r-2"].outcome == "held"
    assert world.metrics.values["OffboardingHeld"] == 1
    assert world.miro.writes == ["active=False:s-ann"]
    # redelivery / duplicate: still held, still no effect
    assert worker.handle_message(body(email="bob@example.com", requestId="r-2")).outcome == "held"
    # a release message alone is no approval: the operator's mark in the table is
    assert (
        worker.handle_message(body(email="bob@example.com", requestId="r-2"), phase=PHASE_RELEASE).outcome
        == "held"
    )
    world.actions.update(
        "r-2", at=START, expected={"held"}, fields={"released_by": "op", "released_at": "now"}
    )
    released = worker.handle_message(body(email="bob@example.com", requestId="r-2"), phase=PHASE_RELEASE)
    assert released.outcome == "done"
    assert world.miro.writes == ["active=False:s-ann", "active=False:s-bob"]
    assert len(world.blast.forced) == 1  # counted, bypassing the limit


def test_blast_radius_window_rolls() -> None:
    world = make_world()
    worker = world.worker(max_per_hour=1)
    worker.handle_message(body(email="ann@example.com"))
    world.clock.advance(minutes=61)
    assert worker.handle_message(body(email="bob@example.com")).outcome == "done"


def test_not_before_within_15_minutes_is_delayed_in_sqs() -> None:
    world = make_world()
    worker = world.worker()
    due = START + timedelta(minutes=10)
    first = worker.handle_message(body("delete", requestId="r-1", notBefore=due.isoformat()))
    assert first.outcome == "pending"
    assert world.actions.items["r-1"].outcome == "pending"
    [message] = world.queue.sent
    assert message.attributes == {PHASE_ATTRIBUTE: PHASE_DUE}
    assert 600 <= message.delay_seconds <= 601
    # a duplicate of the request does not schedule again
    assert (
        worker.handle_message(body("delete", requestId="r-1", notBefore=due.isoformat())).outcome == "pending"
    )
    assert len(world.queue.sent) == 1
    assert world.miro.writes == []
    world.clock.now = due + timedelta(seconds=1)
    assert worker.handle_message(message.body, phase=PHASE_DUE).outcome == "done"
    assert world.miro.writes == ["active=False:s-ann", "delete:s-ann"]


def test_not_before_later_waits_for_the_sweep() -> None:
    world = make_world()
    worker = world.worker()
    due = START + timedelta(days=2)
    assert (
        worker.handle_message(body("delete", requestId="r-1", notBefore=due.isoformat())).outcome == "pending"
    )
    assert world.queue.sent == []
    assert worker.sweep_due() == 0
    world.clock.now = due - timedelta(minutes=5)
    assert worker.sweep_due() == 1
    assert worker.sweep_due() == 0  # already handed to SQS
    [message] = world.queue.sent
    assert message.attributes == {PHASE_ATTRIBUTE: PHASE_DUE}
    assert 300 <= message.delay_seconds <= 301
    world.clock.now = due
    assert worker.handle_message(message.body, phase=PHASE_DUE).outcome == "done"


def test_cancelled_pending_action_never_runs() -> None:
    world = make_world()
    worker = world.worker()
    due = START + timedelta(minutes=5)
    worker.handle_message(body("delete", requestId="r-1", notBefore=due.isoformat()))
    world.actions.update(
        "r-1", at=START, expected={"pending"}, outcome="cancelled", fields={"cancelled_by": "op"}
    )
    world.clock.now = due
    assert worker.handle_message(world.queue.sent[0].body, phase=PHASE_DUE).outcome == "cancelled"
    assert world.miro.writes == []


def test_early_due_message_is_deferred_again() -> None:
    world = make_world()
    worker = world.worker()
    due = START + timedelta(minutes=5)
    worker.handle_message(body("delete", requestId="r-1", notBefore=due.isoformat()))
    assert worker.handle_message(world.queue.sent[0].body, phase=PHASE_DUE).outcome == "pending"
    assert len(world.queue.sent) == 2
    assert world.miro.writes == []


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("{not json", "malformed JSON"),
        ("[1, 2]", "must be a JSON object"),
        (body("nuke"), "must be one of suspend, delete, reactivate"),
        (body(email="ann@example.com", memberId="m1"), "exactly one of 'email' or 'memberId'"),
        (json.dumps({"action": "suspend", "requestedBy": "a", "reason": "b"}), "exactly one of"),
        (body(email="not-an-email"), "not a valid email address"),
        (body(extra="x"), "extra: unknown field"),
        (body(dryRun="yes"), "dryRun"),
        (body("delete", notBefore="2025-03-04T10:00:00"), "explicit offset"),
        (body(reason=""), "reason"),
    ],
)
def test_poison_messages_are_refused_with_a_precise_reason_and_not_retried(raw: str, why: str) -> None:
    world = make_world()
    worker = world.worker()
    result = worker.handle_message(raw)
    assert result.outcome == "refused"
    assert why in (result.reason or "")
    record = world.actions.items[result.request_id]
    assert record.outcome == "refused"
    assert record.outcome_reason == result.reason
    assert record.body == raw
    # copied to the dead-letter queue as received, with the same reason
    assert world.dead_letters.sent == [DeadLetter(raw, result.request_id, result.reason or "")]
    assert record.dead_lettered_at is not None
    # redelivered: recorded once, copied once, still acknowledged
    assert worker.handle_message(raw).request_id == result.request_id
    assert len(world.actions.items) == 1
    assert len(world.dead_letters.sent) == 1
    assert world.miro.calls == []


def test_poison_message_whose_dead_letter_copy_failed_comes_back_and_is_copied_once() -> None:
    world = make_world()
    worker = world.worker()
    world.dead_letters.failures = 1
    with pytest.raises(RetryableError, match="dead-letter queue"):
        worker.handle_message("{not json")
    [record] = world.actions.items.values()
    assert record.outcome == "refused"  # the refusal itself is recorded before the copy is tried
    assert record.dead_lettered_at is None
    assert world.dead_letters.sent == []
    result = worker.handle_message("{not json")  # the redelivery
    assert result.outcome == "refused"
    assert [letter.body for letter in world.dead_letters.sent] == ["{not json"]
    assert world.actions.items[result.request_id].dead_lettered_at is not None
    worker.handle_message("{not json")
    assert len(world.dead_letters.sent) == 1
    assert world.metrics.values["OffboardingInvalid"] == 1


def test_valid_requests_never_reach_the_dead_letter_queue() -> None:
    world = make_world()
    worker = world.worker()
    worker.handle_message(body(email="guest@partner.com", requestId="r-guest"))
    assert world.actions.items["r-guest"].outcome == "refused"
    assert world.dead_letters.sent == []


def test_unknown_phase_marker_grants_nothing() -> None:
    world = make_world()
    worker = world.worker(max_per_hour=0)
    assert worker.handle_message(body(requestId="r-1"), phase="release-please").outcome == "held"
