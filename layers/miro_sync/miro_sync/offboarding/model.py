"""What the parts of the offboarding worker share: the phases of a message, the outcome of one, the
member as resolved from Miro, the guard policy and one invocation's trail of a request. The exceptions
that move a request between the parts are in `errors`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from miro_sync.offboarding.errors import InvalidRequestError
from miro_sync.offboarding.messages import OffboardingRequest, parse_request
from miro_sync.store.actions import ActionRecord, Attempt, Outcome, utc_now_iso

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
# reactivate undoes suspend/delete and the other way round: a later one of these overtakes an earlier
OPPOSING_ACTIONS: Final = {
    "suspend": frozenset({"reactivate"}),
    "delete": frozenset({"reactivate"}),
    "reactivate": frozenset({"suspend", "delete"}),
}
# How long a batch's member lookup stands in for a per-message one. A batch takes seconds; the cap
# only matters when pacing waits stretch it, and then the guards fall back to a fresh lookup.
PREFETCH_MAX_AGE: Final = timedelta(seconds=60)


@dataclass
class Trail:
    """One invocation's work on one request: its record (None until the first write creates it) and
    what is learnt between writes (attempts with Miro's status codes, fields), stored by the next write."""

    request: OffboardingRequest
    record: ActionRecord | None
    receive_count: int
    requested_at: str | None = None  # when this message was sent (SQS SentTimestamp)
    sender_id: str | None = None
    phase: str = PHASE_REQUEST
    attempts: list[Attempt] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    # the calls an earlier invocation had in flight when it ended (the record's `inFlight` as found)
    interrupted: str | None = None

    def all_attempts(self) -> list[Attempt]:
        return [*(self.record.attempts if self.record else []), *self.attempts]


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
    # (team id, team name) of the teams the Members table says the member is admin of
    admin_teams: tuple[tuple[str, str], ...] = ()

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
    # Who takes over when a request names no successor (DefaultSuccessor; None: nobody)
    default_successor: str | None = None
    # Sign the leaver out everywhere after the deactivation (ResetSessions)
    reset_sessions: bool = True


@dataclass(frozen=True)
class Result:
    request_id: str
    outcome: str
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"requestId": self.request_id, "outcome": self.outcome, "reason": self.reason}


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def aware(at: datetime | None) -> datetime | None:
    """Miro sends UTC instants with `Z`; one without an offset is read as UTC, never compared naive."""
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def storable(body: str) -> str:
    """The body as text DynamoDB and SQS accept: lone surrogates and other unencodable characters are
    written as backslash escapes (the record keeps what was received, readable)."""
    return body.encode("utf-8", "backslashreplace").decode("utf-8")


def duplicate(request_id: str, outcome: str, reason: str | None) -> Result:
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


def new_action_record(
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
