"""The offboarding worker: one queued request -> guards -> at most one effect in Miro.

Safety layers, outermost first:
1. Parsing: a body that is not exactly the contract is refused for good (recorded, never retried).
2. Powertools Idempotency keyed by requestId: concurrent duplicates wait (their SQS record fails and
   comes back), completed ones return the stored result. Only final outcomes are kept there; a request
   that is merely pending (notBefore) or held (blast radius) releases the key so its later message runs.
3. The actions table: every request is one item whose `outcome` only moves by conditional writes; a
   final outcome (done/refused/dry-run/cancelled) is never reopened, even after the idempotency key
   expired. A new request's item is created by its first write (a conditional put after the guards,
   carrying the member and the Miro calls about to be made in `inFlight`); the attempts of those calls,
   with Miro's status codes, are stored by the next write, which sets the outcome (done, failed, held,
   refused). Two writes per request; if the invocation dies between them, the retry finds `inFlight`
   and records the interrupted call (without a status code, which only the dead invocation saw).
4. Miro state is read before every write, so a retry after a crash between the write and its record
   finds the work done and makes no second call. A retry whose record shows this request's final write
   to Miro (made, or interrupted per `inFlight`) first asks Miro whether it took effect (a deleted user
   is a 404): if so it finishes as done, without resolving the member again (who may no longer exist).
5. A request id stands for one request: a message that reuses an id with different content (compared
   normalised, see `OffboardingRequest.fingerprint`) is refused for good under its own record
   (`reused-...`), and the original request's record is left as it is.
Guards (unknown member, external user, team guest, protected, admin, SCIM identity mismatch) are all
checked before the first write call; a refusal is final.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, TypeVar

from miro_sync.miro.errors import MiroBadRequest, MiroConflict, MiroError, MiroNotFound
from miro_sync.miro.models import OrgMember, ScimUser
from miro_sync.offboarding.messages import (
    MAX_NOT_BEFORE_AHEAD,
    MAX_NOT_BEFORE_BEHIND,
    InvalidRequestError,
    OffboardingRequest,
    parse_request,
)
from miro_sync.offboarding.ports import (
    ActionsStore,
    BlastRadius,
    DeadLetterSender,
    KnownMember,
    LogSink,
    MembersStore,
    MessageSender,
    MetricsSink,
    OrgDirectory,
    ScimUsers,
)
from miro_sync.store.actions import (
    MAX_STORED_BODY,
    OPEN_OUTCOMES,
    ActionConflictError,
    ActionRecord,
    Attempt,
    Outcome,
    utc_now_iso,
)
from miro_sync.store.failures import is_transient_aws_failure
from miro_sync.store.queue import MAX_DELAY_SECONDS, OutgoingMessage, QueueSendError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
    from aws_lambda_powertools.utilities.typing import LambdaContext

PHASE_ATTRIBUTE: Final = "miroSyncPhase"
PHASE_REQUEST: Final = "request"  # as submitted
PHASE_DUE: Final = "due"  # re-sent by the worker or the sweep when notBefore has come
PHASE_RELEASE: Final = "release"  # re-sent by `miro-sync offboard release`
PHASES: Final = frozenset({PHASE_REQUEST, PHASE_DUE, PHASE_RELEASE})

ROLE_ADMIN: Final = "organization_internal_admin"
ROLE_USER: Final = "organization_internal_user"
REFUSED_ROLES: Final = {
    "organization_external_user": "external users cannot be changed through SCIM",
    "organization_team_guest_user": "team guests cannot be changed through SCIM",
}
STATUS_AFTER: Final = {
    "suspend": ("suspended", False),
    "delete": ("deprovisioned", False),
    "reactivate": ("active", True),
}

# How long a batch's member lookup stands in for a per-message one. A batch takes seconds; the cap
# only matters when pacing waits stretch it, and then the guards fall back to a fresh lookup.
PREFETCH_MAX_AGE = timedelta(seconds=60)

T = TypeVar("T")

# reactivate undoes suspend/delete and the other way round: a later one of these overtakes an earlier
OPPOSING_ACTIONS: Final = {
    "suspend": frozenset({"reactivate"}),
    "delete": frozenset({"reactivate"}),
    "reactivate": frozenset({"suspend", "delete"}),
}
# How many generations of a hand-written intent one message may step through (see _next_generation)
MAX_GENERATION_HOPS: Final = 8
# An unexpected error (not a Miro or a queue failure the worker knows) on this many receives of one
# message ends it for good as a refusal, recorded and dead-lettered: below the queue's maxReceiveCount,
# so it never reaches the redrive DLQ without a record.
UNEXPECTED_ERROR_RECEIVES: Final = 3


class RetryableError(Exception):
    """The request may succeed later: the SQS record must fail so the queue redelivers it."""


class _NotFinalError(Exception):
    """Raised through the idempotent function so Powertools drops the key (pending/held are not final)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome)
        self.outcome = outcome


class _RecordExistsError(Exception):
    """The first write of a request assumed to be new found its record: take the careful way."""


class _ReusedIdError(Exception):
    """The request id is taken by a different request. Raised through the idempotent function, so
    Powertools drops the key this invocation took and stores no result under the original's id."""

    def __init__(self, original: ActionRecord) -> None:
        super().__init__(original.request_id)
        self.original = original


@dataclass
class _Trail:
    """One invocation's work on one request: its record (None until the first write creates it) and
    what is learnt between writes (attempts with Miro's status codes, fields), stored by the next write."""

    request: OffboardingRequest
    record: ActionRecord | None
    receive_count: int
    requested_at: str | None = None  # when this message was sent (SQS SentTimestamp)
    sender_id: str | None = None
    phase: str = "request"
    attempts: list[Attempt] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)


