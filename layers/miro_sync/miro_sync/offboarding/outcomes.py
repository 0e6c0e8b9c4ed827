"""How a request that ran ends: done, partial, refused or a dry run. Miro's state is reflected in the
Members table first, then the record gets its final outcome; a retry of a delete that Miro carried out
but the record does not show is confirmed with Miro and finished as done."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from miro_sync.offboarding.errors import PartialError, RefusalError, RetryableError
from miro_sync.offboarding.model import STATUS_AFTER, Result, Trail
from miro_sync.offboarding.planning import plan_fields
from miro_sync.offboarding.ports import MembersStore, ScimUsers
from miro_sync.offboarding.recording import Recorder
from miro_sync.offboarding.steps import DELETE, MiroCalls, Plan, StepsDone
from miro_sync.store.actions import ActionRecord, Outcome, StepRecord, utc_now_iso


class Outcomes:
    def __init__(
        self,
        *,
        members: MembersStore,
        scim: ScimUsers,
        calls: MiroCalls,
        recorder: Recorder,
        clock: Callable[[], datetime],
    ) -> None:
        self._members = members
        self._scim = scim
        self._calls = calls
        self._recorder = recorder
        self._clock = clock

    def done(
        self, trail: Trail, member_id: str, done: StepsDone, confirmed: str | None = None
    ) -> dict[str, Any]:
        """Miro is in the requested state: reflect it in the Members table, then record the outcome
        (`partial` when Miro refused part of a step, e.g. some boards could not be handed over)."""
        request = trail.request
        status, active = STATUS_AFTER[request.action]
        try:
            self._members.set_status(member_id, status=status, active=active, at=self._clock())
        except Exception as error:  # whatever the table raised: Miro has acted, the record must say so
            message = f"Miro carried out the {request.action}, but updating the Members table failed: {error}"
            self._recorder.record_failure(trail, message)
            raise RetryableError(message) from error
        if done.problems:
            summary = f"{request.action} carried out, but not every step in full: " + "; ".join(done.problems)
            outcome: Outcome = "partial"
        elif done.effects:
            # each step's answer is in the record's steps
            summary = f"{request.action} confirmed" + (f": {confirmed}" if confirmed else "")
            outcome = "done"
        else:
            summary = f"already {status}: nothing to change"
            outcome = "done"
        self._recorder.finish(trail, outcome, summary[:1000], warning=_warning(trail, done))
        self._recorder.count("OffboardingDone" if outcome == "done" else "OffboardingPartial", 1)
        self._recorder.count("OffboardingEffects", done.effects)
        self._recorder.log.info(
            "offboarding done",
            extra={
                "requestId": request.key,
                "outcome": outcome,
                "action": request.action,
                "effects": done.effects,
            },
        )
        return Result(request.key, outcome, summary[:1000]).as_dict()

    def partial(self, trail: Trail, member_id: str, partial: PartialError) -> dict[str, Any]:
        """Some steps took effect and Miro refused the next: the Members table and the record say what
        holds now (e.g. suspended, delete refused with Miro's reason), never "refused"."""
        request = trail.request
        try:
            self._members.set_status(
                member_id, status=partial.status, active=partial.active, at=self._clock()
            )
        except Exception as error:  # whatever the table raised: the record must not claim more than this
            message = (
                "Miro refused a step after others took effect, and updating the Members table failed: "
                f"{error}"
            )
            self._recorder.record_failure(trail, message)
            raise RetryableError(message) from error
        self._recorder.finish(trail, "partial", partial.reason)
        self._recorder.count("OffboardingPartial", 1)
        self._recorder.log.warning(
            "offboarding partly done",
            extra={"requestId": request.key, "outcome": "partial", "reason": partial.reason},
        )
        return Result(request.key, "partial", partial.reason).as_dict()

    def refused(self, trail: Trail, refusal: RefusalError) -> dict[str, Any]:
        request_id = trail.request.key
        self._recorder.finish(trail, "refused", refusal.reason, fields=refusal.fields)
        self._recorder.count("OffboardingRefused", 1)
        self._recorder.log.warning(
            "offboarding refused",
            extra={"requestId": request_id, "outcome": "refused", "reason": refusal.reason},
        )
        return Result(request_id, "refused", refusal.reason).as_dict()

    def dry_run(self, trail: Trail, plan: Plan) -> dict[str, Any]:
        text = plan.describe()
        self._recorder.finish(trail, "dry-run", text, fields=plan_fields(plan))
        self._recorder.count("OffboardingDryRuns", 1)
        return Result(trail.request.key, "dry-run", text).as_dict()

    def finish_if_applied(self, trail: Trail) -> dict[str, Any] | None:
        """A retry of a delete whose SCIM DELETE was made (or interrupted, per `inFlight`) by an earlier
        invocation that then failed to record it: if Miro shows the user gone, finish as done. Resolving
        the member again instead would find a deleted user gone and refuse the request as unknown. Every
        other step leaves the member resolvable, so the normal way resumes it. Only reads Miro."""
        record = trail.record
        request = trail.request
        if record is None or request.action != "delete" or request.dry_run:
            return None
        scim_id, member_id = record.scim_id, record.member_id
        if scim_id is None or member_id is None:
            return None
        final_write = f"DELETE /Users/{scim_id}"
        if final_write not in _writes_that_may_have_reached_miro(record):
            return None
        user = self._recorder.with_failure_recorded(
            trail,
            lambda: self._calls.call(
                trail, f"GET /Users/{scim_id}", lambda: self._scim.get_user(scim_id), gone_ok=True
            ),
        )
        if user is not None:
            return None  # not deleted yet: the normal way deletes it
        answer = f"SCIM user {scim_id} is gone after an earlier attempt's {final_write}"
        steps = list(record.steps)
        if record.step(DELETE) is None:  # recorded already when only the Members table write failed
            steps.append(
                StepRecord(kind=DELETE, status="done", at=utc_now_iso(self._clock()), answer=answer, count=1)
            )
        trail.fields["steps"] = [step.model_dump(exclude_none=True) for step in steps]
        done = StepsDone(effects=sum(step.count or 0 for step in steps), summaries=[f"delete: {answer}"])
        done.problems = [f"{step.kind}: {step.answer}" for step in record.steps if step.status != "done"]
        return self.done(trail, member_id, done, confirmed=answer)


def _warning(trail: Trail, done: StepsDone) -> str | None:
    """The steps' warnings, and on a delete without a successor, the boards whose owner Miro changes."""
    warning = "; ".join(done.warnings) or None
    record = trail.record
    boards_owned = record.boards_owned if record is not None else None
    if trail.request.action == "delete" and boards_owned and not (record and record.successor):
        owners = f"{boards_owned} boards change owner (Miro hands them to a team admin)"
        warning = f"{warning}; {owners}" if warning else owners
    return warning


def _may_have_reached_miro(status: int | None) -> bool:
    # no answer (timeout, reset), success, gone, or a server error: the call may have taken effect.
    # Any other 4xx is Miro refusing it.
    return status is None or status == 404 or not 400 <= status < 500


def _writes_that_may_have_reached_miro(record: ActionRecord) -> set[str]:
    """The PATCH/DELETE operations this request sent (or was about to send when it died). An
    interrupted attempt names every call that was in flight, separated by "; "."""
    operations = [record.in_flight or ""] + [
        attempt.operation for attempt in record.attempts if _may_have_reached_miro(attempt.status)
    ]
    calls = {call.strip() for operation in operations for call in operation.split(";")}
    return {call for call in calls if call.startswith(("PATCH ", "DELETE "))}
