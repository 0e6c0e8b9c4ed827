"""Messages refused for good without being requests of their own: malformed bodies, reused request
ids, and messages that keep failing with an error the worker does not know. Each is recorded under its
own id with the precise reason, copied to the dead-letter queue once, and acknowledged: neither retried
forever nor lost, and never the cause of another record's failure."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Final

from miro_sync.offboarding.errors import InvalidRequestError, RetryableError
from miro_sync.offboarding.messages import OffboardingRequest, parse_request
from miro_sync.offboarding.model import Result, storable
from miro_sync.offboarding.ports import ActionsStore, DeadLetterSender, LogSink, MetricsSink
from miro_sync.store.actions import MAX_STORED_BODY, ActionConflictError, ActionRecord, utc_now_iso
from miro_sync.store.failures import is_transient_aws_failure
from miro_sync.store.queue import QueueSendError

# An unexpected error (not a Miro or a queue failure the worker knows) on this many receives of one
# message ends it for good as a refusal, recorded and dead-lettered: below the queue's maxReceiveCount,
# so it never reaches the redrive DLQ without a record.
UNEXPECTED_ERROR_RECEIVES: Final = 3


class Refusals:
    def __init__(
        self,
        *,
        actions: ActionsStore,
        dead_letters: DeadLetterSender | None,
        clock: Callable[[], datetime],
        metrics: MetricsSink | None = None,
        logger: LogSink | None = None,
    ) -> None:
        self._actions = actions
        self._dead_letters = dead_letters
        self._clock = clock
        self._metrics = metrics
        self._log: LogSink = logger if logger is not None else logging.getLogger(__name__)

    def invalid(self, invalid: InvalidRequestError) -> Result:
        """A malformed message is refused for good: recorded with the precise reason, copied to the
        dead-letter queue (body as received, reason in its attributes) and acknowledged, so it is
        neither retried forever nor lost. (Powertools' BatchProcessor with a Parser model would mark it
        failed and SQS would redeliver it until the DLQ, with no reason anywhere.)"""
        return self._for_good(
            invalid.request_id,
            invalid.reason,
            invalid.body,
            request=None,
            metric="OffboardingInvalid",
            event="invalid offboarding message refused",
        )

    def unexpected(self, body: str, error: Exception, receive_count: int) -> Result:
        """An error the worker does not know on one message (a bug, or a table failure it cannot tell
        from one): re-raised for a few receives, since a throttled table recovers; on the
        UNEXPECTED_ERROR_RECEIVES-th, this message alone is refused for good, recorded with the error
        and copied to the dead-letter queue, instead of failing until SQS's redrive moves it there with
        no reason anywhere. Its own record is `error-<hash of the body>`, with the request's member."""
        described = f"{type(error).__name__}: {error}"[:500]
        if receive_count < UNEXPECTED_ERROR_RECEIVES or is_transient_aws_failure(error):
            raise error
        try:
            request: OffboardingRequest | None = parse_request(body)
        except InvalidRequestError:
            request = None
        reason = (
            f"failed on {receive_count} deliveries with an unexpected error ({described}); "
            "refused for good, nothing further is attempted"
        )
        digest = hashlib.sha256(storable(body).encode()).hexdigest()[:32]
        return self._for_good(
            f"error-{digest}",
            reason,
            body,
            request=request,
            metric="OffboardingUnexpectedErrors",
            event="offboarding message refused after repeated unexpected errors",
        )

    def reused_id(self, request: OffboardingRequest, body: str, original: ActionRecord | None) -> Result:
        """A message whose requestId already names another request. Refused for good like a malformed
        one, under its own record: `reused-<hash of id and body>` (a redelivery lands on the same one),
        with the new message's member, so `status --member` finds it. The original's record is not
        touched: its trail stays about its own calls to Miro and its updatedAt (which orders the
        held/pending lists) does not move."""
        if original is None:
            named = "another request"
        else:
            try:
                named = f"{parse_request(original.body).describe()} ({original.outcome})"
            except InvalidRequestError:
                named = f"a refused invalid message ({original.outcome})"
        reason = (
            f"requestId reused with different content: {request.key} already names {named}; "
            f"this message ({request.describe()}) was not carried out"
        )
        digest = hashlib.sha256(f"{request.key}\n{body}".encode()).hexdigest()[:32]
        return self._for_good(
            f"reused-{digest}",
            reason,
            body,
            request=request,
            metric="OffboardingReusedIds",
            event="offboarding message refused: requestId reused with different content",
        )

    def _for_good(
        self,
        record_id: str,
        reason: str,
        body: str,
        *,
        request: OffboardingRequest | None,
        metric: str,
        event: str,
    ) -> Result:
        """Record a final refusal of a message that is not a request of its own and copy the message to
        the dead-letter queue. Once: the record notes when the copy was sent, and a redelivery sends
        only if that is missing (a crash between the send and the note is the one window that can copy
        it twice). A failed send raises RetryableError, so the message comes back and is copied then."""
        now = self._clock()
        stamp = utc_now_iso(now)
        body = storable(body)
        record = ActionRecord(
            request_id=record_id,
            action=request.action if request is not None else "invalid",
            member_key=request.member_key if request is not None else "invalid",
            requested_by=request.requested_by if request is not None else "unknown",
            reason=request.reason if request is not None else "invalid message",
            outcome="refused",
            outcome_reason=reason[:1000],
            created_at=stamp,
            updated_at=stamp,
            completed_at=stamp,
            body=body[:MAX_STORED_BODY] or "(empty body)",
            email=request.email if request is not None else None,
            member_id=request.member_id if request is not None else None,
        )
        first_time = self._actions.create(record)
        if first_time:
            if self._metrics is not None:
                self._metrics.add_metric(name=metric, unit="Count", value=1)
            self._log.warning(event, extra={"requestId": record_id, "outcome": "refused", "reason": reason})
        if self._dead_letters is not None:
            existing = None if first_time else self._actions.get(record_id)
            if first_time or (existing is not None and existing.dead_lettered_at is None):
                self._copy_to_dead_letters(self._dead_letters, record_id, body, reason)
        return Result(record_id, "refused", reason)

    def _copy_to_dead_letters(
        self, dead_letters: DeadLetterSender, record_id: str, body: str, reason: str
    ) -> None:
        try:
            dead_letters.dead_letter(body, request_id=record_id, reason=reason)
        except QueueSendError as error:
            raise RetryableError(str(error)) from error
        now = self._clock()
        with contextlib.suppress(ActionConflictError):  # only ever "refused"; nothing to do otherwise
            self._actions.update(
                record_id,
                at=now,
                expected={"refused"},
                fields={"dead_lettered_at": utc_now_iso(now)},
            )
