"""One request's way through the worker, as run under Powertools Idempotency: its record is created or
found, its stored state decides what may happen (final, held, pending, interrupted, failed), and if it
may run it is resolved, guarded, planned, counted against the blast radius and carried out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from miro_sync.offboarding.budget import ActionBudget
from miro_sync.offboarding.errors import (
    InvalidRequestError,
    NotFinalError,
    PartialError,
    RecordExistsError,
    RefusalError,
    RetryableError,
    ReusedIdError,
)
from miro_sync.offboarding.messages import OffboardingRequest, parse_request
from miro_sync.offboarding.model import PHASE_REQUEST, ResolvedMember, Result, Trail, duplicate
from miro_sync.offboarding.ordering import RequestOrder
from miro_sync.offboarding.outcomes import Outcomes
from miro_sync.offboarding.planning import Planner, plan_fields
from miro_sync.offboarding.ports import MessageSender
from miro_sync.offboarding.recording import Recorder
from miro_sync.offboarding.steps import StepRunner
from miro_sync.offboarding.sweep import defer
from miro_sync.store.actions import ActionConflictError, ActionRecord, Attempt, utc_now_iso


class RequestLifecycle:
    def __init__(
        self,
        *,
        recorder: Recorder,
        planner: Planner,
        steps: StepRunner,
        budget: ActionBudget,
        outcomes: Outcomes,
        order: RequestOrder,
        queue: MessageSender,
        clock: Callable[[], datetime],
    ) -> None:
        self._recorder = recorder
        self._planner = planner
        self._steps = steps
        self._budget = budget
        self._outcomes = outcomes
        self._order = order
        self._queue = queue
        self._clock = clock

    def process(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The idempotent part of one message (see OffboardingWorker._handle for the payload)."""
        request = parse_request(payload["message"])
        phase: str = payload["phase"]
        receive_count = int(payload.get("receiveCount", 1))
        nonce: str | None = payload.get("nonce")
        now = self._clock()
        while True:
            trail = Trail(
                request=request,
                record=None,
                receive_count=receive_count,
                requested_at=payload.get("requestedAt"),
                sender_id=payload.get("senderId"),
                phase=phase,
            )
            deferring = request.not_before is not None and request.not_before > now and not request.dry_run
            if phase == PHASE_REQUEST and not deferring:
                # The common case, a request seen for the first time: everything before the first write
                # to Miro only reads, so its actions record is created by the first write with what was
                # learnt (no separate "received" write). If a record exists after all (a retry after a
                # transient failure, a duplicate of a held request, an idempotency key that expired, a
                # reused id), that create loses and the request goes the careful way below.
                try:
                    return _stamped(self._carry_out(trail), request, nonce)
                except RecordExistsError:
                    pass
                existing = self._recorder.get(request.key)
                if existing is None:  # nothing deletes action records, so this is a bug
                    raise RetryableError(f"action record {request.key} vanished") from None
            else:
                existing = self._recorder.load_or_create(trail, now, look_first=phase != PHASE_REQUEST)
            _ensure_same_request(existing, request)
            successor = self._order.next_generation(request, existing, phase, now, sent=trail.requested_at)
            if successor is None:
                trail.record = existing
                return _stamped(self._continue(trail, existing, phase, now), request, nonce)
            request = successor

    def _continue(self, trail: Trail, record: ActionRecord, phase: str, now: datetime) -> dict[str, Any]:
        """A request whose record exists (`record`, the trail's as found): its stored state decides what
        may happen."""
        request = trail.request
        if record.is_final:
            if phase != PHASE_REQUEST:  # a due or released message of a request closed meanwhile
                return Result(record.request_id, record.outcome, record.outcome_reason).as_dict()
            self._recorder.count("OffboardingDuplicates", 1)
            return duplicate(record.request_id, record.outcome, record.outcome_reason).as_dict()
        if record.outcome == "held" and record.released_at is None:
            raise NotFinalError("held")
        if request.not_before is not None and request.not_before > now and not request.dry_run:
            defer(
                record, request.not_before, phase=phase, now=now, queue=self._queue, recorder=self._recorder
            )
            raise NotFinalError("pending")
        if record.in_flight:
            trail.interrupted = record.in_flight
            # an earlier invocation ended between its write before Miro and the one after: the call may
            # or may not have reached Miro; the read-back of this run shows which
            trail.attempts.append(
                Attempt(
                    at=utc_now_iso(now),
                    operation=record.in_flight,
                    detail="interrupted: the invocation ended before Miro's answer was recorded",
                )
            )
        if record.outcome in {"pending", "held", "failed"}:
            # claim it, so an operator's cancel cannot land while we are inside Miro
            try:
                self._recorder.write(trail, outcome="received", expected={record.outcome})
            except ActionConflictError:
                current = self._recorder.get(record.request_id)
                outcome = current.outcome if current is not None else "cancelled"
                return Result(
                    record.request_id, outcome, current.outcome_reason if current else None
                ).as_dict()
        applied = self._outcomes.finish_if_applied(trail)
        if applied is not None:
            return applied
        return self._carry_out(trail)

    def _carry_out(self, trail: Trail) -> dict[str, Any]:
        """Resolve, guard, plan, then run the steps. Raises RecordExistsError when it would create a
        record that exists."""
        request = trail.request
        member: ResolvedMember | None = None
        try:
            try:
                member = self._planner.resolve(request)
                try:
                    plan = self._planner.plan(trail, member)
                except RefusalError as refusal:
                    raise RefusalError(refusal.reason, member.record_fields()) from refusal
            except RetryableError as failure:
                self._recorder.record_failure(trail, str(failure))
                raise
            if request.dry_run:
                return self._outcomes.dry_run(trail, plan)
            # The write before Miro's: creates the record (or updates it), with the member and the
            # calls about to be made, so an invocation that dies inside Miro leaves a trace.
            self._recorder.write(
                trail, fields={**plan_fields(plan), "in_flight": self._steps.first_calls(plan, trail)}
            )
            record = trail.record
            now = self._clock()
            if record is not None and record.budget_counted_at is None:
                # Stored by the write before the first call to Miro (see StepRunner._before): a crash
                # between the count and that write counts again on retry, which can only make the limit
                # hold earlier, never later.
                self._budget.take(trail, record, now)
                trail.fields["budget_counted_at"] = utc_now_iso(now)
            try:
                done = self._steps.run(trail, plan)
            except RetryableError as failure:
                self._recorder.record_failure(trail, str(failure))
                raise
        except PartialError as partial:
            return self._outcomes.partial(trail, member.member_id if member else "", partial)
        except RefusalError as refusal:
            return self._outcomes.refused(trail, refusal)
        return self._outcomes.done(trail, plan.leaver.member_id, done)


def _stamped(result: dict[str, Any], request: OffboardingRequest, nonce: str | None) -> dict[str, Any]:
    # Stored by Powertools with the result, so a cached answer is only given to the same request;
    # the nonce tells the invocation that computed it from one that is answered from the store.
    return {**result, "fingerprint": request.fingerprint, "nonce": nonce}


def _ensure_same_request(existing: ActionRecord, request: OffboardingRequest) -> None:
    """The record under this id must be this request (normalised: key order, spacing, email case and
    notBefore's offset do not matter). Raises ReusedIdError otherwise, before anything is done."""
    try:
        stored = parse_request(existing.body)
    except InvalidRequestError:  # e.g. someone chose the id of a refused malformed message
        raise ReusedIdError(existing) from None
    if stored.fingerprint != request.fingerprint:
        raise ReusedIdError(existing)
