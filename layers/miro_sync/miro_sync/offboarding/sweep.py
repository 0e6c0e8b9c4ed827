"""Pending actions (notBefore): the worker defers a request until its notBefore, and the scheduled sweep
hands pending actions that come due to SQS, whose delay tops out at 15 minutes, so an action scheduled
weeks ahead waits in the actions table until then."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from miro_sync.offboarding.errors import RetryableError
from miro_sync.offboarding.model import PHASE_ATTRIBUTE, PHASE_DUE, parse_time
from miro_sync.offboarding.ports import ActionsStore, LogSink, MessageSender, MetricsSink
from miro_sync.offboarding.recording import Recorder
from miro_sync.store.actions import ActionConflictError, ActionRecord, utc_now_iso
from miro_sync.store.queue import MAX_DELAY_SECONDS, OutgoingMessage, QueueSendError


def due_message(body: str, delay: float) -> OutgoingMessage:
    seconds = min(MAX_DELAY_SECONDS, max(0, int(delay) + 1))
    return OutgoingMessage(body=body, delay_seconds=seconds, attributes={PHASE_ATTRIBUTE: PHASE_DUE})


def defer(
    record: ActionRecord,
    not_before: datetime,
    *,
    phase: str,
    now: datetime,
    queue: MessageSender,
    recorder: Recorder,
) -> None:
    """Leave the request pending until `not_before` (its notBefore, ahead of `now`). Within SQS's delay
    range its due message is sent now, else the sweep sends it when it comes within range."""
    scheduled_for = utc_now_iso(not_before)
    delay = (not_before - now).total_seconds()
    already_scheduled = (
        record.outcome == "pending" and record.scheduled_for == scheduled_for and phase != PHASE_DUE
    )
    if already_scheduled:
        return
    fields: dict[str, Any] = {"outcome_reason": f"waiting until {scheduled_for}", "scheduled_for": None}
    if delay <= MAX_DELAY_SECONDS:
        # Sent before `scheduledFor` is recorded, so a record that says scheduled always has its
        # message in SQS. A failed send leaves the request pending and unscheduled: this message
        # comes back, and the sweep sends it too if it does not. Sending twice is harmless.
        try:
            queue.send(due_message(record.body, delay))
        except QueueSendError as error:
            with contextlib.suppress(ActionConflictError):
                recorder.mark_pending(record.request_id, now, {**fields, "last_error": str(error)[:1000]})
            raise RetryableError(f"could not schedule the due message: {error}") from error
        fields["scheduled_for"] = scheduled_for
    try:
        recorder.mark_pending(record.request_id, now, {**fields, "last_error": None})
    except ActionConflictError:
        return
    recorder.count("OffboardingPending", 1)


def sweep_due(
    *,
    actions: ActionsStore,
    queue: MessageSender,
    clock: Callable[[], datetime],
    metrics: MetricsSink | None = None,
    logger: LogSink | None = None,
) -> int:
    """Enqueue pending actions whose notBefore falls within SQS's delay range. Returns how many
    messages were sent. A pending action already handed to SQS is skipped.

    Sent first, `scheduledFor` recorded after: a record only says scheduled once SQS holds its
    message. A failed send leaves it unscheduled for the next sweep; a send whose record write fails
    may be sent twice, which is harmless (the due message is idempotent like any other)."""
    log: LogSink = logger if logger is not None else logging.getLogger(__name__)
    now = clock()
    sent = 0
    unsent = 0
    for record in actions.by_outcome("pending"):
        due = parse_time(record.not_before)
        if due is None or record.scheduled_for == record.not_before:
            continue
        delay = (due - now).total_seconds()
        if delay > MAX_DELAY_SECONDS:
            continue
        try:
            queue.send(due_message(record.body, delay))
        except QueueSendError as error:
            unsent += 1
            log.error(
                "could not enqueue a due action; the next sweep tries again",
                extra={"requestId": record.request_id, "outcome": "pending", "error": str(error)},
            )
            continue
        sent += 1
        # cancelled or carried out since the index was read: the message finds that and does nothing
        with contextlib.suppress(ActionConflictError):
            actions.update(
                record.request_id,
                at=now,
                expected={"pending"},
                fields={"scheduled_for": record.not_before},
            )
    if unsent and metrics is not None:
        metrics.add_metric(name="OffboardingSweepSendFailures", unit="Count", value=unsent)
    return sent
