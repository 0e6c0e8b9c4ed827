"""The offboarding coordinator: one queued request -> guards -> its steps in Miro, each at most once.

The parts: `lifecycle` (one request's way, under Powertools Idempotency), `guards` and `planning` (who
the request is about, whether it may be carried out, and what it will do), `budget` (the blast-radius
limit), `steps` (the ordered calls to Miro, each recorded with Miro's answer), `outcomes` (how a request
that ran ends), `recording` (its record, metrics and logs), `sweep` (pending requests coming due),
`refusals` (messages refused for good), `errors` (the exceptions that move a request between them) and
this module, which takes each SQS message in and wires the parts together.

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
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from miro_sync.offboarding.budget import ActionBudget
from miro_sync.offboarding.errors import (
    InvalidRequestError,
    NotFinalError,
    RetryableError,
    ReusedIdError,
)
from miro_sync.offboarding.guards import BatchLookups, MemberResolver
from miro_sync.offboarding.lifecycle import RequestLifecycle
from miro_sync.offboarding.messages import (
    MAX_NOT_BEFORE_AHEAD,
    MAX_NOT_BEFORE_BEHIND,
    OffboardingRequest,
    parse_request,
)
from miro_sync.offboarding.model import (
    PHASE_ATTRIBUTE,
    PHASE_RELEASE,
    PHASE_REQUEST,
    PHASES,
    GuardPolicy,
    Result,
    duplicate,
    request_id_of,
    utc_now,
)
from miro_sync.offboarding.ordering import RequestOrder
from miro_sync.offboarding.outcomes import Outcomes
from miro_sync.offboarding.planning import Planner
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
from miro_sync.offboarding.recording import Recorder
from miro_sync.offboarding.refusals import Refusals
from miro_sync.offboarding.steps import MiroCalls, StepRunner
from miro_sync.offboarding.sweep import sweep_due
from miro_sync.store.actions import utc_now_iso

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Imported from here by the handler (functions/offboarding) and the CLI (the phase names)
__all__ = [
    "PHASE_ATTRIBUTE",
    "PHASE_RELEASE",
    "PHASE_REQUEST",
    "GuardPolicy",
    "OffboardingWorker",
    "request_id_of",
]

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

        self._actions = actions  # the sweep's; a request's record goes through the recorder
        self._directory = directory
        self._scim = scim
        self._queue = queue
        self._metrics = metrics
        self._clock = clock
        self._log: LogSink = logger if logger is not None else logging.getLogger(__name__)
        self._recorder = Recorder(actions=actions, clock=clock, metrics=metrics, logger=self._log)
        self._prefetch = BatchLookups()
        self._refusals = Refusals(
            actions=actions, dead_letters=dead_letters, clock=clock, metrics=metrics, logger=self._log
        )
        self._idempotency_config = idempotency_config
        self._order = RequestOrder(
            actions=actions,
            clock=clock,
            dedupe_window=timedelta(seconds=idempotency_config.expires_after_seconds),
        )
        self._planner, self._lifecycle = self._request_parts(
            members=members,
            directory=directory,
            scim=scim,
            # the REST client is both the directory and the workspace in Lambda; tests may hand in one fake
            workspace=workspace if workspace is not None else directory,  # type: ignore[arg-type]
            blast_radius=blast_radius,
            policy=policy,
        )
        self._idempotent_process = idempotent_function(
            self._process,
            data_keyword_argument="payload",
            persistence_store=persistence_store,
            config=idempotency_config,
        )

    def _request_parts(
        self,
        *,
        members: MembersStore,
        directory: OrgDirectory,
        scim: ScimUsers,
        workspace: Workspace,
        blast_radius: BlastRadius,
        policy: GuardPolicy,
    ) -> tuple[Planner, RequestLifecycle]:
        """The parts one request goes through, sharing the worker's recorder, clock and order."""
        clock, recorder = self._clock, self._recorder
        calls = MiroCalls(clock)
        planner = Planner(
            policy=policy,
            resolver=MemberResolver(
                members=members, directory=directory, prefetch=self._prefetch, clock=clock, logger=self._log
            ),
            order=self._order,
            directory=directory,
            scim=scim,
            calls=calls,
            recorder=recorder,
        )
        lifecycle = RequestLifecycle(
            recorder=recorder,
            planner=planner,
            steps=StepRunner(
                scim=scim,
                workspace=workspace,
                calls=calls,
                save=lambda trail, fields: recorder.write(trail, fields=fields),
                clock=clock,
            ),
            budget=ActionBudget(
                blast_radius=blast_radius, max_actions_per_hour=policy.max_actions_per_hour, recorder=recorder
            ),
            outcomes=Outcomes(members=members, scim=scim, calls=calls, recorder=recorder, clock=clock),
            order=self._order,
            queue=self._queue,
            clock=clock,
        )
        return planner, lifecycle

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
        message causes is its own fate, never the batch's (see `Refusals.unexpected`)."""
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
                return self._refusals.reused_id(request, body, self._recorder.get(request.key))
            if stored.get("nonce") == nonce:
                return Result(stored["requestId"], stored["outcome"], stored.get("reason"))
            # Powertools answered from an earlier invocation's result: this message repeats a request
            successor = self._order.successor_if_overtaken(request, stored["requestId"], phase, sent)
            if successor is None:
                self._recorder.count("OffboardingDuplicates", 1)
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
        # Powertools keys its idempotency records by this method's module and qualified name
        # (miro_sync.offboarding.worker.OffboardingWorker._process): moving it would orphan the keys
        # of requests in progress or answered during a deployment.
        return self._lifecycle.process(payload)

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
            except Exception:  # nosec B112  # noqa: S112 - refused when its turn comes, on its own
                continue
            deferring = request.not_before is not None and request.not_before > now and not request.dry_run
            if deferring:
                continue
            for email in (request.email, self._planner.successor_email(request)):
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
