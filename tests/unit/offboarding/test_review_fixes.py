"""Regression tests for the review of the offboarding worker: reused request ids, lost due messages, a
completed delete recorded as refused, derived ids, structured logs, settings defaults."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools import Logger

from miro_sync.miro.errors import MiroUnavailable
from miro_sync.offboarding.messages import OffboardingRequest, parse_request
from miro_sync.offboarding.worker import PHASE_DUE, RetryableError
from miro_sync.settings.offboarding import OffboardingSettings
from miro_sync_cli.offboard_cmd import InputError, build_requests
from tests.unit.offboarding.fakes import START, InvocationCrashError, make_world

REPO = Path(__file__).resolve().parents[3]


def body(action: str = "suspend", **fields: Any) -> str:
    message: dict[str, Any] = {
        "action": action,
        "requestedBy": "it-ops@example.com",
        "reason": "left the company",
    }
    if "email" not in fields and "memberId" not in fields:
        message["email"] = "ann@example.com"
    message.update(fields)
    return json.dumps(message)


# ---------------------------------------------------------------- 1. a reused requestId


def test_a_reused_request_id_with_other_content_is_refused_and_the_original_is_untouched() -> None:
    world = make_world()
    worker = world.worker()
    due = (START + timedelta(days=2)).isoformat()
    assert worker.handle_message(body("suspend", requestId="r1", notBefore=due)).outcome == "pending"
    original = world.actions.items["r1"].model_copy(deep=True)

    reused = body("delete", email="bob@example.com", requestId="r1")
    result = worker.handle_message(reused)

    assert result.outcome == "refused"
    assert result.reason is not None
    assert "requestId reused with different content" in result.reason
    assert "suspend ann@example.com" in result.reason  # says what r1 is
    assert "m2" in world.miro.people  # bob is not deleted
    assert world.miro.writes == []
    assert world.actions.items["r1"] == original  # the original request's record is not touched
    refusal = world.actions.items[result.request_id]
    assert result.request_id != "r1"
    assert (refusal.outcome, refusal.action, refusal.member_key) == ("refused", "delete", "bob@example.com")
    assert refusal.body == reused
    assert [letter.body for letter in world.dead_letters.sent] == [reused]
    # redelivered: the same refusal, recorded and copied once
    assert worker.handle_message(reused).request_id == result.request_id
    assert len(world.actions.items) == 2
    assert len(world.dead_letters.sent) == 1
    assert world.metrics.values["OffboardingReusedIds"] == 1


def test_a_reused_id_of_a_finished_request_is_refused_not_answered_from_the_cache() -> None:
    world = make_world()
    worker = world.worker()
    assert worker.handle_message(body("suspend", requestId="r1")).outcome == "done"
    result = worker.handle_message(body("delete", email="bob@example.com", requestId="r1"))
    assert result.outcome == "refused"
    assert "requestId reused with different content" in (result.reason or "")
    assert world.miro.writes == ["active=False:s-ann"]
    assert world.actions.items["r1"].outcome == "done"
    # and once the idempotency key expired, the actions table still tells them apart
    world.idempotency.records.clear()
    again = worker.handle_message(body("delete", email="bob@example.com", requestId="r1"))
    assert again.outcome == "refused"
    assert world.miro.writes == ["active=False:s-ann"]


def test_the_same_request_written_differently_is_a_duplicate_not_a_reuse() -> None:
    world = make_world()
    worker = world.worker()
    due = START + timedelta(days=2)
    first = body("delete", requestId="r1", notBefore=due.isoformat().replace("+00:00", "Z"))
    assert worker.handle_message(first).outcome == "pending"
    respelled = json.dumps(
        {
            "notBefore": due.astimezone(_plus_one()).isoformat(),
            "reason": "  left the company ",
            "email": "Ann@Example.com",
            "requestedBy": "it-ops@example.com",
            "requestId": "r1",
            "action": "delete",
        }
    )
    assert worker.handle_message(respelled).outcome == "pending"
    assert list(world.actions.items) == ["r1"]
    assert world.dead_letters.sent == []


def test_a_hand_written_duplicate_with_another_reason_is_still_a_duplicate() -> None:
    world = make_world()
    worker = world.worker()
    first = worker.handle_message(body("suspend"))
    second = worker.handle_message(body("suspend", reason="offboarding ticket 42"))
    assert (first.outcome, second.outcome) == ("done", "duplicate")
    assert first.request_id == second.request_id
    assert world.miro.writes == ["active=False:s-ann"]


# ---------------------------------------------------------------- 2. a failed send


def test_a_failed_send_of_the_due_message_is_retried_not_left_pending_forever() -> None:
    world = make_world()
    worker = world.worker()
    due = START + timedelta(minutes=10)
    message = body("delete", requestId="r1", notBefore=due.isoformat())
    world.queue.failures = 1
    with pytest.raises(RetryableError, match="could not schedule"):
        worker.handle_message(message)
    record = world.actions.items["r1"]
    assert (record.outcome, record.scheduled_for) == ("pending", None)
    assert record.last_error is not None
    # SQS redelivers the request: this time the due message is sent
    assert worker.handle_message(message, receive_count=2).outcome == "pending"
    [due_message] = world.queue.sent
    assert world.actions.items["r1"].scheduled_for is not None
    assert world.actions.items["r1"].last_error is None
    world.clock.now = due + timedelta(seconds=1)
    assert worker.handle_message(due_message.body, phase=PHASE_DUE).outcome == "done"
    assert world.miro.writes == ["active=False:s-ann", "delete:s-ann"]


def test_a_request_whose_due_message_could_not_be_sent_is_picked_up_by_the_sweep() -> None:
    world = make_world()
    worker = world.worker()
    world.queue.failures = 1
    with pytest.raises(RetryableError):
        worker.handle_message(
            body("delete", requestId="r1", notBefore=(START + timedelta(minutes=10)).isoformat())
        )
    # even if the redeliveries run out, the pending, unscheduled record is the sweep's to send
    assert worker.sweep_due() == 1
    assert worker.sweep_due() == 0
    assert len(world.queue.sent) == 1


def test_a_failed_send_in_the_sweep_is_tried_again_by_the_next_sweep() -> None:
    world = make_world()
    worker = world.worker()
    due = START + timedelta(days=2)
    worker.handle_message(body("delete", requestId="r1", notBefore=due.isoformat()))
    world.clock.now = due - timedelta(minutes=5)
    world.queue.failures = 1
    assert worker.sweep_due() == 0
    assert world.actions.items["r1"].scheduled_for is None
    assert world.metrics.values["OffboardingSweepSendFailures"] == 1
    assert worker.sweep_due() == 1
    assert worker.sweep_due() == 0
    assert len(world.queue.sent) == 1


# ---------------------------------------------------------------- 3. a completed delete


def test_a_delete_whose_members_table_update_failed_is_done_on_retry_not_refused() -> None:
    world = make_world()
    worker = world.worker()
    world.members.set_status_failures = 1
    with pytest.raises(RetryableError, match="Members table"):
        worker.handle_message(body("delete", requestId="d1"))
    failed = world.actions.items["d1"]
    assert failed.outcome == "failed"
    assert [(a.operation, a.status) for a in failed.attempts] == [
        ("PATCH /Users/s-ann active=false", 200),
        ("DELETE /Users/s-ann", 204),
    ]

    result = worker.handle_message(body("delete", requestId="d1"), receive_count=2)

    assert result.outcome == "done"
    assert (result.reason or "").startswith("delete confirmed: SCIM user s-ann is gone")
    assert world.miro.writes == ["active=False:s-ann", "delete:s-ann"]  # one delete
    assert world.members.status_changes == [("m1", "deprovisioned", False)]
    record = world.actions.items["d1"]
    assert record.warning is not None
    assert "3 boards change owner" in record.warning
    assert record.last_error is None


def test_a_delete_interrupted_right_after_miro_deleted_the_user_is_done_on_retry() -> None:
    world = make_world()
    worker = world.worker()
    world.miro.crash_after("delete_user")
    with pytest.raises(InvocationCrashError):
        worker.handle_message(body("delete", requestId="d1"))
    assert world.actions.items["d1"].in_flight == "DELETE /Users/s-ann"

    result = worker.handle_message(body("delete", requestId="d1"), receive_count=2)

    assert result.outcome == "done"
    assert world.members.status_changes == [("m1", "deprovisioned", False)]
    assert world.miro.writes == ["active=False:s-ann", "delete:s-ann"]
    record = world.actions.items["d1"]
    assert record.in_flight is None
    assert any("interrupted" in str(a.detail) for a in record.attempts)
    assert record.attempts[-1].operation == "GET /Users/s-ann"  # the confirmation, with Miro's 404
    assert record.attempts[-1].status == 404


def test_a_delete_whose_call_got_no_answer_and_did_not_happen_is_carried_out_on_retry() -> None:
    world = make_world()
    worker = world.worker()
    world.miro.fail("delete_user", MiroUnavailable("connection reset", status=None))
    with pytest.raises(RetryableError):
        worker.handle_message(body("delete", requestId="d1"))
    assert "m1" in world.miro.people  # the reset came before Miro acted

    assert worker.handle_message(body("delete", requestId="d1"), receive_count=2).outcome == "done"
    assert world.miro.writes == ["active=False:s-ann", "delete:s-ann"]
    assert world.members.status_changes == [("m1", "deprovisioned", False)]


def test_a_suspend_whose_members_table_update_failed_is_confirmed_on_retry() -> None:
    world = make_world()
    worker = world.worker()
    world.members.set_status_failures = 1
    with pytest.raises(RetryableError):
        worker.handle_message(body("suspend", requestId="s1"))
    result = worker.handle_message(body("suspend", requestId="s1"), receive_count=2)
    assert result.outcome == "done"
    assert (result.reason or "").startswith("suspend confirmed")
    assert world.miro.writes == ["active=False:s-ann"]
    assert world.members.status_changes == [("m1", "suspended", False)]


def test_a_user_deleted_by_someone_else_is_still_refused_as_unknown() -> None:
    world = make_world()
    del world.miro.people["m2"]  # gone before this request made any call
    result = world.worker().handle_message(body("delete", email="bob@example.com", requestId="d2"))
    assert result.outcome == "refused"
    assert "unknown member" in (result.reason or "")


# ---------------------------------------------------------------- 4. derived ids


def _plus_one() -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=1))


def test_not_before_is_one_instant_whatever_its_offset() -> None:
    due = START + timedelta(days=2)
    in_utc = parse_request(body("delete", notBefore=due.isoformat().replace("+00:00", "Z")))
    in_paris = parse_request(body("delete", notBefore=due.astimezone(_plus_one()).isoformat()))
    assert in_utc.key == in_paris.key
    assert in_paris.not_before is not None
    assert in_paris.not_before.utcoffset() == timedelta(0)
    assert in_utc.to_body() == in_paris.to_body()


def test_a_dry_run_does_not_answer_for_the_real_request_after_it() -> None:
    world = make_world()
    worker = world.worker()
    assert worker.handle_message(body("suspend", dryRun=True)).outcome == "dry-run"
    assert worker.handle_message(body("suspend")).outcome == "done"
    assert world.miro.writes == ["active=False:s-ann"]


def test_hand_written_suspend_again_after_the_dedupe_window_is_a_new_request() -> None:
    world = make_world()
    worker = world.worker(dedupe_window_s=3600)
    first = worker.handle_message(body("suspend"))
    assert worker.handle_message(body("reactivate")).outcome == "done"
    # within the window the same hand-written message is a duplicate (documented)
    assert worker.handle_message(body("suspend")).request_id == first.request_id
    assert world.miro.people["m1"].active is True

    world.clock.advance(hours=2)
    world.idempotency.records.clear()  # the keys expired with the window
    again = worker.handle_message(body("suspend"))

    assert again.outcome == "done"
    assert again.request_id == f"{first.request_id}.2"
    assert world.miro.people["m1"].active is False
    assert world.miro.writes == ["active=False:s-ann", "active=True:s-ann", "active=False:s-ann"]
    assert world.actions.items[first.request_id].outcome == "done"  # the first stays as it was
    # a redelivery of the new one is its duplicate
    assert worker.handle_message(body("suspend")).request_id == again.request_id
    assert len(world.miro.writes) == 3


def _planned(action: str, *emails: str, submission: str | None = None) -> list[OffboardingRequest]:
    planned = build_requests(
        action,
        list(emails),
        None,
        reason="left",
        requested_by="op@example.com",
        not_before=None,
        dry_run=False,
        submission=submission,
    )
    return [item.request for item in planned]


def test_the_cli_gives_every_submission_its_own_request_ids() -> None:
    [first] = _planned("suspend", "ann@example.com")
    [second] = _planned("suspend", "ann@example.com")
    assert first.key.startswith("cli-")
    assert first.key != second.key
    # within one submission the ids are stable, so a repeated row is caught before anything is sent
    assert _planned("suspend", "ann@example.com", submission="20250303T090000Z-00000001") == _planned(
        "suspend", "ann@example.com", submission="20250303T090000Z-00000001"
    )
    with pytest.raises(InputError, match="more than once"):
        _planned("suspend", "ann@example.com", "ANN@example.com")


def test_suspend_reactivate_suspend_through_the_cli_acts_three_times() -> None:
    world = make_world()
    worker = world.worker()
    for action in ("suspend", "reactivate", "suspend"):
        [request] = _planned(action, "ann@example.com")
        assert worker.handle_message(request.to_body()).outcome == "done"
    assert world.miro.people["m1"].active is False
    assert world.miro.writes == ["active=False:s-ann", "active=True:s-ann", "active=False:s-ann"]


# ---------------------------------------------------------------- 5. structured logs


def test_the_worker_logs_json_lines_with_request_id_and_outcome_through_the_logger_handed_in() -> None:
    stream = io.StringIO()
    logger = Logger(service="offboarding-log-test", logger_handler=logging.StreamHandler(stream))
    world = make_world()
    worker = world.worker(max_per_hour=1, logger=logger)
    worker.handle_message(body("suspend", requestId="r-done"))
    worker.handle_message(body("suspend", email="guest@partner.com", requestId="r-refused"))
    worker.handle_message(body("suspend", email="bob@example.com", requestId="r-held"))
    worker.handle_message("{not json")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 4
    assert [(line["requestId"], line["outcome"]) for line in lines[:3]] == [
        ("r-done", "done"),
        ("r-refused", "refused"),
        ("r-held", "held"),
    ]
    assert lines[3]["outcome"] == "refused"
    assert all(line["service"] == "offboarding-log-test" for line in lines)


# ---------------------------------------------------------------- 6. settings


def test_the_blast_radius_default_matches_the_template() -> None:
    template = (REPO / "template.yaml").read_text()
    match = re.search(r"^  MaxActionsPerHour:\n(?:    .*\n)*?    Default: (\d+)", template, re.MULTILINE)
    assert match is not None
    settings = OffboardingSettings.from_env(
        {
            "MIRO_API_URL": "http://127.0.0.1:1",
            "MIRO_SCIM_URL": "http://127.0.0.1:1/scim",
            "MIRO_ORG_ID": "org",
            "MIRO_TOKEN_SECRET": "token",
            "MIRO_SCIM_TOKEN_SECRET": "scim-token",
            "MEMBERS_TABLE": "members",
            "ACTIONS_TABLE": "actions",
            "STATE_TABLE": "state",
            "IDEMPOTENCY_TABLE": "idempotency",
            "OFFBOARDING_QUEUE_URL": "http://127.0.0.1:1/queue",
        }
    )
    assert settings.max_actions_per_hour == int(match.group(1)) == 25


def test_a_delete_interrupted_twice_is_still_recognised_as_done() -> None:
    world = make_world()
    worker = world.worker()
    world.miro.crash_after("delete_user")
    with pytest.raises(InvocationCrashError):
        worker.handle_message(body("delete", requestId="d1"))
    # the first retry records the interrupted calls, then fails on the Members table
    world.members.set_status_failures = 1
    with pytest.raises(RetryableError):
        worker.handle_message(body("delete", requestId="d1"), receive_count=2)
    assert world.actions.items["d1"].in_flight is None  # only the interrupted attempt tells now
    assert worker.handle_message(body("delete", requestId="d1"), receive_count=3).outcome == "done"
    assert world.members.status_changes == [("m1", "deprovisioned", False)]
    assert world.miro.writes == ["active=False:s-ann", "delete:s-ann"]
