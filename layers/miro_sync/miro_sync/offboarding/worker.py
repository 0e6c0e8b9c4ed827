"""The offboarding coordinator: one queued request -> guards -> its steps in Miro, each at most once.

The parts: `guards` (who the request is about, and whether it may be carried out), `steps` (the
ordered calls to Miro, each recorded with Miro's answer), `sweep` (pending requests coming due),
`refusals` (messages refused for good) and this module, which ties them together per message.

Safety layers, outermost first:
1. Parsing: a body that is not exactly the contract is refused for good (recorded, never retried).
2. Powertools Idempotency keyed by requestId: concurrent duplicates wait (their SQS record fails and
   comes back), completed ones return the stored result. Only final outcomes are kept there; a request
   that is merely pending (notBefore) or held (blast radius) releases the key so its later message runs.
3. The actions table: every request is one item whose `outcome` only moves by conditional writes; a
   final outcome (done/partial/refused/dry-run/cancelled) is never reopened, even after the idempotency
   key expired. A new request's item is created by its first write (a conditional put after the guards,
   carrying the member and the Miro calls about to be made in `inFlight`). Between two steps one write
   stores the finished steps with Miro's answers and names the next calls; the last one sets the
   outcome. If the invocation dies between two writes, the retry finds `inFlight`, records the
   interrupted call, and resumes at the first step the record does not list.
4. Miro state is read before every write, so a retry after a crash between a call and its record
   finds the work done and makes no second call: the user's state before a PATCH or DELETE, the
   successor's board membership for every share an earlier attempt made without recording it (ended
   inside it, or lost its answer to a timeout or a 5xx), the successor's team role before a promotion.
   A retry whose record shows the delete's SCIM DELETE
   (made, or interrupted per `inFlight`) first asks Miro whether it took effect (a deleted user is a
   404): if so it finishes as done, without resolving the member again (who no longer exists).
5. A request id stands for one request: a message that reuses an id with different content (compared
   normalised, see `OffboardingRequest.fingerprint`) is refused for good under its own record
   (`reused-...`), and the original request's record is left as it is.
Guards (unknown member, external user, team guest, protected, admin, SCIM identity mismatch, a successor
who cannot take over, a delete of a team's last admin without a successor) are all checked before the
first write call; a refusal is final.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, TypeVar

from miro_sync.miro.errors import MiroError
from miro_sync.miro.models import OrgMember, ScimUser
from miro_sync.offboarding.guards import BatchLookups, MemberResolver, check_guards, check_successor
from miro_sync.offboarding.handover import Handover, TeamInfo, find_handover
from miro_sync.offboarding.messages import (
    MAX_NOT_BEFORE_AHEAD,
    MAX_NOT_BEFORE_BEHIND,
    InvalidRequestError,
    OffboardingRequest,
    parse_request,
)
from miro_sync.offboarding.model import (
    PHASE_ATTRIBUTE,
    PHASE_DUE,
    PHASE_RELEASE,
    PHASE_REQUEST,
    PHASES,
    STATUS_AFTER,
    GuardPolicy,
    NotFinalError,
    PartialError,
    RecordExistsError,
    RefusalError,
    ResolvedMember,
    Result,
    RetryableError,
    ReusedIdError,
    Trail,
    duplicate,
    new_action_record,
    request_id_of,
    utc_now,
)
from miro_sync.offboarding.ordering import RequestOrder
from miro_sync.offboarding.ports import (
    ActionsStore,
    BlastRadius,
    DeadLetterSender,
    LogSink,
    MembersStore,
    MessageSender,
    MetricsSink,
    OrgDirectory,
    ScimUsers,
    Workspace,
)
from miro_sync.offboarding.refusals import UNEXPECTED_ERROR_RECEIVES, Refusals
from miro_sync.offboarding.steps import (
    DELETE,
    MiroCalls,
    Plan,
    StepOptions,
    StepRunner,
    StepsDone,
    planned_steps,
)
from miro_sync.offboarding.sweep import due_message, sweep_due
from miro_sync.store.actions import (
    OPEN_OUTCOMES,
    ActionConflictError,
    ActionRecord,
    Attempt,
    Outcome,
    utc_now_iso,
)
from miro_sync.store.queue import MAX_DELAY_SECONDS, QueueSendError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
    from aws_lambda_powertools.utilities.typing import LambdaContext

__all__ = [
    "PHASE_ATTRIBUTE",
    "PHASE_DUE",
    "PHASE_RELEASE",
    "PHASE_REQUEST",
    "UNEXPECTED_ERROR_RECEIVES",
    "GuardPolicy",
    "OffboardingWorker",
    "Result",
    "RetryableError",
    "request_id_of",
]

T = TypeVar("T")

# How many generations of a hand-written intent one message may step through (RequestOrder.next_generation)
MAX_GENERATION_HOPS: Final = 8


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
        workspace: Workspace | None = None,
        metrics: MetricsSink | None = None,
        clock: Callable[[], datetime] = utc_now,
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
        self._policy = policy
        self._metrics = metrics
        self._clock = clock
        self._log: LogSink = logger if logger is not None else logging.getLogger(__name__)
        self._prefetch = BatchLookups()
        self._resolver = MemberResolver(
            members=members, directory=directory, prefetch=self._prefetch, clock=clock, logger=self._log
        )
        self._refusals = Refusals(
            actions=actions, dead_letters=dead_letters, clock=clock, metrics=metrics, logger=self._log
        )
        self._calls = MiroCalls(clock)
        # the REST client is both the directory and the workspace in Lambda; tests may hand in one fake
        self._steps = StepRunner(
            scim=scim,
            workspace=workspace if workspace is not None else directory,  # type: ignore[arg-type]
            calls=self._calls,
            save=lambda trail, fields: self._write(trail, fields=fields),
            clock=clock,
        )
        self._idempotency_config = idempotency_config
        self._order = RequestOrder(
            actions=actions,
            clock=clock,
            dedupe_window=timedelta(seconds=idempotency_config.expires_after_seconds),
        )
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
            return self._refusals.invalid(invalid)
        except Exception as unexpected:
            return self._refusals.unexpected(body, unexpected, receive_count)

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
            return self._refusals.invalid(invalid)
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
            except NotFinalError as not_final:
                return Result(request.key, not_final.outcome)
            except ReusedIdError as reused:
                return self._refusals.reused_id(request, body, reused.original)
            fingerprint = stored.get("fingerprint")
            if fingerprint is not None and fingerprint != request.fingerprint:
                # Powertools answered from the result stored under this id, which is another request's
                return self._refusals.reused_id(request, body, self._actions.get(request.key))
            if stored.get("nonce") == nonce:
                return Result(stored["requestId"], stored["outcome"], stored.get("reason"))
            # Powertools answered from an earlier invocation's result: this message repeats a request
            successor = self._order.successor_if_overtaken(request, stored["requestId"], phase, sent)
            if successor is None:
                self._metric("OffboardingDuplicates", 1)
                return duplicate(stored["requestId"], stored["outcome"], stored.get("reason"))
            request, message = successor, successor.to_body()
        # cannot happen (RequestOrder.generation_after jumps to the latest generation); never retried forever
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

    # ---------------------------------------------------------------- the idempotent part

    def _process(self, payload: dict[str, Any]) -> dict[str, Any]:
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
                    return self._stamped(self._carry_out(trail), request, nonce)
                except RecordExistsError:
                    pass
                existing = self._actions.get(request.key)
                if existing is None:  # nothing deletes action records, so this is a bug
                    raise RetryableError(f"action record {request.key} vanished") from None
            else:
                existing = self._load_or_create(trail, now, look_first=phase != PHASE_REQUEST)
            self._ensure_same_request(existing, request)
            successor = self._order.next_generation(request, existing, phase, now, sent=trail.requested_at)
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
        notBefore's offset do not matter). Raises ReusedIdError otherwise, before anything is done."""
        try:
            stored = parse_request(existing.body)
        except InvalidRequestError:  # e.g. someone chose the id of a refused malformed message
            raise ReusedIdError(existing) from None
        if stored.fingerprint != request.fingerprint:
            raise ReusedIdError(existing)

    def _continue(self, trail: Trail, phase: str, now: datetime) -> dict[str, Any]:
        """A request whose record exists: its stored state decides what may happen."""
        record = trail.record
        assert record is not None
        request = trail.request
        if record.is_final:
            if phase != PHASE_REQUEST:  # a due or released message of a request closed meanwhile
                return Result(record.request_id, record.outcome, record.outcome_reason).as_dict()
            self._metric("OffboardingDuplicates", 1)
            return duplicate(record.request_id, record.outcome, record.outcome_reason).as_dict()
        if record.outcome == "held" and record.released_at is None:
            raise NotFinalError("held")
        if request.not_before is not None and request.not_before > now and not request.dry_run:
            self._defer(request, record, phase, now)
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

    def _load_or_create(self, trail: Trail, now: datetime, *, look_first: bool) -> ActionRecord:
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
                self._queue.send(due_message(record.body, delay))
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

    @contextlib.contextmanager
    def batch(self, bodies: Sequence[str]) -> Iterator[None]:
        """Around the processing of one SQS batch: looks up the members (and successors) the batch names
        by email in one go. Best effort: if the lookup fails, each message looks its member up itself
        (and fails or retries on its own)."""
        now = self._clock()
        emails: list[str] = []
        for body in bodies:
            try:
                request = parse_request(body)
            except Exception:  # noqa: S112 - refused when its turn comes, on its own
                continue
            deferring = request.not_before is not None and request.not_before > now and not request.dry_run
            if deferring:
                continue
            for email in (request.email, self._successor_email(request)):
                if email is not None and email not in emails:
                    emails.append(email)
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
        """Scheduled: enqueue pending actions whose notBefore falls within SQS's delay range."""
        return sweep_due(
            actions=self._actions,
            queue=self._queue,
            clock=self._clock,
            metrics=self._metrics,
            logger=self._log,
        )

    def _carry_out(self, trail: Trail) -> dict[str, Any]:
        """Resolve, guard, plan, then run the steps. Raises RecordExistsError when it would create a
        record that exists."""
        request = trail.request
        request_id = request.key
        member: ResolvedMember | None = None
        try:
            try:
                member = self._resolver.resolve(request, count_boards=self._successor_email(request) is None)
                try:
                    plan = self._plan(trail, member)
                except RefusalError as refusal:
                    raise RefusalError(refusal.reason, member.record_fields()) from refusal
            except RetryableError as failure:
                self._record_failure(trail, str(failure))
                raise
            if request.dry_run:
                text = plan.describe()
                self._finish(trail, "dry-run", text, fields=self._plan_fields(plan))
                self._metric("OffboardingDryRuns", 1)
                return Result(request_id, "dry-run", text).as_dict()
            # The write before Miro's: creates the record (or updates it), with the member and the
            # calls about to be made, so an invocation that dies inside Miro leaves a trace.
            self._write(
                trail, fields={**self._plan_fields(plan), "in_flight": self._steps.first_calls(plan, trail)}
            )
            record = trail.record
            now = self._clock()
            if record is not None and record.budget_counted_at is None:
                # reactivations count too: the limit is on changes. Stored by the write before the
                # first call to Miro (see StepRunner._before): a crash between the count and that
                # write counts again on retry, which can only make the limit hold earlier, never later.
                self._take_budget(trail, now)
                trail.fields["budget_counted_at"] = utc_now_iso(now)
            try:
                done = self._steps.run(trail, plan)
            except RetryableError as failure:
                self._record_failure(trail, str(failure))
                raise
        except PartialError as partial:
            return self._partial(trail, member.member_id if member else "", partial)
        except RefusalError as refusal:
            self._finish(trail, "refused", refusal.reason, fields=refusal.fields)
            self._metric("OffboardingRefused", 1)
            self._log.warning(
                "offboarding refused",
                extra={"requestId": request_id, "outcome": "refused", "reason": refusal.reason},
            )
            return Result(request_id, "refused", refusal.reason).as_dict()
        return self._done(trail, plan.leaver.member_id, done)

    def _successor_email(self, request: OffboardingRequest) -> str | None:
        if request.action == "reactivate":
            return None
        return request.successor or self._policy.default_successor

    def _plan(self, trail: Trail, member: ResolvedMember) -> Plan:
        """Guards first, then what Miro says now: the SCIM user, the successor, the boards to hand over
        and the teams the leaver is the last admin of. Only reads; raises RefusalError."""
        request = trail.request
        try:
            check_guards(self._policy, member, request)
        except RefusalError:
            if self._policy.configuration_error is not None and request.is_destructive:
                self._metric("OffboardingConfigurationError", 1)
            raise
        self._order.check_not_overtaken(trail, member)
        successor: OrgMember | None = None
        # a request keeps the successor it started with (DefaultSuccessor may change between attempts)
        recorded = trail.record.successor if trail.record is not None else None
        successor_email = recorded or self._successor_email(request)
        if successor_email is not None:
            successor = check_successor(
                self._resolver.member_by_email(successor_email), successor_email, member
            )
        user = self._scim_user(trail, member)
        member = _with_scim_id(member, user.id)
        handover = self._handover(member, request.action, with_boards=successor is not None)
        if member.boards_owned is None and handover is not None and successor is not None:
            member = dataclasses.replace(member, boards_owned=len(handover.boards))
        if handover is not None and handover.sole_admin_teams and successor is None:
            named = ", ".join(f"{team.name} ({team.id})" for team in handover.sole_admin_teams)
            raise RefusalError(
                f"{member.email} is the last admin of team(s) {named}: Miro refuses to delete them; "
                "name a successor (who is made admin of those teams first) or make someone else admin"
            )
        options = StepOptions(
            successor=successor.email if successor else None, reset_sessions=self._policy.reset_sessions
        )
        return Plan(
            action=request.action,
            steps=planned_steps(request.action, options),
            user=user,
            leaver=member,
            successor=successor,
            handover=handover,
        )

    def _handover(self, member: ResolvedMember, action: str, *, with_boards: bool) -> Handover | None:
        admin_teams = [TeamInfo(id=team_id, name=name) for team_id, name in member.admin_teams]
        if action == "delete" and admin_teams:
            pass
        elif not with_boards:
            return None
        try:
            return find_handover(
                self._directory,
                member.member_id,
                admin_teams if action == "delete" else [],
                boards_counted=member.boards_owned,
                with_boards=with_boards,
            )
        except MiroError as error:
            raise RetryableError(
                f"listing the boards and team admins of {member.email} failed: {error}"
            ) from error

    @staticmethod
    def _plan_fields(plan: Plan) -> dict[str, Any]:
        fields = plan.leaver.record_fields()
        if plan.successor is not None:
            fields["successor"] = plan.successor.email
        return fields

    def _done(
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
            self._record_failure(trail, message)
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
        warning = "; ".join(done.warnings) or None
        record = trail.record
        boards_owned = record.boards_owned if record is not None else None
        if request.action == "delete" and boards_owned and not (record and record.successor):
            owners = f"{boards_owned} boards change owner (Miro hands them to a team admin)"
            warning = f"{warning}; {owners}" if warning else owners
        self._finish(trail, outcome, summary[:1000], warning=warning)
        self._metric("OffboardingDone" if outcome == "done" else "OffboardingPartial", 1)
        self._metric("OffboardingEffects", done.effects)
        self._log.info(
            "offboarding done",
            extra={
                "requestId": request.key,
                "outcome": outcome,
                "action": request.action,
                "effects": done.effects,
            },
        )
        return Result(request.key, outcome, summary[:1000]).as_dict()

    def _finish_if_applied(self, trail: Trail) -> dict[str, Any] | None:
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
        user = self._with_failure_recorded(
            trail,
            lambda: self._calls.call(
                trail, f"GET /Users/{scim_id}", lambda: self._scim.get_user(scim_id), gone_ok=True
            ),
        )
        if user is not None:
            return None  # not deleted yet: the normal way deletes it
        from miro_sync.store.actions import StepRecord

        answer = f"SCIM user {scim_id} is gone after an earlier attempt's {final_write}"
        steps = list(record.steps)
        if record.step(DELETE) is None:  # recorded already when only the Members table write failed
            steps.append(
                StepRecord(kind=DELETE, status="done", at=utc_now_iso(self._clock()), answer=answer, count=1)
            )
        trail.fields["steps"] = [step.model_dump(exclude_none=True) for step in steps]
        done = StepsDone(effects=sum(step.count or 0 for step in steps), summaries=[f"delete: {answer}"])
        done.problems = [f"{step.kind}: {step.answer}" for step in record.steps if step.status != "done"]
        return self._done(trail, member_id, done, confirmed=answer)

    def _partial(self, trail: Trail, member_id: str, partial: PartialError) -> dict[str, Any]:
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

    def _with_failure_recorded(self, trail: Trail, call: Callable[[], T]) -> T:
        try:
            return call()
        except RetryableError as failure:
            self._record_failure(trail, str(failure))
            raise

    def _scim_user(self, trail: Trail, member: ResolvedMember) -> ScimUser:
        """The member's SCIM user, read fresh (its state decides what to call) and checked to be the same
        person: a SCIM id from the table is trusted only if the user it names has the member's email."""
        scim_id = member.scim_id
        user: ScimUser | None
        if scim_id is not None:
            user = self._calls.call(
                trail, f"GET /Users/{scim_id}", lambda: self._scim.get_user(scim_id), gone_ok=True
            )
        else:
            user = self._calls.call(
                trail, "GET /Users?filter=userName", lambda: self._scim.find_user_by_username(member.email)
            )
        if user is None:
            raise RefusalError(
                f"{member.email} has no SCIM user (not provisioned through SCIM, or already deleted)"
            )
        if user.user_name.lower() != member.email:
            raise RefusalError(
                f"SCIM user {user.id} is {user.user_name}, not {member.email}: "
                "refusing to act on another account"
            )
        return user

    def _write(
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

    def _take_budget(self, trail: Trail, now: datetime) -> None:
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
            raise NotFinalError("held")

    def _finish(
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
            self._write(trail, outcome=outcome, fields=changes)
        except ActionConflictError:
            # cancelled by an operator while we worked: their record stands, ours is logged
            self._log.warning(
                "request closed meanwhile",
                extra={"requestId": trail.request.key, "outcome": outcome, "attempts": len(trail.attempts)},
            )

    def _record_failure(self, trail: Trail, error: str) -> None:
        self._metric("OffboardingTransientFailures", 1)
        with contextlib.suppress(ActionConflictError):  # cancelled meanwhile: stays cancelled
            self._write(
                trail,
                outcome="failed",
                fields={"last_error": error[:1000], "receive_count": trail.receive_count, "in_flight": None},
            )

    def _metric(self, name: str, value: float) -> None:
        if self._metrics is not None:
            self._metrics.add_metric(name=name, unit="Count", value=value)


def _with_scim_id(member: ResolvedMember, scim_id: str) -> ResolvedMember:
    return dataclasses.replace(member, scim_id=scim_id)


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