class _BatchLookups:
    """Members of the batch being processed, looked up by email up front: Miro answers 10 emails per
    call at the cost of one, so a batch of 10 spends one REST call instead of ten. Hand-written: it is a
    dict with an age."""

    def __init__(self) -> None:
        self._found: dict[str, list[OrgMember]] = {}
        self._at: datetime | None = None

    def fill(self, emails: Sequence[str], found: Sequence[OrgMember], at: datetime) -> None:
        self._found = {email: [] for email in emails}
        for member in found:
            self._found.setdefault(member.email.lower(), []).append(member)
        self._at = at

    def members_for(self, email: str, now: datetime) -> list[OrgMember] | None:
        """Miro's answer for `email`, or None when it was not looked up (or too long ago)."""
        if self._at is None or now - self._at > PREFETCH_MAX_AGE:
            return None
        return self._found.get(email)

    def clear(self) -> None:
        self._found, self._at = {}, None


class _RefusalError(Exception):
    def __init__(self, reason: str, fields: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fields = fields or {}  # what was learnt about the member, for the record


class _PartialError(Exception):
    """Miro refused a later step after an earlier one took effect (a delete's SCIM DELETE after the
    deactivation): the request ends as `partial`, and the member's state is what the done steps left."""

    def __init__(self, reason: str, status: str, active: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.active = active


@dataclass(frozen=True)
class ResolvedMember:
    member_id: str
    email: str
    role: str
    license: str
    active: bool
    scim_id: str | None
    boards_owned: int | None
    admin_roles: tuple[str, ...] = ()
    last_activity_at: datetime | None = None
    license_assigned_at: datetime | None = None

    def record_fields(self) -> dict[str, Any]:
        return {
            "member_id": self.member_id,
            "email": self.email,
            "role": self.role,
            "license": self.license,
            "scim_id": self.scim_id,
            "boards_owned": self.boards_owned,
        }


@dataclass(frozen=True)
class GuardPolicy:
    protected_emails: frozenset[str]
    allow_admin_offboarding: bool
    max_actions_per_hour: int
    # Set when the guard configuration could not be read (e.g. a bad PROTECTED_EMAILS entry): every
    # suspend and delete is then refused with it, instead of running with a guard that protects nobody.
    configuration_error: str | None = None


@dataclass(frozen=True)
class Result:
    request_id: str
    outcome: str
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"requestId": self.request_id, "outcome": self.outcome, "reason": self.reason}


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class OffboardingWorker:
    def __init__(
        self,
        *,
        actions: ActionsStore,
        members: MembersStore,
        directory: OrgDirectory,
        scim: ScimUsers,
        blast_radius: BlastRadius,
        queue: MessageSender,
        policy: GuardPolicy,
        persistence_store: BasePersistenceLayer,
        idempotency_config: IdempotencyConfig,
        metrics: MetricsSink | None = None,
        clock: Callable[[], datetime] = _utc_now,
        dead_letters: DeadLetterSender | None = None,
        logger: LogSink | None = None,
    ) -> None:
        from aws_lambda_powertools.utilities.idempotency import idempotent_function

        self._actions = actions
        self._members = members
        self._directory = directory
        self._scim = scim
        self._blast = blast_radius
        self._queue = queue
        self._dead_letters = dead_letters
        self._policy = policy
        self._metrics = metrics
        self._clock = clock
        self._log: LogSink = logger if logger is not None else logging.getLogger(__name__)
        self._prefetch = _BatchLookups()
        self._idempotency_config = idempotency_config
        # A hand-written request (derived id) that finished longer ago than this is not a duplicate of a
        # new message with the same intent, but a new request (see OffboardingRequest.next_generation).
        self._dedupe_window = timedelta(seconds=idempotency_config.expires_after_seconds)
        self._idempotent_process = idempotent_function(
            self._process,
            data_keyword_argument="payload",
            persistence_store=persistence_store,
            config=idempotency_config,
        )

    # ---------------------------------------------------------------- entry points

    def register_lambda_context(self, context: LambdaContext) -> None:
        """Lets an in-progress idempotency record expire with the invocation, so a crashed attempt's
        key does not block redeliveries for the whole TTL."""
        self._idempotency_config.register_lambda_context(context)

    def handle_message(
        self,
        body: str,
        *,
        phase: str = PHASE_REQUEST,
        receive_count: int = 1,
        sent_at: datetime | None = None,
        sender_id: str | None = None,
    ) -> Result:
        """Process one SQS body. Returns the outcome; raises RetryableError (or a Powertools
        in-progress error) when the message must come back. Nothing else escapes: whatever this one
        message causes is its own fate, never the batch's (see `_refuse_unexpected`)."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
        )

        try:
            return self._handle(body, phase, receive_count, sent_at, sender_id)
        except (RetryableError, IdempotencyAlreadyInProgressError):
            raise
        except InvalidRequestError as invalid:
            return self._refuse_invalid(invalid)
        except Exception as unexpected:
            return self._refuse_unexpected(body, unexpected, receive_count)

    def _handle(
        self,
        body: str,
        phase: str,
        receive_count: int,
        sent_at: datetime | None,
        sender_id: str | None,
    ) -> Result:
        if phase not in PHASES:
            phase = PHASE_REQUEST  # an unknown marker gets no privileges: treat it as a plain request
        try:
            request = parse_request(body)
            self._check_not_before_range(request, body, phase)
        except InvalidRequestError as invalid:
            return self._refuse_invalid(invalid)
        message = body
        sent = utc_now_iso(sent_at or self._clock())
        for _ in range(MAX_GENERATION_HOPS):
            nonce = uuid.uuid4().hex
            payload = {
                "requestId": request.key,
                "phase": phase,
                "message": message,
                "receiveCount": receive_count,
                "requestedAt": sent,
                "senderId": sender_id,
                "nonce": nonce,
            }
            try:
                stored = self._idempotent_process(payload=payload)
            except _NotFinalError as not_final:
                return Result(request.key, not_final.outcome)
            except _ReusedIdError as reused:
                return self._refuse_reused_id(request, body, reused.original)
            fingerprint = stored.get("fingerprint")
            if fingerprint is not None and fingerprint != request.fingerprint:
                # Powertools answered from the result stored under this id, which is another request's
                return self._refuse_reused_id(request, body, self._actions.get(request.key))
            if stored.get("nonce") == nonce:
                return Result(stored["requestId"], stored["outcome"], stored.get("reason"))
            # Powertools answered from an earlier invocation's result: this message repeats a request
            successor = self._successor_if_overtaken(request, stored["requestId"], phase, sent)
            if successor is None:
                self._metric("OffboardingDuplicates", 1)
                return _duplicate(stored["requestId"], stored["outcome"], stored.get("reason"))
            request, message = successor, successor.to_body()
        # cannot happen with _generation_after jumping to the latest generation; never retried forever
        raise InvalidRequestError(
            f"{request.key}: more than {MAX_GENERATION_HOPS} generations in one message", body
        )

    def _check_not_before_range(self, request: OffboardingRequest, body: str, phase: str) -> None:
        if request.not_before is None:
            return
        ahead = request.not_before - self._clock()
        if ahead > MAX_NOT_BEFORE_AHEAD:
            raise InvalidRequestError(
                f"notBefore {request.not_before.isoformat()} is more than {MAX_NOT_BEFORE_AHEAD.days} days "
                "ahead; refusing a schedule that far out",
                body,
            )
        if phase == PHASE_REQUEST and -ahead > MAX_NOT_BEFORE_BEHIND:
            # older than any message SQS can still hold: a typo (0225 for 2025) would otherwise run now
            raise InvalidRequestError(
                f"notBefore {request.not_before.isoformat()} is more than {MAX_NOT_BEFORE_BEHIND.days} days "
                "in the past; refusing to read it as 'now'",
                body,
            )

    @contextlib.contextmanager
    def batch(self, bodies: Sequence[str]) -> Iterator[None]:
        """Around the processing of one SQS batch: looks up the members the batch names by email in one
        go. Best effort: if the lookup fails, each message looks its member up itself (and fails or
        retries on its own)."""
        now = self._clock()
        emails: list[str] = []
        for body in bodies:
            try:
                request = parse_request(body)
            except Exception:  # noqa: S112 - refused when its turn comes, on its own
                continue
            deferring = request.not_before is not None and request.not_before > now and not request.dry_run
            if request.email is not None and not deferring and request.email not in emails:
                emails.append(request.email)
        if emails:
            try:
                self._prefetch.fill(emails, self._directory.find_members_by_email(emails), now)
            except Exception as error:
                self._prefetch.clear()
                self._log.warning(
                    "batch member lookup failed; looking up one by one",
                    extra={"error": f"{type(error).__name__}: {error}"[:300]},
                )
        try:
            yield
        finally:
            self._prefetch.clear()

    def sweep_due(self) -> int:
        """Scheduled: enqueue pending actions whose notBefore falls within SQS's delay range. Returns how
        many messages were sent. A pending action already handed to SQS is skipped.

        Sent first, `scheduledFor` recorded after: a record only says scheduled once SQS holds its
        message. A failed send leaves it unscheduled for the next sweep; a send whose record write fails
        may be sent twice, which is harmless (the due message is idempotent like any other)."""
        now = self._clock()
        sent = 0
        unsent = 0
        for record in self._actions.by_outcome("pending"):
            due = _parse_time(record.not_before)
            if due is None or record.scheduled_for == record.not_before:
                continue
            delay = (due - now).total_seconds()
            if delay > MAX_DELAY_SECONDS:
                continue
            try:
                self._queue.send(self._due_message(record.body, delay))
            except QueueSendError as error:
                unsent += 1
                self._log.error(
                    "could not enqueue a due action; the next sweep tries again",
                    extra={"requestId": record.request_id, "outcome": "pending", "error": str(error)},
                )
                continue
            sent += 1
            # cancelled or carried out since the index was read: the message finds that and does nothing
            with contextlib.suppress(ActionConflictError):
                self._actions.update(
                    record.request_id,
                    at=now,
                    expected={"pending"},
                    fields={"scheduled_for": record.not_before},
                )
        if unsent:
            self._metric("OffboardingSweepSendFailures", unsent)
        return sent

    # ---------------------------------------------------------------- the idempotent part

    def _process(self, payload: dict[str, Any]) -> dict[str, Any]:
        request = parse_request(payload["message"])
        phase: str = payload["phase"]
        receive_count = int(payload.get("receiveCount", 1))
        nonce: str | None = payload.get("nonce")
        now = self._clock()
        while True:
            trail = _Trail(
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
                    return self._stamped(self._carry_out(trail), request, nonce)
                except _RecordExistsError:
                    pass
                existing = self._actions.get(request.key)
                if existing is None:  # nothing deletes action records, so this is a bug
                    raise RetryableError(f"action record {request.key} vanished") from None
            else:
                existing = self._load_or_create(trail, now, look_first=phase != PHASE_REQUEST)
            self._ensure_same_request(existing, request)
            successor = self._next_generation(request, existing, phase, now, sent=trail.requested_at)
            if successor is None:
                trail.record = existing
                return self._stamped(self._continue(trail, phase, now), request, nonce)
            request = successor

    @staticmethod
    def _stamped(result: dict[str, Any], request: OffboardingRequest, nonce: str | None) -> dict[str, Any]:
        # Stored by Powertools with the result, so a cached answer is only given to the same request;
        # the nonce tells the invocation that computed it from one that is answered from the store.
        return {**result, "fingerprint": request.fingerprint, "nonce": nonce}

    @staticmethod
    def _ensure_same_request(existing: ActionRecord, request: OffboardingRequest) -> None:
        """The record under this id must be this request (normalised: key order, spacing, email case and
        notBefore's offset do not matter). Raises _ReusedIdError otherwise, before anything is done."""
        try:
            stored = parse_request(existing.body)
        except InvalidRequestError:  # e.g. someone chose the id of a refused malformed message
            raise _ReusedIdError(existing) from None
        if stored.fingerprint != request.fingerprint:
            raise _ReusedIdError(existing)

    def _next_generation(
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
        finished = _parse_time(existing.completed_at or existing.updated_at)
        within_window = finished is not None and now - finished < self._dedupe_window
        if within_window and self._later_opposing_request(existing, before=sent) is None:
            return None
        return self._generation_after(request, existing, sent)

    def _successor_if_overtaken(
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
        if self._later_opposing_request(original, before=sent) is None:
            return None
        return self._generation_after(request, original, sent)

    def _generation_after(
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
        if not latest.is_final or self._later_opposing_request(latest, before=sent) is None:
            return at_latest  # this message repeats the latest generation
        return at_latest.next_generation()

    def _later_opposing_request(
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

    def _continue(self, trail: _Trail, phase: str, now: datetime) -> dict[str, Any]:
        """A request whose record exists: its stored state decides what may happen."""
        record = trail.record
        assert record is not None
        request = trail.request
        if record.is_final:
            if phase != PHASE_REQUEST:  # a due or released message of a request closed meanwhile
                return Result(record.request_id, record.outcome, record.outcome_reason).as_dict()
            self._metric("OffboardingDuplicates", 1)
            return _duplicate(record.request_id, record.outcome, record.outcome_reason).as_dict()
        if record.outcome == "held" and record.released_at is None:
            raise _NotFinalError("held")
        if request.not_before is not None and request.not_before > now and not request.dry_run:
            self._defer(request, record, phase, now)
            raise _NotFinalError("pending")
        if record.in_flight:
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
                self._write(trail, outcome="received", expected={record.outcome})
            except ActionConflictError:
                current = self._actions.get(record.request_id)
                outcome = current.outcome if current is not None else "cancelled"
                return Result(
                    record.request_id, outcome, current.outcome_reason if current else None
                ).as_dict()
        applied = self._finish_if_applied(trail)
        if applied is not None:
            return applied
        return self._carry_out(trail)

    def _load_or_create(self, trail: _Trail, now: datetime, *, look_first: bool) -> ActionRecord:
        # A new request costs one round trip when created first; a due or released one (whose record
        # exists) costs one when read first.
        request = trail.request
        if look_first:
            existing = self._actions.get(request.key)
            if existing is not None:
                return existing
        record = self._new_record(request, now, requested_at=trail.requested_at, sender_id=trail.sender_id)
        if self._actions.create(record):
            return record
        existing = self._actions.get(request.key)
        if existing is None:  # created and gone again: nothing deletes action records, so this is a bug
            raise RetryableError(f"action record {request.key} vanished")
        return existing

    @staticmethod
    def _new_record(
        request: OffboardingRequest,
        now: datetime,
        *,
        outcome: Outcome = "received",
        fields: dict[str, Any] | None = None,
        attempts: list[Attempt] | None = None,
        requested_at: str | None = None,
        sender_id: str | None = None,
    ) -> ActionRecord:
        stamp = utc_now_iso(now)
        record = ActionRecord(
            request_id=request.key,
            action=request.action,
            member_key=request.member_key,
            requested_by=request.requested_by,
            reason=request.reason,
            outcome=outcome,
            created_at=stamp,
            updated_at=stamp,
            body=request.to_body(),
            dry_run=request.dry_run,
            not_before=utc_now_iso(request.not_before) if request.not_before else None,
            email=request.email,
            member_id=request.member_id,
            attempts=list(attempts or []),
            requested_at=requested_at or stamp,
            sender_id=sender_id,
        )
        return record.model_copy(update={k: v for k, v in (fields or {}).items() if v is not None})

    def _defer(self, request: OffboardingRequest, record: ActionRecord, phase: str, now: datetime) -> None:
        assert request.not_before is not None
        not_before = utc_now_iso(request.not_before)
        delay = (request.not_before - now).total_seconds()
        already_scheduled = (
            record.outcome == "pending" and record.scheduled_for == not_before and phase != PHASE_DUE
        )
        if already_scheduled:
            return
        schedule_now = delay <= MAX_DELAY_SECONDS
        fields: dict[str, Any] = {"outcome_reason": f"waiting until {not_before}", "scheduled_for": None}
        if schedule_now:
            # Sent before `scheduledFor` is recorded, so a record that says scheduled always has its
            # message in SQS. A failed send leaves the request pending and unscheduled: this message
            # comes back, and the sweep sends it too if it does not. Sending twice is harmless.
            try:
                self._queue.send(self._due_message(record.body, delay))
            except QueueSendError as error:
                with contextlib.suppress(ActionConflictError):
                    self._actions.update(
                        record.request_id,
                        at=now,
                        expected=OPEN_OUTCOMES,
                        outcome="pending",
                        fields={**fields, "last_error": str(error)[:1000]},
                    )
                raise RetryableError(f"could not schedule the due message: {error}") from error
            fields["scheduled_for"] = not_before
        try:
            self._actions.update(
                record.request_id,
                at=now,
                expected=OPEN_OUTCOMES,
                outcome="pending",
                fields={**fields, "last_error": None},
            )
        except ActionConflictError:
            return
        self._metric("OffboardingPending", 1)

    @staticmethod
    def _due_message(body: str, delay: float) -> OutgoingMessage:
        seconds = min(MAX_DELAY_SECONDS, max(0, int(delay) + 1))
        return OutgoingMessage(body=body, delay_seconds=seconds, attributes={PHASE_ATTRIBUTE: PHASE_DUE})

    def _carry_out(self, trail: _Trail) -> dict[str, Any]:
        """Resolve, guard, then act. Raises _RecordExistsError when it would create a record that exists."""
        request = trail.request
        request_id = request.key
        try:
            try:
                member = self._resolve(request)
                try:
                    self._check_guards(member, request)
                    self._check_not_overtaken(trail, member)
                    user = self._scim_user(trail, member)
                except _RefusalError as refusal:
                    raise _RefusalError(refusal.reason, member.record_fields()) from refusal
            except RetryableError as failure:
                self._record_failure(trail, str(failure))
                raise
            member = dataclasses.replace(member, scim_id=user.id)
            if request.dry_run:
                plan = self._describe_plan(request, member, user)
                self._finish(trail, "dry-run", plan, fields=member.record_fields())
                self._metric("OffboardingDryRuns", 1)
                return Result(request_id, "dry-run", plan).as_dict()
            # The write before Miro's: creates the record (or updates it), with the member and the
            # calls about to be made, so an invocation that dies inside Miro leaves a trace.
            self._write(
                trail,
                fields={**member.record_fields(), "in_flight": self._planned_calls(request.action, user)},
            )
            record = trail.record
            assert record is not None
            now = self._clock()
            if record.budget_counted_at is None:  # reactivations count too: the limit is on changes
                self._take_budget(trail, now)
                # recorded with the outcome: an invocation that dies before that counts again on
                # retry, which can only make the limit hold earlier, never later
                trail.fields["budget_counted_at"] = utc_now_iso(now)
            try:
                effects = self._apply(request.action, trail, user)
            except RetryableError as failure:
                self._record_failure(trail, str(failure))
                raise
        except _PartialError as partial:
            return self._partial(trail, member.member_id, partial)
        except _RefusalError as refusal:
            self._finish(trail, "refused", refusal.reason, fields=refusal.fields)
            self._metric("OffboardingRefused", 1)
            self._log.warning(
                "offboarding refused",
                extra={"requestId": request_id, "outcome": "refused", "reason": refusal.reason},
            )
            return Result(request_id, "refused", refusal.reason).as_dict()
        status, _ = STATUS_AFTER[request.action]
        summary = f"{request.action} confirmed" if effects else f"already {status}: nothing to change"
        return self._done(trail, member.member_id, member.boards_owned, summary, effects)

    def _done(
        self, trail: _Trail, member_id: str, boards_owned: int | None, summary: str, effects: int
    ) -> dict[str, Any]:
        """Miro is in the requested state: reflect it in the Members table, then record the outcome."""
        request = trail.request
        status, active = STATUS_AFTER[request.action]
        try:
            self._members.set_status(member_id, status=status, active=active, at=self._clock())
        except Exception as error:  # whatever the table raised: Miro has acted, the record must say so
            message = f"Miro carried out the {request.action}, but updating the Members table failed: {error}"
            self._record_failure(trail, message)
            raise RetryableError(message) from error
        warning = None
        if request.action == "delete" and boards_owned:
            warning = f"{boards_owned} boards change owner (Miro hands them to a team admin)"
        self._finish(trail, "done", summary, warning=warning)
        self._metric("OffboardingDone", 1)
        self._metric("OffboardingEffects", effects)
        self._log.info(
            "offboarding done",
            extra={
                "requestId": request.key,
                "outcome": "done",
                "action": request.action,
                "effects": effects,
            },
        )
        return Result(request.key, "done", summary).as_dict()

    def _partial(self, trail: _Trail, member_id: str, partial: _PartialError) -> dict[str, Any]:
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
            self._record_failure(trail, message)
            raise RetryableError(message) from error
        self._finish(trail, "partial", partial.reason)
        self._metric("OffboardingPartial", 1)
        self._log.warning(
            "offboarding partly done",
            extra={"requestId": request.key, "outcome": "partial", "reason": partial.reason},
        )
        return Result(request.key, "partial", partial.reason).as_dict()

    def _finish_if_applied(self, trail: _Trail) -> dict[str, Any] | None:
        """A retry of a request whose final write to Miro was made (or interrupted, per `inFlight`) by an
        earlier invocation that then failed to record it (e.g. the Members table write failed): if Miro
        shows it took effect, finish as done. Resolving the member again instead would find a deleted
        user gone and refuse the request as unknown. Only reads Miro, so no guard is needed again."""
        record = trail.record
        assert record is not None
        request = trail.request
        scim_id, member_id = record.scim_id, record.member_id
        if request.dry_run or scim_id is None or member_id is None:
            return None
        final_write = (
            f"DELETE /Users/{scim_id}"
            if request.action == "delete"
            else f"PATCH /Users/{scim_id} active={'true' if request.action == 'reactivate' else 'false'}"
        )
        writes = _writes_that_may_have_reached_miro(record)
        if final_write not in writes:
            return None
        user = self._with_failure_recorded(
            trail,
            lambda: self._scim_call(
                trail, f"GET /Users/{scim_id}", lambda: self._scim.get_user(scim_id), gone_ok=True
            ),
        )
        if request.action == "delete":
            if user is not None:
                return None  # not deleted yet: the normal way deletes it
            outcome = f"SCIM user {scim_id} is gone"
        else:
            wanted = request.action == "reactivate"
            if user is None or user.active is not wanted or user.user_name.lower() != record.email:
                return None  # not in the goal state (or not the same person): the normal way decides
            outcome = f"SCIM user {scim_id} reads active={str(wanted).lower()}"
        summary = f"{request.action} confirmed: {outcome} after an earlier attempt's {final_write}"
        return self._done(trail, member_id, record.boards_owned, summary, len(writes))

    def _with_failure_recorded(self, trail: _Trail, call: Callable[[], T]) -> T:
        try:
            return call()
        except RetryableError as failure:
            self._record_failure(trail, str(failure))
            raise

    @staticmethod
    def _planned_calls(action: str, user: ScimUser) -> str:
        calls = []
        if action in {"suspend", "delete"} and user.active is not False:
            calls.append(f"PATCH /Users/{user.id} active=false")
        if action == "reactivate" and user.active is not True:
            calls.append(f"PATCH /Users/{user.id} active=true")
        if action == "delete":
            calls.append(f"DELETE /Users/{user.id}")
        return "; ".join(calls)

    # ---------------------------------------------------------------- resolution and guards

    def _resolve(self, request: OffboardingRequest) -> ResolvedMember:
        """Members table first (ids, SCIM id, boards owned), then Miro for what the table lacks. The
        member's role and state are always confirmed with Miro, since the table can be a sync old and a
        guard decided on a stale role could act on an admin or a guest."""
        known: KnownMember | None
        if request.email is not None:
            known = self._members.find_by_email(request.email)
        else:
            assert request.member_id is not None
            known = self._members.get(request.member_id)
        live = self._live_member(request, known)
        if live is None:
            raise _RefusalError(
                f"unknown member {request.member_key.removeprefix('id:')}: not in the Miro organization"
            )
        scim_id = known.scim_id if known is not None and known.member_id == live.id else None
        boards_owned = known.boards_owned if known is not None and known.member_id == live.id else None
        if boards_owned is None and request.action == "delete":
            boards_owned = self._count_boards(live.id)
        return ResolvedMember(
            member_id=live.id,
            email=live.email.lower(),
            role=live.role,
            license=live.license,
            active=live.active,
            scim_id=scim_id,
            boards_owned=boards_owned,
            # any entry counts, named or not: an admin role without a name is still an admin role
            admin_roles=tuple(
                sorted({role.name or role.type or "unnamed role" for role in live.admin_roles})
            ),
            last_activity_at=live.last_activity_at,
            license_assigned_at=live.license_assigned_at,
        )

    def _live_member(self, request: OffboardingRequest, known: KnownMember | None) -> OrgMember | None:
        try:
            if request.email is not None:
                # by email even when the table knows the id: the batch's lookup answers it with no call
                prefetched = self._prefetch.members_for(request.email, self._clock())
                found = (
                    prefetched
                    if prefetched is not None
                    else self._directory.find_members_by_email([request.email])
                )
                matches = [m for m in found if m.email.lower() == request.email]
                if len(matches) > 1:
                    raise _RefusalError(
                        f"{request.email} matches {len(matches)} Miro members; refusing to guess"
                    )
                return matches[0] if matches else None
            assert request.member_id is not None
            member_id = known.member_id if known is not None else request.member_id
            return self._directory.get_member(member_id)
        except MiroNotFound:
            return None
        except MiroError as error:
            raise RetryableError(f"looking up the member failed: {error}") from error

    def _count_boards(self, member_id: str) -> int | None:
        try:
            return sum(len(page.data) for page in self._directory.iter_board_pages(owner=member_id))
        except MiroError as error:
            # only a warning in the record depends on it: never block an offboarding on it
            self._log.warning(
                "could not count boards owned", extra={"memberId": member_id, "error": str(error)}
            )
            return None

    def _scim_user(self, trail: _Trail, member: ResolvedMember) -> ScimUser:
        """The member's SCIM user, read fresh (its state decides what to call) and checked to be the same
        person: a SCIM id from the table is trusted only if the user it names has the member's email."""
        scim_id = member.scim_id
        user: ScimUser | None
        if scim_id is not None:
            user = self._scim_call(
                trail, f"GET /Users/{scim_id}", lambda: self._scim.get_user(scim_id), gone_ok=True
            )
        else:
            user = self._scim_call(
                trail, "GET /Users?filter=userName", lambda: self._scim.find_user_by_username(member.email)
            )
        if user is None:
            raise _RefusalError(
                f"{member.email} has no SCIM user (not provisioned through SCIM, or already deleted)"
            )
        if user.user_name.lower() != member.email:
            raise _RefusalError(
                f"SCIM user {user.id} is {user.user_name}, not {member.email}: "
                "refusing to act on another account"
            )
        return user

    def _check_guards(self, member: ResolvedMember, request: OffboardingRequest) -> None:
        """Every guard fails closed: what is not positively allowed is refused, before any write."""
        if self._policy.configuration_error is not None and request.is_destructive:
            self._metric("OffboardingConfigurationError", 1)
            raise _RefusalError(
                f"configuration error, every suspend and delete is refused until it is fixed: "
                f"{self._policy.configuration_error}"
            )
        if member.role in REFUSED_ROLES:
            raise _RefusalError(f"{member.email} is {member.role}: {REFUSED_ROLES[member.role]}")
        if member.role not in {ROLE_ADMIN, ROLE_USER}:
            raise _RefusalError(
                f"{member.email} has role {member.role!r}; only internal users and admins are offboarded"
            )
        if member.email in self._policy.protected_emails:
            raise _RefusalError(f"{member.email} is a protected account (PROTECTED_EMAILS)")
        if not self._policy.allow_admin_offboarding:
            if member.role == ROLE_ADMIN:
                raise _RefusalError(f"{member.email} is a Company Admin and ALLOW_ADMIN_OFFBOARDING is false")
            if member.admin_roles:
                raise _RefusalError(
                    f"{member.email} holds Miro admin roles ({', '.join(member.admin_roles)}) and "
                    "ALLOW_ADMIN_OFFBOARDING is false"
                )
        self._check_still_inactive(member, request)

    @staticmethod
    def _check_still_inactive(member: ResolvedMember, request: OffboardingRequest) -> None:
        """The precondition of a request made from an inactivity report, checked against Miro's live
        member record just before acting: activity or a new licence since the report's cutoff refuses it."""
        since = request.inactive_since
        if since is None:
            return
        last_activity, licensed = _aware(member.last_activity_at), _aware(member.license_assigned_at)
        if last_activity is not None and last_activity > since:
            raise _RefusalError(
                f"{member.email} is active again: last activity {last_activity.isoformat()} is "
                f"after inactiveSince {since.isoformat()}"
            )
        if licensed is not None and licensed > since:
            raise _RefusalError(
                f"{member.email} was licensed {licensed.isoformat()}, after inactiveSince "
                f"{since.isoformat()}: not inactive for the whole window"
            )

    def _check_not_overtaken(self, trail: _Trail, member: ResolvedMember) -> None:
        """Requests for one member take effect in the order they were made: a request is refused when a
        later, opposing one exists (e.g. a failed suspend redelivered after the operator reactivated)."""
        request = trail.request
        if request.dry_run:
            return
        record = trail.record or self._new_record(
            request, self._clock(), requested_at=trail.requested_at, sender_id=trail.sender_id
        )
        mine = record.requested_instant
        if trail.phase == PHASE_REQUEST and trail.requested_at:
            # sent again by its requester (not an SQS redelivery, which keeps its send time): the
            # request stands as of this send; due and released messages keep the original's time
            mine = max(mine, trail.requested_at)
        later = self._later_opposing_request(
            record.model_copy(update={"email": member.email, "member_id": member.member_id}),
            requested=mine,
        )
        if later is not None:
            raise _RefusalError(
                f"overtaken by a later request for {member.email}: {later.request_id} ({later.action}, "
                f"{later.outcome}, requested {later.requested_instant}); this {request.action} was "
                f"requested {mine} and is not carried out"
            )

    # ---------------------------------------------------------------- effects

    def _apply(self, action: str, trail: _Trail, user: ScimUser) -> int:
        """Returns how many state changes were made in Miro (0 when the state was already right)."""
        scim_id = user.id
        effects = 0
        if action in {"suspend", "delete"} and user.active is not False:
            self._set_active(trail, scim_id, active=False)
            effects += 1
        if action == "reactivate" and user.active is not True:
            self._set_active(trail, scim_id, active=True)
            effects += 1
        if action == "delete":
            # gone_ok: a 404 right after the confirmed suspend means the user was deleted meanwhile
            # (e.g. a retry after a crash between the call and its record): the goal state holds.
            try:
                self._scim_call(
                    trail,
                    f"DELETE /Users/{scim_id}",
                    lambda: self._scim.delete_user(scim_id),
                    write=True,
                    gone_ok=True,
                )
            except _RefusalError as refused:
                if not (effects or self._deactivated_earlier(trail, scim_id)):
                    # suspended before this request, by someone else: this request changed nothing
                    raise _RefusalError(
                        f"already suspended before this request; Miro refused the delete: {refused.reason}"
                    ) from refused
                # this request's deactivation is confirmed by its read-back: half done
                raise _PartialError(
                    f"suspended, but Miro refused the delete: {refused.reason}", "suspended", False
                ) from refused
            effects += 1
        return effects

    @staticmethod
    def _deactivated_earlier(trail: _Trail, scim_id: str) -> bool:
        """Whether an earlier attempt of this request deactivated the user (then failed before the rest)."""
        operation = f"PATCH /Users/{scim_id} active=false"
        attempts = [*(trail.record.attempts if trail.record else []), *trail.attempts]
        return any(
            a.operation == operation and a.status is not None and 200 <= a.status < 300 for a in attempts
        )

    def _set_active(self, trail: _Trail, scim_id: str, *, active: bool) -> None:
        operation = f"PATCH /Users/{scim_id} active={str(active).lower()}"
        self._scim_call(trail, operation, lambda: self._scim.set_active(scim_id, active), write=True)
        # Read back: some IdP-driven setups have been seen to downgrade a licence instead of deactivating.
        after = self._scim_call(trail, f"GET /Users/{scim_id}", lambda: self._scim.get_user(scim_id))
        if after is None or after.active is not active:
            shown = "no user" if after is None else f"active={after.active}"
            raise RetryableError(f"{operation} returned but the read-back shows {shown}")

    def _scim_call(
        self,
        trail: _Trail,
        operation: str,
        call: Callable[[], T],
        *,
        write: bool = False,
        gone_ok: bool = False,
    ) -> T | None:
        """Run one SCIM call. Writes and every failure join the request's attempts with Miro's status
        code (stored by the next write of the record). Permanent errors become refusals, transient ones
        RetryableError."""
        try:
            result = call()
        except MiroNotFound as gone:
            self._attempt(trail, operation, gone.status, str(gone))
            if gone_ok:
                return None
            raise _RefusalError(f"{operation}: {gone}") from gone
        except (MiroConflict, MiroBadRequest) as permanent:
            self._attempt(trail, operation, permanent.status, str(permanent))
            raise _RefusalError(f"{operation}: {permanent}") from permanent
        except MiroError as transient:
            self._attempt(trail, operation, transient.status, str(transient))
            raise RetryableError(f"{operation}: {transient}") from transient
        if write:
            self._attempt(trail, operation, 204 if operation.startswith("DELETE") else 200, None)
        return result

    # ---------------------------------------------------------------- records

    def _attempt(self, trail: _Trail, operation: str, status: int | None, detail: str | None) -> None:
        # Kept until the next write of the record (the outcome, a failure or a hold), which every path
        # out of a Miro call makes: one write per request instead of one per call. What an invocation
        # that dies before it would lose is covered by `in_flight` (see ActionRecord).
        now = self._clock()
        trail.attempts.append(Attempt(at=utc_now_iso(now), operation=operation, status=status, detail=detail))

    def _write(
        self,
        trail: _Trail,
        *,
        outcome: Outcome | None = None,
        fields: dict[str, Any] | None = None,
        expected: Iterable[str] = OPEN_OUTCOMES,
    ) -> None:
        """The one way the worker writes a request's record: creates it on the first write (raising
        _RecordExistsError if it exists after all), else a conditional update on its outcome (raising
        ActionConflictError). Carries the attempts and fields gathered since the last write."""
        now = self._clock()
        changes = {**trail.fields, **(fields or {})}
        if trail.record is None:
            record = self._new_record(
                trail.request,
                now,
                outcome=outcome or "received",
                fields=changes,
                attempts=trail.attempts,
                requested_at=trail.requested_at,
                sender_id=trail.sender_id,
            )
            if not self._actions.create(record):
                raise _RecordExistsError(trail.request.key)
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

    def _take_budget(self, trail: _Trail, now: datetime) -> None:
        record = trail.record
        assert record is not None
        if record.released_at is not None:
            self._blast.count_unconditionally(now)
        elif not self._blast.try_take(now, self._policy.max_actions_per_hour):
            reason = (
                f"held: more than {self._policy.max_actions_per_hour} actions in the last hour; "
                "run `miro-sync offboard release` to continue"
            )
            with contextlib.suppress(ActionConflictError):  # cancelled meanwhile: stays cancelled
                self._write(trail, outcome="held", fields={"outcome_reason": reason, "in_flight": None})
            self._metric("OffboardingHeld", 1)
            self._log.warning(
                "offboarding held by the blast-radius limit",
                extra={"requestId": record.request_id, "outcome": "held"},
            )
            raise _NotFinalError("held")

    def _finish(
        self,
        trail: _Trail,
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
            self._write(trail, outcome=outcome, fields=changes)
        except ActionConflictError:
            # cancelled by an operator while we worked: their record stands, ours is logged
            self._log.warning(
                "request closed meanwhile",
                extra={"requestId": trail.request.key, "outcome": outcome, "attempts": len(trail.attempts)},
            )

    def _record_failure(self, trail: _Trail, error: str) -> None:
        self._metric("OffboardingTransientFailures", 1)
        with contextlib.suppress(ActionConflictError):  # cancelled meanwhile: stays cancelled
            self._write(
                trail,
                outcome="failed",
                fields={"last_error": error[:1000], "receive_count": trail.receive_count, "in_flight": None},
            )

    def _refuse_invalid(self, invalid: InvalidRequestError) -> Result:
        """A malformed message is refused for good: recorded with the precise reason, copied to the
        dead-letter queue (body as received, reason in its attributes) and acknowledged, so it is
        neither retried forever nor lost. (Powertools' BatchProcessor with a Parser model would mark it
        failed and SQS would redeliver it until the DLQ, with no reason anywhere.)"""
        return self._refuse_for_good(
            invalid.request_id,
            invalid.reason,
            invalid.body,
            request=None,
            metric="OffboardingInvalid",
            event="invalid offboarding message refused",
        )

    def _refuse_unexpected(self, body: str, error: Exception, receive_count: int) -> Result:
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
        digest = hashlib.sha256(_storable(body).encode()).hexdigest()[:32]
        return self._refuse_for_good(
            f"error-{digest}",
            reason,
            body,
            request=request,
            metric="OffboardingUnexpectedErrors",
            event="offboarding message refused after repeated unexpected errors",
        )

    def _refuse_reused_id(
        self, request: OffboardingRequest, body: str, original: ActionRecord | None
    ) -> Result:
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
        return self._refuse_for_good(
            f"reused-{digest}",
            reason,
            body,
            request=request,
            metric="OffboardingReusedIds",
            event="offboarding message refused: requestId reused with different content",
        )

    def _refuse_for_good(
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
        body = _storable(body)
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
            self._metric(metric, 1)
            self._log.warning(event, extra={"requestId": record_id, "outcome": "refused", "reason": reason})
        if self._dead_letters is not None:
            existing = None if first_time else self._actions.get(record_id)
            if first_time or (existing is not None and existing.dead_lettered_at is None):
                self._copy_to_dead_letters(record_id, body, reason)
        return Result(record_id, "refused", reason)

    def _copy_to_dead_letters(self, record_id: str, body: str, reason: str) -> None:
        assert self._dead_letters is not None
        try:
            self._dead_letters.dead_letter(body, request_id=record_id, reason=reason)
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

    def _describe_plan(self, request: OffboardingRequest, member: ResolvedMember, user: ScimUser) -> str:
        state = "active" if user.active is not False else "inactive"
        boards = f", owns {member.boards_owned} boards" if member.boards_owned is not None else ""
        return (
            f"would {request.action} {member.email} (member {member.member_id}, SCIM {user.id}, "
            f"{member.role}, {member.license} licence, currently {state}{boards})"
        )

    def _metric(self, name: str, value: float) -> None:
        if self._metrics is not None:
            self._metrics.add_metric(name=name, unit="Count", value=value)


def _aware(at: datetime | None) -> datetime | None:
    """Miro sends UTC instants with `Z`; one without an offset is read as UTC, never compared naive."""
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def _generation_of(request_id: str, base: str) -> int:
    """1 for the derived id itself, n for `<base>.<n>`, 0 for anything else."""
    if request_id == base:
        return 1
    suffix = request_id.removeprefix(base + ".")
    return int(suffix) if suffix != request_id and suffix.isdigit() and len(suffix) < 9 else 0


def _storable(body: str) -> str:
    """The body as text DynamoDB and SQS accept: lone surrogates and other unencodable characters are
    written as backslash escapes (the record keeps what was received, readable)."""
    return body.encode("utf-8", "backslashreplace").decode("utf-8")


def _duplicate(request_id: str, outcome: str, reason: str | None) -> Result:
    """The answer to a repeat of a finished request: not its outcome (a repeat did nothing), but that it
    is a duplicate, with what the original came to."""
    original = f"{outcome}: {reason}" if reason else outcome
    return Result(request_id, "duplicate", f"duplicate of {request_id} ({original})")


def request_id_of(body: str) -> str | None:
    """The request id a body carries or derives, for log lines about it; None for a malformed body."""
    try:
        return parse_request(body).key
    except InvalidRequestError:
        return None


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
