"""In-memory stand-ins for the offboarding worker's adapters, with the same semantics as the real
ones where the worker depends on them (conditional outcome transitions, SCIM 404/409, idempotency)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer, DataRecord

from miro_sync.miro.errors import MiroAuthError, MiroConflict, MiroError, MiroNotFound
from miro_sync.miro.models import (
    BoardInvitation,
    BoardMember,
    BoardsPage,
    OrgMember,
    ScimUser,
    TeamMember,
    TeamMembersPage,
)
from miro_sync.offboarding.ports import LogSink
from miro_sync.offboarding.worker import GuardPolicy, OffboardingWorker
from miro_sync.settings.offboarding import OffboardingSettings
from miro_sync.store.actions import ActionConflictError, ActionRecord, Attempt, Outcome, utc_now_iso
from miro_sync.store.queue import OutgoingMessage, QueueSendError

START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


class InvocationCrashError(Exception):
    """The invocation dies at this point (timeout, out of memory): nothing in the worker handles it."""


class TableWriteError(Exception):
    """What a DynamoDB write can raise (throttling, network): the worker does not know its type."""


class Clock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FakeLambdaContext:
    function_name = "OffboardingFunction"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class InMemoryIdempotency(BasePersistenceLayer):
    """Powertools persistence layer over a dict: INPROGRESS/COMPLETED records as DynamoDB would hold them."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, DataRecord] = {}

    def _get_record(self, idempotency_key: str) -> DataRecord:
        try:
            return self.records[idempotency_key]
        except KeyError:
            raise IdempotencyItemNotFoundError from None

    def _put_record(self, data_record: DataRecord) -> None:
        existing = self.records.get(data_record.idempotency_key)
        if existing is not None and not existing.is_expired:
            raise IdempotencyItemAlreadyExistsError(old_data_record=existing)
        self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        self.records.pop(data_record.idempotency_key, None)


class FakeActions:
    def __init__(self) -> None:
        self.items: dict[str, ActionRecord] = {}
        self.round_trips: list[str] = []  # one entry per call the real repository makes to DynamoDB
        # the invocation dies right after the nth update from now has been stored (between two steps)
        self.crash_after_updates: int | None = None

    def get(self, request_id: str) -> ActionRecord | None:
        self.round_trips.append(f"get {request_id}")
        record = self.items.get(request_id)
        return record.model_copy(deep=True) if record else None

    def create(self, record: ActionRecord) -> bool:
        self.round_trips.append(f"create {record.request_id}")
        if record.request_id in self.items:
            return False
        self.items[record.request_id] = record.model_copy(deep=True)
        return True

    def update(
        self,
        request_id: str,
        *,
        at: datetime,
        expected: Iterable[str],
        outcome: Outcome | None = None,
        fields: dict[str, Any] | None = None,
        attempt: Attempt | None = None,
        attempts: Sequence[Attempt] = (),
    ) -> ActionRecord:
        self.round_trips.append(f"update {request_id}")
        record = self.items.get(request_id)
        if record is None or record.outcome not in set(expected):
            raise ActionConflictError(request_id)
        changes: dict[str, Any] = {"updated_at": utc_now_iso(at), **(fields or {})}
        if outcome is not None:
            changes["outcome"] = outcome
        appended = [*attempts, *([attempt] if attempt is not None else [])]
        if appended:
            changes["attempts"] = [*record.attempts, *appended]
        # validated like the real repository's answer (ALL_NEW read back through the model)
        updated = ActionRecord.model_validate(
            {**record.model_dump(), **{k: v for k, v in changes.items() if v is not None}}
        )
        for name in (k for k, v in changes.items() if v is None):
            setattr(updated, name, None)
        self.items[request_id] = updated
        if self.crash_after_updates is not None:
            self.crash_after_updates -= 1
            if self.crash_after_updates == 0:
                self.crash_after_updates = None
                raise InvocationCrashError(f"died after update {request_id}")
        return updated.model_copy(deep=True)

    def by_outcome(self, outcome: Outcome, *, limit: int | None = None) -> Iterator[ActionRecord]:
        matching = sorted(
            (r for r in self.items.values() if r.outcome == outcome), key=lambda r: r.updated_at
        )
        yield from [r.model_copy(deep=True) for r in matching][:limit]

    def by_member(self, member_key: str) -> list[ActionRecord]:
        self.round_trips.append(f"query {member_key}")
        matching = sorted(
            (r for r in self.items.values() if r.member_key == member_key), key=lambda r: r.created_at
        )
        return [r.model_copy(deep=True) for r in matching]


