"""What the worker records about a request: its item in the actions table, the metrics and the log lines.

A request's item is created by its first write (a conditional put) and from then on moves only by
conditional writes on its outcome, so a final outcome is never reopened and an operator's cancel that
lands first stands. Each write carries what the invocation learnt since the previous one (the trail's
attempts and fields)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from miro_sync.offboarding.errors import RecordExistsError, RetryableError
from miro_sync.offboarding.model import Trail, new_action_record
from miro_sync.offboarding.ports import ActionsStore, LogSink, MetricsSink
from miro_sync.store.actions import OPEN_OUTCOMES, ActionConflictError, ActionRecord, Outcome, utc_now_iso

T = TypeVar("T")


class Recorder:
    def __init__(
        self,
        *,
        actions: ActionsStore,
        clock: Callable[[], datetime],
        metrics: MetricsSink | None,
        logger: LogSink,
    ) -> None:
        self._actions = actions
        self._clock = clock
        self._metrics = metrics
        self.log = logger

    # ---------------------------------------------------------------- the actions table

    def get(self, request_id: str) -> ActionRecord | None:
        return self._actions.get(request_id)

    def load_or_create(self, trail: Trail, now: datetime, *, look_first: bool) -> ActionRecord:
        # A new request costs one round trip when created first; a due or released one (whose record
        # exists) costs one when read first.
        request = trail.request
        if look_first:
            existing = self._actions.get(request.key)
            if existing is not None:
                return existing
        record = new_action_record(request, now, requested_at=trail.requested_at, sender_id=trail.sender_id)
        if self._actions.create(record):
            return record
        existing = self._actions.get(request.key)
        if existing is None:  # created and gone again: nothing deletes action records, so this is a bug
            raise RetryableError(f"action record {request.key} vanished")
        return existing

    def write(
        self,
        trail: Trail,
        *,
        outcome: Outcome | None = None,
        fields: dict[str, Any] | None = None,
        expected: Iterable[str] = OPEN_OUTCOMES,
    ) -> None:
        """The one way the worker writes a request's record: creates it on the first write (raising
        RecordExistsError if it exists after all), else a conditional update on its outcome (raising
        ActionConflictError). Carries the attempts and fields gathered since the last write."""
        now = self._clock()
        changes = {**trail.fields, **(fields or {})}
        if trail.record is None:
            record = new_action_record(
                trail.request,
                now,
                outcome=outcome or "received",
                fields=changes,
                attempts=trail.attempts,
                requested_at=trail.requested_at,
                sender_id=trail.sender_id,
            )
            if not self._actions.create(record):
                raise RecordExistsError(trail.request.key)
            trail.record = record
        else:
            trail.record = self._actions.update(
                trail.record.request_id,
                at=now,
                expected=expected,
                outcome=outcome,
                fields=changes,
                attempts=trail.attempts,
            )
        trail.attempts = []
        trail.fields = {}

    def mark_pending(self, request_id: str, now: datetime, fields: dict[str, Any]) -> None:
        """An open request waits for its notBefore. Raises ActionConflictError if it was closed meanwhile."""
        self._actions.update(request_id, at=now, expected=OPEN_OUTCOMES, outcome="pending", fields=fields)

    def finish(
        self,
        trail: Trail,
        outcome: Outcome,
        reason: str | None,
        *,
        warning: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        now = self._clock()
        changes: dict[str, Any] = {
            **(fields or {}),
            "outcome_reason": reason,
            "completed_at": utc_now_iso(now),
            "last_error": None,
            "in_flight": None,
        }
        if warning:
            changes["warning"] = warning
        try:
            self.write(trail, outcome=outcome, fields=changes)
        except ActionConflictError:
            # cancelled by an operator while we worked: their record stands, ours is logged
            self.log.warning(
                "request closed meanwhile",
                extra={"requestId": trail.request.key, "outcome": outcome, "attempts": len(trail.attempts)},
            )

    def record_failure(self, trail: Trail, error: str) -> None:
        self.count("OffboardingTransientFailures", 1)
        with contextlib.suppress(ActionConflictError):  # cancelled meanwhile: stays cancelled
            self.write(
                trail,
                outcome="failed",
                fields={"last_error": error[:1000], "receive_count": trail.receive_count, "in_flight": None},
            )

    def with_failure_recorded(self, trail: Trail, call: Callable[[], T]) -> T:
        try:
            return call()
        except RetryableError as failure:
            self.record_failure(trail, str(failure))
            raise

    # ---------------------------------------------------------------- metrics

    def count(self, name: str, value: float) -> None:
        if self._metrics is not None:
            self._metrics.add_metric(name=name, unit="Count", value=value)
