"""A retry after Miro acted but the record did not say so (the Members table update failed, the invocation
died, the answer was lost) finishes the request as done with one call per effect, never refused; a user
deleted by someone else before the request made any call is still refused as unknown."""

from __future__ import annotations

import pytest

from miro_sync.miro.errors import MiroUnavailable
from miro_sync.offboarding.errors import RetryableError
from tests.unit.offboarding.fakes import InvocationCrashError, body, make_world


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