@dataclass(frozen=True)
class FakeTeamRole:
    id: str
    name: str
    role: str


@dataclass
class FakeMemberRecord:
    member_id: str
    email: str
    scim_id: str | None
    boards_owned: int = 0
    status: str = "active"
    active: bool = True
    team_memberships: tuple[FakeTeamRole, ...] = ()


class FakeMembers:
    def __init__(self, records: Iterable[FakeMemberRecord] = ()) -> None:
        self.records = {r.member_id: r for r in records}
        self.status_changes: list[tuple[str, str, bool]] = []
        self.set_status_failures = 0  # the next this many set_status calls raise, changing nothing

    def get(self, member_id: str) -> FakeMemberRecord | None:
        return self.records.get(member_id)

    def find_by_email(self, email: str) -> FakeMemberRecord | None:
        return next((r for r in self.records.values() if r.email == email), None)

    def set_status(self, member_id: str, *, status: str, active: bool, at: datetime) -> bool:
        if self.set_status_failures:
            self.set_status_failures -= 1
            raise TableWriteError("ProvisionedThroughputExceededException")
        self.status_changes.append((member_id, status, active))
        record = self.records.get(member_id)
        if record is not None:
            record.status, record.active = status, active
        return record is not None


@dataclass
class OrgPerson:
    member_id: str
    email: str
    role: str = "organization_internal_user"
    license: str = "full"
    scim_id: str | None = None  # None: invisible to SCIM (guests, external users)
    active: bool = True
    boards: int = 0
    admin_roles: tuple[str, ...] = ()
    last_activity_at: datetime | None = None
    license_assigned_at: datetime | None = None


