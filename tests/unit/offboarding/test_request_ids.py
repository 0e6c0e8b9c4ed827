"""What a request id stands for. An id reused with other content is refused under its own record and the
original is left alone; the same request written differently, or a hand-written repeat, is a duplicate;
derived ids tell intents apart (notBefore as one instant, dry runs, the dedupe window) and the CLI gives
every submission ids of its own."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from miro_sync.offboarding.messages import OffboardingRequest, parse_request
from miro_sync_cli.offboard_cmd import InputError, build_requests
from tests.unit.offboarding.fakes import START, body, make_world


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
