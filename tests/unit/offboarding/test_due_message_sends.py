"""A due message (notBefore) that could not be sent is not lost: the request's redelivery sends it, the
sweep sends it if the redeliveries run out, and a send that fails in the sweep is tried by the next."""

from __future__ import annotations

from datetime import timedelta

import pytest

from miro_sync.offboarding.errors import RetryableError
from miro_sync.offboarding.model import PHASE_DUE
from tests.unit.offboarding.fakes import START, body, make_world


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