class FakeMiro:
    """Both Miro APIs over one org: REST members and SCIM users share state, as in Miro."""

    def __init__(self, people: Iterable[OrgPerson]) -> None:
        self.people = {p.member_id: p for p in people}
        self.calls: list[str] = []
        self.writes: list[str] = []  # state-changing SCIM calls that succeeded
        self.failures: dict[str, list[MiroError]] = {}  # operation -> errors to raise, in order
        self.ignore_deactivation = False  # an IdP that downgrades instead of deactivating
        self.last_admin_ids: set[str] = set()
        self.last_team_admin_ids: set[str] = set()  # Miro refuses their SCIM DELETE (not the PATCH)
        self.on_call: Callable[[str], None] | None = None  # e.g. a duplicate delivered mid-call
        self._crash_after: dict[str, int] = {}
        self.sessions_reset: list[str] = []  # emails, one per successful reset
        self.board_members: dict[str, dict[str, str]] = {}  # board id -> member id -> role
        self.teams: dict[str, dict[str, str]] = {}  # team id -> member id -> team role
        self.hidden_boards: set[str] = set()  # boards the token cannot share (403)

    def crash_after(self, operation: str, nth: int = 1) -> None:
        """The invocation dies right after the nth successful `operation` (e.g. "delete_user") took
        effect in Miro, before the worker sees the answer."""
        self._crash_after[operation] = nth

    def _succeeded(self, operation: str) -> None:
        remaining = self._crash_after.get(operation)
        if remaining is None:
            return
        if remaining <= 1:
            del self._crash_after[operation]
            raise InvocationCrashError(f"died after {operation}")
        self._crash_after[operation] = remaining - 1

    def fail(self, operation: str, *errors: MiroError) -> None:
        self.failures.setdefault(operation, []).extend(errors)

    def _call(self, operation: str) -> None:
        self.calls.append(operation)
        if self.on_call is not None:
            hook, self.on_call = self.on_call, None
            hook(operation)
        queued = self.failures.get(operation)
        if queued:
            raise queued.pop(0)

    def _by_scim(self, user_id: str) -> OrgPerson:
        person = next((p for p in self.people.values() if p.scim_id == user_id), None)
        if person is None:
            raise MiroNotFound("User not found", status=404)
        return person

    @staticmethod
    def _user(person: OrgPerson) -> ScimUser:
        assert person.scim_id is not None
        return ScimUser.model_validate(
            {"id": person.scim_id, "userName": person.email, "active": person.active}
        )

    # REST
    def get_member(self, member_id: str) -> OrgMember:
        self._call("get_member")
        person = self.people.get(member_id)
        if person is None:
            raise MiroNotFound("member not found", status=404)
        return self._member(person)

    def find_members_by_email(self, emails: list[str]) -> Sequence[OrgMember]:
        self._call("find_members_by_email")
        return [self._member(p) for p in self.people.values() if p.email in emails]

    @staticmethod
    def _member(person: OrgPerson) -> OrgMember:
        return OrgMember.model_validate(
            {
                "id": person.member_id,
                "email": person.email,
                "role": person.role,
                "license": person.license,
                "active": person.active,
                "adminRoles": [{"type": "prebuilt", "name": name} for name in person.admin_roles],
                "lastActivityAt": person.last_activity_at.isoformat() if person.last_activity_at else None,
                "licenseAssignedAt": (
                    person.license_assigned_at.isoformat() if person.license_assigned_at else None
                ),
            }
        )

    def iter_board_pages(self, owner: str | None = None) -> Iterator[BoardsPage]:
        self._call("iter_board_pages")
        count = self.people[owner].boards if owner in self.people else 0
        boards = [{"id": f"b{owner}-{n}", "name": f"board {n}"} for n in range(count)]
        yield BoardsPage.model_validate({"data": boards, "total": count})

    def iter_team_member_pages(
        self, team_id: str, cursor: str | None = None, limit: int = 100, role: str | None = None
    ) -> Iterator[TeamMembersPage]:
        self._call("iter_team_member_pages")
        members = self.teams.get(team_id, {})
        data = [
            {"id": member_id, "role": team_role, "teamId": team_id}
            for member_id, team_role in sorted(members.items())
            if role is None or team_role == role
        ]
        yield TeamMembersPage.model_validate({"data": data, "size": len(data), "limit": limit})

    def _person_by_email(self, email: str) -> OrgPerson | None:
        return next((p for p in self.people.values() if p.email == email), None)

    def share_board(self, board_id: str, emails: list[str], role: str) -> BoardInvitation:
        self._call("share_board")
        if board_id in self.hidden_boards:
            raise MiroAuthError("no access to the board", status=403)
        members = self.board_members.setdefault(board_id, {})
        successful, failed = [], []
        for email in emails:
            person = self._person_by_email(email)
            if person is None:
                failed.append({"email": email, "reason": "INVITATION_FAILED"})
                continue
            members[person.member_id] = role
            successful.append(person.member_id)
        self.writes.append(f"share:{board_id}:{','.join(emails)}")
        self._succeeded("share_board")
        return BoardInvitation.model_validate({"successful": successful, "failed": failed})

    def get_board_member(self, board_id: str, member_id: str) -> BoardMember:
        self._call("get_board_member")
        role = self.board_members.get(board_id, {}).get(member_id)
        if role is None:
            raise MiroNotFound("board member not found", status=404)
        return BoardMember.model_validate({"id": member_id, "role": role})

    def get_team_member(self, team_id: str, member_id: str) -> TeamMember:
        self._call("get_team_member")
        role = self.teams.get(team_id, {}).get(member_id)
        if role is None:
            raise MiroNotFound("team member not found", status=404)
        return TeamMember.model_validate({"id": member_id, "role": role, "teamId": team_id})

    def set_team_role(self, team_id: str, member_id: str, role: str) -> TeamMember:
        self._call("set_team_role")
        if member_id not in self.teams.get(team_id, {}):
            raise MiroNotFound("team member not found", status=404)
        self.teams[team_id][member_id] = role
        self.writes.append(f"team-role:{team_id}:{member_id}={role}")
        self._succeeded("set_team_role")
        return TeamMember.model_validate({"id": member_id, "role": role, "teamId": team_id})

    def add_team_member(self, team_id: str, email: str, role: str) -> TeamMember:
        self._call("add_team_member")
        person = self._person_by_email(email)
        if person is None:
            raise MiroNotFound("no such member", status=404)
        self.teams.setdefault(team_id, {})[person.member_id] = role
        self.writes.append(f"team-add:{team_id}:{person.member_id}={role}")
        self._succeeded("add_team_member")
        return TeamMember.model_validate({"id": person.member_id, "role": role, "teamId": team_id})

    def reset_sessions(self, email: str) -> None:
        self._call("reset_sessions")
        if self._person_by_email(email) is None:
            raise MiroNotFound("user not found", status=404)
        self.sessions_reset.append(email)
        self._succeeded("reset_sessions")

    # SCIM
    def find_user_by_username(self, user_name: str) -> ScimUser | None:
        self._call("find_user_by_username")
        person = next((p for p in self.people.values() if p.email == user_name and p.scim_id), None)
        return self._user(person) if person else None

    def get_user(self, user_id: str) -> ScimUser:
        self._call("get_user")
        user = self._user(self._by_scim(user_id))
        self._succeeded("get_user")
        return user

    def set_active(self, user_id: str, active: bool) -> ScimUser:
        self._call("set_active")
        person = self._by_scim(user_id)
        if person.member_id in self.last_admin_ids and not active:
            raise MiroConflict("the last admin cannot be deactivated", status=409)
        if not (self.ignore_deactivation and not active):
            person.active = active
        self.writes.append(f"active={active}:{user_id}")
        self._succeeded("set_active")
        return self._user(person)

    def delete_user(self, user_id: str) -> None:
        self._call("delete_user")
        person = self._by_scim(user_id)
        sole_admin = any(
            members.get(person.member_id) == "admin"
            and not any(role == "admin" for other, role in members.items() if other != person.member_id)
            for members in self.teams.values()
        )
        if person.member_id in self.last_team_admin_ids or sole_admin:
            raise MiroConflict("the last admin of a team cannot be deleted", status=409)
        del self.people[person.member_id]
        self.writes.append(f"delete:{user_id}")
        self._succeeded("delete_user")


