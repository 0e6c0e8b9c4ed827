"""Requests for one member take effect in the order they were made, and a hand-written intent sent
again is a duplicate or a new request depending on what happened to the member in between. Reads the
actions table only (`ByMember`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from miro_sync.offboarding.errors import RefusalError
from miro_sync.offboarding.messages import OffboardingRequest
from miro_sync.offboarding.model import (
    OPPOSING_ACTIONS,
    PHASE_REQUEST,
    ResolvedMember,
    Trail,
    new_action_record,
    parse_time,
)
from miro_sync.offboarding.ports import ActionsStore
from miro_sync.store.actions import ActionRecord, utc_now_iso


class RequestOrder:
    def __init__(
        self, *, actions: ActionsStore, clock: Callable[[], datetime], dedupe_window: timedelta
    ) -> None:
        self._actions = actions
        self._clock = clock
        # A hand-written request (derived id) that finished longer ago than this is not a duplicate of a
        # new message with the same intent, but a new request (see OffboardingRequest.next_generation).
        self._dedupe_window = dedupe_window

    def next_generation(
        self,
        request: OffboardingRequest,
        existing: ActionRecord,
        phase: str,
        now: datetime,
        *,
        sent: str | None,
    ) -> OffboardingRequest | None:
        """A hand-written request (derived id) whose intent finished is sent again on purpose when it
        finished longer ago than the dedupe window, or when an opposing request for the member was made
        between it and this message (suspend -> reactivate -> suspend): it becomes a new request, the
        latest generation of the id. Otherwise it is a duplicate (SQS redeliveries, double sends)."""
        if phase != PHASE_REQUEST or not request.has_derived_id or not existing.is_final:
            return None
        finished = parse_time(existing.completed_at or existing.updated_at)
        within_window = finished is not None and now - finished < self._dedupe_window
        if within_window and self.later_opposing_request(existing, before=sent) is None:
            return None
        return self.generation_after(request, existing, sent)

    def successor_if_overtaken(
        self, request: OffboardingRequest, answered_id: str, phase: str, sent: str
    ) -> OffboardingRequest | None:
        """A repeat answered from the idempotency store is a duplicate - unless it was sent after an
        opposing request that itself followed the original (suspend, reactivate, suspend again): then
        the member's state says otherwise, and the repeat is the intent's next generation. An SQS
        redelivery of the original message (sent before the opposing request) stays a duplicate."""
        if phase != PHASE_REQUEST or not request.has_derived_id:
            return None
        original = self._actions.get(answered_id)
        if original is None or not original.is_final:
            return None
        if self.later_opposing_request(original, before=sent) is None:
            return None
        return self.generation_after(request, original, sent)

    def generation_after(
        self, request: OffboardingRequest, overtaken: ActionRecord, sent: str | None
    ) -> OffboardingRequest:
        """The generation this message stands for once `overtaken` is: the latest one recorded for the
        intent when there is a later one that this message repeats (still open, or finished with no
        opposing request since), else a new one. Jumping to the latest makes a member suspended and
        reactivated many times cost one step, not one per generation."""
        base = request.derived_request_id
        latest = overtaken
        for record in self._actions.by_member(request.member_key):
            if _generation_of(record.request_id, base) > _generation_of(latest.request_id, base):
                latest = record
        at_latest = request.model_copy(update={"request_id": latest.request_id})
        if latest is overtaken:
            return at_latest.next_generation()
        if not latest.is_final or self.later_opposing_request(latest, before=sent) is None:
            return at_latest  # this message repeats the latest generation
        return at_latest.next_generation()

    def later_opposing_request(
        self,
        record: ActionRecord,
        *,
        requested: str | None = None,
        before: str | None = None,
    ) -> ActionRecord | None:
        """A request for the same member, made after `record`'s (or after `requested`) and before
        `before` if given, that wants the opposite (reactivate against suspend/delete and back), was
        neither refused nor cancelled, and is in effect or under way: one waiting for a notBefore still
        ahead is not (it is ordered when it comes due)."""
        if record.dry_run:
            return None
        opposing = OPPOSING_ACTIONS.get(record.action, frozenset())
        mine = requested or record.requested_instant
        now = utc_now_iso(self._clock())
        keys = {record.member_key}
        if record.email:
            keys.add(record.email)
        if record.member_id:
            keys.add(f"id:{record.member_id}")
        later = [
            other
            for key in sorted(keys)
            for other in self._actions.by_member(key)
            if other.request_id != record.request_id
            and other.action in opposing
            and not other.dry_run
            and other.outcome not in {"refused", "cancelled"}
            and not (other.outcome == "pending" and (other.not_before or "") > now)
            and other.requested_instant > mine
            and (before is None or other.requested_instant < before)
        ]
        return max(later, key=lambda other: other.requested_instant) if later else None

    def check_not_overtaken(self, trail: Trail, member: ResolvedMember) -> None:
        """Requests for one member take effect in the order they were made: a request is refused when a
        later, opposing one exists (e.g. a failed suspend redelivered after the operator reactivated)."""
        request = trail.request
        if request.dry_run:
            return
        record = trail.record or new_action_record(
            request, self._clock(), requested_at=trail.requested_at, sender_id=trail.sender_id
        )
        mine = record.requested_instant
        if trail.phase == PHASE_REQUEST and trail.requested_at:
            # sent again by its requester (not an SQS redelivery, which keeps its send time): the
            # request stands as of this send; due and released messages keep the original's time
            mine = max(mine, trail.requested_at)
        later = self.later_opposing_request(
            record.model_copy(update={"email": member.email, "member_id": member.member_id}),
            requested=mine,
        )
        if later is not None:
            raise RefusalError(
                f"overtaken by a later request for {member.email}: {later.request_id} ({later.action}, "
                f"{later.outcome}, requested {later.requested_instant}); this {request.action} was "
                f"requested {mine} and is not carried out"
            )


def _generation_of(request_id: str, base: str) -> int:
    """1 for the derived id itself, n for `<base>.<n>`, 0 for anything else."""
    if request_id == base:
        return 1
    suffix = request_id.removeprefix(base + ".")
    return int(suffix) if suffix != request_id and suffix.isdigit() and len(suffix) < 9 else 0
