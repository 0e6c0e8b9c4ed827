"""Requests for one member take effect in the order they were made, repeats are reported as repeats,
cancel reaches failed requests, and a half-done delete is reported as half done."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from miro_sync.miro.errors import MiroNotFound, MiroUnavailable
from miro_sync.offboarding.errors import RetryableError
from miro_sync.offboarding.messages import MAX_NOT_BEFORE_AHEAD, MAX_NOT_BEFORE_BEHIND
from miro_sync.offboarding.model import PHASE_DUE
from tests.unit.offboarding.fakes import START, make_world


def body(action: str = "suspend", email: str = "ann@example.com", **fields: Any) -> str:
    return json.dumps(
        {"action": action, "email": email, "requestedBy": "it-ops@example.com", "reason": "left", **fields}
    )


def test_a_failed_suspend_retried_after_a_reactivate_is_not_carried_out() -> None:
    world = make_world()
    worker = world.worker()
    world.miro.fail("set_active", MiroUnavailable("bad gateway", status=502))
    with pytest.raises(RetryableError):
        worker.handle_message(body(requestId="suspend-1"), sent_at=START)
    world.miro.people["m1"].active = False  # e.g. the IdP suspended meanwhile; the operator then:
    reactivated = worker.handle_message(
        body("reactivate", requestId="reactivate-1"), sent_at=START + timedelta(minutes=5)
    )
    assert reactivated.outcome == "done"
    world.clock.advance(minutes=10)
    retried = worker.handle_message(body(requestId="suspend-1"), receive_count=2, sent_at=START)
    assert retried.outcome == "refused"
    assert "overtaken by a later request" in (retried.reason or "")
    assert "reactivate-1" in (retried.reason or "")
    assert world.miro.people["m1"].active is True
    assert world.miro.writes == ["active=True:s-ann"]


def test_an_earlier_request_delivered_late_does_not_undo_a_later_one() -> None:
    world = make_world()
    worker = world.worker()
    # SQS standard queues do not keep order: the reactivate (sent second) arrives first
    world.miro.people["m1"].active = False
    assert (
        worker.handle_message(body("reactivate", requestId="b"), sent_at=START + timedelta(seconds=2)).outcome
        == "done"
    )
    late = worker.handle_message(body(requestId="a"), sent_at=START)
    assert late.outcome == "refused"
    assert world.miro.people["m1"].active is True


def test_requests_in_the_same_direction_do_not_overtake_each_other() -> None:
    world = make_world()
    worker = world.worker()
    later = worker.handle_message(body(requestId="s"), sent_at=START + timedelta(seconds=2))
    assert later.outcome == "done"
    # an earlier delete delivered after a later suspend: both want the member gone, so it is carried out
    earlier = worker.handle_message(body("delete", requestId="d"), sent_at=START)
    assert earlier.outcome == "done"
    assert world.miro.writes == ["active=False:s-ann", "delete:s-ann"]


def test_a_request_by_member_id_is_ordered_with_one_by_email() -> None:
    world = make_world()
    worker = world.worker()
    world.miro.people["m1"].active = False
    reactivated = worker.handle_message(
        json.dumps(
            {
                "action": "reactivate",
                "memberId": "m1",
                "requestedBy": "a",
                "reason": "b",
                "requestId": "by-id",
            }
        ),
        sent_at=START + timedelta(seconds=5),
    )
    assert reactivated.outcome == "done"
    late = worker.handle_message(body(requestId="by-email"), sent_at=START)
    assert late.outcome == "refused"
    assert "by-id" in (late.reason or "")


def test_a_later_dry_run_never_overtakes_a_real_request() -> None:
    world = make_world()
    worker = world.worker()
    world.miro.people["m1"].active = False
    plan = worker.handle_message(
        body("reactivate", requestId="plan", dryRun=True), sent_at=START + timedelta(seconds=5)
    )
    assert plan.outcome == "dry-run"
    assert worker.handle_message(body(requestId="real"), sent_at=START).outcome == "done"


def test_a_hand_written_request_sent_again_after_an_opposing_one_stands_as_of_its_new_send() -> None:
    world = make_world()
    worker = world.worker()
    world.miro.fail("set_active", MiroUnavailable("bad gateway", status=502))
    with pytest.raises(RetryableError):
        worker.handle_message(body(), sent_at=START)  # derived id; its record is `failed`
    world.miro.people["m1"].active = False
    world.clock.advance(minutes=1)
    worker.handle_message(body("reactivate"), sent_at=START + timedelta(minutes=1))
    world.clock.advance(minutes=1)
    # the operator sends the suspend again: the latest word is "suspend"
    again = worker.handle_message(body(), sent_at=START + timedelta(minutes=2))
    assert again.outcome == "done"
    assert world.miro.people["m1"].active is False


def test_an_opposing_request_waiting_for_its_not_before_does_not_overtake_yet() -> None:
    world = make_world()
    worker = world.worker()
    world.miro.people["m1"].active = False
    world.miro.fail("set_active", MiroUnavailable("bad gateway", status=502))
    with pytest.raises(RetryableError):
        worker.handle_message(body("reactivate", requestId="back"), sent_at=START)
    later = (START + timedelta(days=30)).isoformat()
    pending = worker.handle_message(
        body("delete", requestId="later", notBefore=later), sent_at=START + timedelta(minutes=1)
    )
    assert pending.outcome == "pending"
    retried = worker.handle_message(body("reactivate", requestId="back"), receive_count=2, sent_at=START)
    assert retried.outcome == "done"
    assert world.miro.people["m1"].active is True


def test_an_sqs_redelivery_after_an_opposing_request_is_a_duplicate() -> None:
    world = make_world()
    worker = world.worker()
    first = worker.handle_message(body(), sent_at=START)
    world.clock.advance(minutes=1)
    worker.handle_message(body("reactivate"), sent_at=START + timedelta(minutes=1))
    world.clock.advance(minutes=1)
    redelivered = worker.handle_message(body(), receive_count=2, sent_at=START)  # same SentTimestamp
    assert redelivered.outcome == "duplicate"
    assert redelivered.request_id == first.request_id
    assert world.miro.people["m1"].active is True


def test_many_suspend_reactivate_cycles_step_to_the_latest_generation() -> None:
    world = make_world()
    worker = world.worker()
    for cycle in range(12):
        at = START + timedelta(minutes=2 * cycle)
        world.clock.now = at
        assert worker.handle_message(body(), sent_at=at).outcome == "done", cycle
        world.clock.now = at + timedelta(minutes=1)
        assert worker.handle_message(body("reactivate"), sent_at=at + timedelta(minutes=1)).outcome == "done"
    assert world.miro.people["m1"].active is True
    assert len(world.miro.writes) == 24


def test_a_hand_written_repeat_after_an_opposing_request_is_a_new_request() -> None:
    world = make_world()
    worker = world.worker()
    first = worker.handle_message(body(), sent_at=START)
    assert first.outcome == "done"
    world.clock.advance(minutes=1)
    worker.handle_message(body("reactivate"), sent_at=START + timedelta(minutes=1))
    world.clock.advance(minutes=1)
    # well inside the dedupe window, but the member's state says otherwise: it is carried out again
    again = worker.handle_message(body(), sent_at=START + timedelta(minutes=2))
    assert again.outcome == "done"
    assert again.request_id == first.request_id + ".2"
    assert world.miro.people["m1"].active is False
    # and a plain repeat of that one is a duplicate that says what the original came to
    repeat = worker.handle_message(body(), sent_at=START + timedelta(minutes=2))
    assert repeat.outcome == "duplicate"
    assert "(done: suspend confirmed)" in (repeat.reason or "")


def test_a_failed_request_is_claimed_before_it_is_retried_so_a_cancel_cannot_land_inside_miro() -> None:
    world = make_world()
    worker = world.worker()
    world.miro.fail("set_active", MiroUnavailable("bad gateway", status=502))
    with pytest.raises(RetryableError):
        worker.handle_message(body(requestId="r-1"))
    assert world.actions.items["r-1"].outcome == "failed"
    seen: list[str] = []
    set_active = world.miro.set_active

    def observed_set_active(user_id: str, active: bool) -> Any:
        seen.append(world.actions.items["r-1"].outcome)  # what an operator's cancel would find now
        return set_active(user_id, active)

    world.miro.set_active = observed_set_active  # type: ignore[method-assign]
    assert worker.handle_message(body(requestId="r-1"), receive_count=2).outcome == "done"
    assert seen == ["received"]


def test_a_cancelled_failed_request_does_nothing_when_it_comes_back() -> None:
    world = make_world()
    worker = world.worker()
    world.miro.fail("set_active", MiroUnavailable("bad gateway", status=502))
    with pytest.raises(RetryableError):
        worker.handle_message(body(requestId="r-1"))
    world.actions.update(
        "r-1", at=world.clock.now, expected={"pending", "held", "failed"}, outcome="cancelled"
    )
    result = worker.handle_message(body(requestId="r-1"), receive_count=2)
    assert result.outcome == "duplicate"
    assert "cancelled" in (result.reason or "")
    assert world.miro.writes == []


def test_a_delete_refused_after_the_deactivation_is_partial_and_the_member_is_suspended() -> None:
    world = make_world()
    world.miro.last_team_admin_ids.add("m1")
    result = world.worker().handle_message(body("delete", requestId="d-1"))
    assert result.outcome == "partial"
    assert "suspended, but Miro refused the delete" in (result.reason or "")
    assert "last admin of a team" in (result.reason or "")
    record = world.actions.items["d-1"]
    assert record.outcome == "partial"
    assert [(a.operation, a.status) for a in record.attempts] == [
        ("PATCH /Users/s-ann active=false", 200),
        ("DELETE /Users/s-ann", 409),
    ]
    assert world.members.status_changes == [("m1", "suspended", False)]
    assert world.miro.people["m1"].active is False
    assert world.metrics.values["OffboardingPartial"] == 1


def test_a_delete_of_a_member_suspended_before_the_request_is_refused_not_partial() -> None:
    world = make_world()
    world.miro.last_team_admin_ids.add("m7")  # gone@example.com is already inactive
    result = world.worker().handle_message(body("delete", email="gone@example.com", requestId="d-7"))
    assert result.outcome == "refused"
    assert "already suspended before this request" in (result.reason or "")
    assert world.members.status_changes == []


def test_a_retry_after_the_deactivation_took_effect_reports_partial() -> None:
    world = make_world()
    world.miro.last_team_admin_ids.add("m1")
    world.miro.fail("delete_user", MiroUnavailable("bad gateway", status=502))
    worker = world.worker()
    with pytest.raises(RetryableError):
        worker.handle_message(body("delete", requestId="d-1"))
    assert world.miro.people["m1"].active is False  # the first attempt deactivated
    result = worker.handle_message(body("delete", requestId="d-1"), receive_count=2)
    assert result.outcome == "partial"


def test_a_not_before_far_in_the_past_is_a_typo_not_now() -> None:
    world = make_world()
    result = world.worker().handle_message(body("delete", notBefore="0225-03-01T09:00:00Z"))
    assert result.outcome == "refused"
    assert "in the past" in (result.reason or "")
    assert world.miro.writes == []


def test_reactivate_counts_toward_the_blast_radius() -> None:
    world = make_world()
    worker = world.worker(max_per_hour=1)
    assert worker.handle_message(body(requestId="s-1")).outcome == "done"
    held = worker.handle_message(body("reactivate", requestId="r-1"))
    assert held.outcome == "held"
    assert world.miro.writes == ["active=False:s-ann"]


def test_a_request_processed_late_is_ordered_by_when_it_was_sent() -> None:
    world = make_world()
    worker = world.worker()
    world.miro.people["m1"].active = False
    world.clock.now = START + timedelta(minutes=5)
    assert (
        worker.handle_message(body("reactivate", requestId="b"), sent_at=START + timedelta(minutes=5)).outcome
        == "done"
    )
    world.clock.now = START + timedelta(minutes=10)  # the suspend, sent first, is read only now
    late = worker.handle_message(body(requestId="a"), sent_at=START)
    assert late.outcome == "refused"
    assert "overtaken" in (late.reason or "")


def test_a_due_delete_is_overtaken_by_a_reactivate_made_while_it_waited() -> None:
    world = make_world()
    worker = world.worker()
    due = START + timedelta(days=2)
    assert (
        worker.handle_message(body("delete", requestId="d", notBefore=due.isoformat()), sent_at=START).outcome
        == "pending"
    )
    world.miro.people["m1"].active = False
    world.clock.now = START + timedelta(days=1)
    assert worker.handle_message(body("reactivate", requestId="r"), sent_at=world.clock.now).outcome == "done"
    world.clock.now = due + timedelta(seconds=1)
    result = worker.handle_message(world.actions.items["d"].body, phase=PHASE_DUE, sent_at=world.clock.now)
    assert result.outcome == "refused"
    assert "overtaken by a later request" in (result.reason or "")
    assert world.miro.people["m1"].active is True


def test_an_earlier_request_by_member_id_is_overtaken_by_a_later_one_by_email() -> None:
    world = make_world()
    worker = world.worker()
    world.miro.people["m1"].active = False
    assert (
        worker.handle_message(
            body("reactivate", requestId="by-email"), sent_at=START + timedelta(seconds=5)
        ).outcome
        == "done"
    )
    late = worker.handle_message(
        json.dumps(
            {"action": "suspend", "memberId": "m1", "requestedBy": "a", "reason": "b", "requestId": "by-id"}
        ),
        sent_at=START,
    )
    assert late.outcome == "refused"
    assert "by-email" in (late.reason or "")


@pytest.mark.parametrize("closed", ["refused", "cancelled"])
def test_a_later_opposing_request_that_was_refused_or_cancelled_does_not_overtake(closed: str) -> None:
    world = make_world()
    worker = world.worker()
    world.miro.people["m1"].active = False
    worker.handle_message(
        body("reactivate", requestId="r", notBefore=(START + timedelta(days=1)).isoformat()),
        sent_at=START + timedelta(seconds=5),
    )
    world.actions.items["r"] = world.actions.items["r"].model_copy(update={"outcome": closed})
    world.miro.people["m1"].active = True
    assert worker.handle_message(body(requestId="s"), sent_at=START).outcome == "done"


def test_an_opposing_request_whose_not_before_has_come_overtakes() -> None:
    world = make_world()
    worker = world.worker()
    worker.handle_message(
        body("reactivate", requestId="r", notBefore=(START + timedelta(hours=1)).isoformat()),
        sent_at=START + timedelta(seconds=5),
    )
    assert world.actions.items["r"].outcome == "pending"
    world.clock.now = START + timedelta(hours=2)  # due; its message is on its way
    late = worker.handle_message(body(requestId="s"), sent_at=START)
    assert late.outcome == "refused"
    assert "overtaken" in (late.reason or "")


def test_a_delete_whose_user_is_gone_by_the_delete_call_is_done() -> None:
    world = make_world()
    world.miro.fail("delete_user", MiroNotFound("User not found", status=404))
    result = world.worker().handle_message(body("delete", requestId="d"))
    assert result.outcome == "done"


def test_a_not_before_exactly_at_the_bounds_is_accepted() -> None:
    world = make_world()
    worker = world.worker()
    ahead = worker.handle_message(
        body("delete", requestId="a", notBefore=(START + MAX_NOT_BEFORE_AHEAD).isoformat())
    )
    assert ahead.outcome == "pending"
    behind = worker.handle_message(body(requestId="b", notBefore=(START - MAX_NOT_BEFORE_BEHIND).isoformat()))
    assert behind.outcome == "done"