class FakeBlast:
    def __init__(self) -> None:
        self.taken: list[datetime] = []
        self.forced: list[datetime] = []

    def _used(self, at: datetime) -> int:
        return sum(1 for t in [*self.taken, *self.forced] if at - timedelta(hours=1) < t <= at)

    def try_take(self, at: datetime, limit: int) -> bool:
        if self._used(at) >= limit:
            return False
        self.taken.append(at)
        return True

    def count_unconditionally(self, at: datetime) -> None:
        self.forced.append(at)


class FakeQueue:
    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []
        self._ids = itertools.count(1)
        self.failures = 0  # the next this many sends fail the way the SQS adapter reports it

    def send(self, message: OutgoingMessage) -> str:
        if self.failures:
            self.failures -= 1
            raise QueueSendError("could not send to the offboarding queue: throttled")
        self.sent.append(message)
        return f"m-{next(self._ids)}"


@dataclass(frozen=True)
class DeadLetter:
    body: str
    request_id: str
    reason: str


class FakeDeadLetters:
    """The dead-letter queue; `failures` makes the next sends fail the way the SQS adapter reports it."""

    def __init__(self) -> None:
        self.sent: list[DeadLetter] = []
        self.failures = 0

    def dead_letter(self, body: str, *, request_id: str, reason: str) -> str:
        if self.failures:
            self.failures -= 1
            raise QueueSendError("could not send to the dead-letter queue: throttled")
        self.sent.append(DeadLetter(body, request_id, reason))
        return f"dl-{len(self.sent)}"


class FakeMetrics:
    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def add_metric(self, name: str, unit: str, value: float) -> None:
        self.values[name] = self.values.get(name, 0) + value


@dataclass
class World:
    miro: FakeMiro
    members: FakeMembers
    actions: FakeActions = field(default_factory=FakeActions)
    blast: FakeBlast = field(default_factory=FakeBlast)
    queue: FakeQueue = field(default_factory=FakeQueue)
    dead_letters: FakeDeadLetters = field(default_factory=FakeDeadLetters)
    metrics: FakeMetrics = field(default_factory=FakeMetrics)
    idempotency: InMemoryIdempotency = field(default_factory=InMemoryIdempotency)
    clock: Clock = field(default_factory=Clock)

    def worker(
        self,
        *,
        protected: Iterable[str] = (),
        allow_admins: bool = False,
        max_per_hour: int = 100,
        dedupe_window_s: int = 3600,
        logger: LogSink | None = None,
        # off by default here: most tests are about the SCIM steps; tests of the sign-out turn it on
        reset_sessions: bool = False,
        default_successor: str | None = None,
    ) -> OffboardingWorker:
        worker = OffboardingWorker(
            actions=self.actions,
            members=self.members,
            directory=self.miro,
            scim=self.miro,
            blast_radius=self.blast,
            queue=self.queue,
            policy=GuardPolicy(
                protected_emails=frozenset(protected),
                allow_admin_offboarding=allow_admins,
                max_actions_per_hour=max_per_hour,
                reset_sessions=reset_sessions,
                default_successor=default_successor,
            ),
            persistence_store=self.idempotency,
            idempotency_config=IdempotencyConfig(
                event_key_jmespath="requestId", expires_after_seconds=dedupe_window_s
            ),
            metrics=self.metrics,
            clock=self.clock,
            dead_letters=self.dead_letters,
            logger=logger,
        )
        worker.register_lambda_context(FakeLambdaContext())  # type: ignore[arg-type]
        return worker


def standard_org() -> list[OrgPerson]:
    return [
        OrgPerson("m1", "ann@example.com", scim_id="s-ann", boards=3),
        OrgPerson("m2", "bob@example.com", scim_id="s-bob"),
        OrgPerson("m3", "guest@partner.com", role="organization_team_guest_user", license="free"),
        OrgPerson("m4", "ext@partner.com", role="organization_external_user", license="free"),
        OrgPerson("m5", "boss@example.com", role="organization_internal_admin", scim_id="s-boss"),
        OrgPerson("m6", "ceo@example.com", scim_id="s-ceo"),
        OrgPerson("m7", "gone@example.com", scim_id="s-gone", active=False),
    ]


def make_world(*, table: bool = True) -> World:
    people = standard_org()
    records = [FakeMemberRecord(p.member_id, p.email, p.scim_id, p.boards) for p in people] if table else []
    return World(miro=FakeMiro(people), members=FakeMembers(records))


def offboarding_settings(**env: str) -> OffboardingSettings:
    """The function's settings from an environment like the template's, with `env` on top."""
    base = {
        "MIRO_API_URL": "http://127.0.0.1:1",
        "MIRO_SCIM_URL": "http://127.0.0.1:1/scim",
        "MIRO_ORG_ID": "org",
        "MIRO_TOKEN_SECRET": "token",
        "MIRO_SCIM_TOKEN_SECRET": "scim-token",
        "MEMBERS_TABLE": "members",
        "ACTIONS_TABLE": "actions",
        "STATE_TABLE": "state",
        "IDEMPOTENCY_TABLE": "idempotency",
        "OFFBOARDING_QUEUE_URL": "http://127.0.0.1:1/queue",
    }
    return OffboardingSettings.from_env({**base, **env})


def body(action: str = "suspend", **fields: Any) -> str:
    """An offboarding message (JSON) from it-ops, for ann@example.com unless an email or memberId is given."""
    message: dict[str, Any] = {
        "action": action,
        "requestedBy": "it-ops@example.com",
        "reason": "left the company",
    }
    if "email" not in fields and "memberId" not in fields:
        message["email"] = "ann@example.com"
    message.update(fields)
    return json.dumps(message)
