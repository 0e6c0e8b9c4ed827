"""An offboarding action as an ordered list of steps (DESIGN.md "Contracts").

delete = hand over boards, promote successor, deactivate, read back, reset sessions, delete. Each step
is recorded in the actions table with Miro's answer when it finishes; a retry resumes at the first
step not recorded, and every step reads Miro's state before it writes, so none has two effects.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, TypeVar

from miro_sync.miro.errors import MiroAuthError, MiroBadRequest, MiroConflict, MiroError, MiroNotFound
from miro_sync.miro.models import OrgMember, ScimUser
from miro_sync.offboarding.errors import PartialError, RefusalError, RetryableError
from miro_sync.offboarding.handover import Handover
from miro_sync.offboarding.model import ResolvedMember, Trail
from miro_sync.offboarding.ports import ScimUsers, Workspace
from miro_sync.store.actions import Attempt, StepRecord, utc_now_iso

T = TypeVar("T")

HAND_OVER_BOARDS: Final = "hand_over_boards"
PROMOTE_SUCCESSOR: Final = "promote_successor"
DEACTIVATE: Final = "deactivate"
REACTIVATE: Final = "reactivate"
READ_BACK: Final = "read_back"
RESET_SESSIONS: Final = "reset_sessions"
DELETE: Final = "delete"

_ORDER: Final[dict[str, tuple[str, ...]]] = {
    "suspend": (HAND_OVER_BOARDS, DEACTIVATE, READ_BACK, RESET_SESSIONS),
    "delete": (HAND_OVER_BOARDS, PROMOTE_SUCCESSOR, DEACTIVATE, READ_BACK, RESET_SESSIONS, DELETE),
    "reactivate": (REACTIVATE, READ_BACK),
}

DESCRIPTIONS: Final[dict[str, str]] = {
    HAND_OVER_BOARDS: "make the successor co-owner of every board the leaver owns",
    PROMOTE_SUCCESSOR: "make the successor admin of the teams the leaver is the last admin of",
    DEACTIVATE: "SCIM PATCH active=false",
    REACTIVATE: "SCIM PATCH active=true",
    READ_BACK: "SCIM GET: confirm the new state",
    RESET_SESSIONS: "sign the user out everywhere (POST /v2/sessions/reset_all)",
    DELETE: "SCIM DELETE",
}


@dataclass(frozen=True)
class StepOptions:
    """What decides which steps an action has, besides the action itself."""

    successor: str | None = None
    reset_sessions: bool = True


def planned_steps(action: str, options: StepOptions) -> tuple[str, ...]:
    """The steps of `action`, in order. Without a successor there is nothing to hand over or promote."""
    steps = _ORDER[action]
    if options.successor is None:
        steps = tuple(step for step in steps if step not in {HAND_OVER_BOARDS, PROMOTE_SUCCESSOR})
    if not options.reset_sessions:
        steps = tuple(step for step in steps if step != RESET_SESSIONS)
    return steps


def describe_steps(steps: tuple[str, ...]) -> str:
    """e.g. "1. hand_over_boards, 2. deactivate, ...", for plans and dry runs."""
    return ", ".join(f"{number}. {step}" for number, step in enumerate(steps, start=1))


# Board roles that already give the successor what the hand-over gives
_TAKES_OVER: Final = frozenset({"coowner", "owner"})
SUCCESSOR_BOARD_ROLE: Final = "coowner"
_SHARE_CALL = re.compile(r"POST /v2/boards/([^/\s]+)/members")
# How many boards are shared between two writes of the record (a retry re-checks at most this many)
HAND_OVER_CHUNK: Final = 20


def may_have_reached_miro(status: int | None) -> bool:
    """No answer (timeout, reset), success or a server error: the write may have taken effect. Any
    other 4xx is Miro refusing it."""
    return status is None or 200 <= status < 300 or status >= 500


def _calls_that_may_have_reached_miro(trail: Trail) -> list[str]:
    """The calls earlier attempts of this request made (or were making when they ended: an interrupted
    attempt names every call that was in flight, separated by "; ")."""
    texts = [trail.interrupted or ""] + [
        a.operation for a in trail.all_attempts() if may_have_reached_miro(a.status)
    ]
    return [call.strip() for text in texts for call in text.split(";") if call.strip()]


def _reached(trail: Trail, operation: str) -> bool:
    return operation in _calls_that_may_have_reached_miro(trail)


@dataclass(frozen=True)
class Plan:
    """What one request will do, decided after the guards from what Miro says now."""

    action: str
    steps: tuple[str, ...]
    user: ScimUser
    leaver: ResolvedMember
    successor: OrgMember | None = None
    handover: Handover | None = None

    def describe(self) -> str:
        state = "active" if self.user.active is not False else "inactive"
        leaver = self.leaver
        text = (
            f"would {self.action} {leaver.email} (member {leaver.member_id}, SCIM {self.user.id}, "
            f"{leaver.role}, {leaver.license} licence, currently {state}"
        )
        if leaver.boards_owned is not None:
            text += f", owns {leaver.boards_owned} boards"
        text += f"); steps: {describe_steps(self.steps)}"
        if self.successor is not None:
            text += f"; successor {self.successor.email}"
        if self.handover is not None and (self.successor is not None or self.handover.sole_admin_teams):
            text += f"; {self.handover.describe()}"
        return text


@dataclass
class StepsDone:
    """What the steps of one request came to (over all its attempts)."""

    effects: int = 0
    problems: list[str] = field(default_factory=list)  # steps Miro refused in part: the outcome is partial
    warnings: list[str] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)


class MiroCalls:
    """One call to Miro on behalf of a request. Writes and every failure join the request's attempts
    with Miro's status code (stored by the next write of the record). Permanent errors become
    refusals, transient ones RetryableError."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock

    def call(
        self,
        trail: Trail,
        operation: str,
        call: Callable[[], T],
        *,
        write: bool = False,
        gone_ok: bool = False,
        forbidden_is_refusal: bool = False,
    ) -> T | None:
        try:
            result = call()
        except MiroNotFound as gone:
            self.attempt(trail, operation, gone.status, str(gone))
            if gone_ok:
                return None
            raise RefusalError(f"{operation}: {gone}") from gone
        except (MiroConflict, MiroBadRequest) as permanent:
            self.attempt(trail, operation, permanent.status, str(permanent))
            raise RefusalError(f"{operation}: {permanent}") from permanent
        except MiroAuthError as denied:
            self.attempt(trail, operation, denied.status, str(denied))
            if forbidden_is_refusal and denied.status == 403:
                raise RefusalError(f"{operation}: {denied}") from denied
            raise RetryableError(f"{operation}: {denied}") from denied
        except MiroError as transient:
            self.attempt(trail, operation, transient.status, str(transient))
            raise RetryableError(f"{operation}: {transient}") from transient
        if write:
            self.attempt(trail, operation, 204 if operation.startswith("DELETE") else 200, None)
        return result

    def attempt(self, trail: Trail, operation: str, status: int | None, detail: str | None) -> None:
        # Kept until the next write of the record, which every path out of a Miro call makes: one
        # write per step instead of one per call. What an invocation that dies before it would lose is
        # covered by `in_flight` (see ActionRecord).
        trail.attempts.append(
            Attempt(at=utc_now_iso(self._clock()), operation=operation, status=status, detail=detail)
        )


class StepRunner:
    """Carries out a plan's steps in order, resuming after the last one the record lists. Before a
    step writes to Miro, one write of the record stores the steps finished so far and names the calls
    about to be made (`in_flight`); every step reads Miro's state first, so a retry after a crash makes
    no second effect. The one exception is a crash inside the session reset's own call: Miro keeps no
    state to read back, so that call is made again (signing out someone signed out changes nothing)."""

    def __init__(
        self,
        *,
        scim: ScimUsers,
        workspace: Workspace,
        calls: MiroCalls,
        save: Callable[[Trail, dict[str, Any]], None],
        clock: Callable[[], datetime],
    ) -> None:
        self._scim = scim
        self._workspace = workspace
        self._calls = calls
        self._save = save
        self._clock = clock

    # ------------------------------------------------------------------ planning the writes

    def first_calls(self, plan: Plan, trail: Trail) -> str:
        """The calls the first writing step makes: the record's first write names them."""
        handed_over = set(trail.record.handed_over) if trail.record is not None else set()
        done = {step.kind for step in trail.record.steps} if trail.record is not None else set()
        for kind in plan.steps:
            if kind in done:
                continue
            calls = self._calls_of(kind, plan, handed_over=handed_over)
            if calls:
                return calls
        return ""

    def _calls_of(self, kind: str, plan: Plan, handed_over: tuple[str, ...] | set[str]) -> str:
        user = plan.user
        if kind == HAND_OVER_BOARDS and plan.handover is not None and plan.successor is not None:
            todo = [board.id for board in plan.handover.boards if board.id not in handed_over]
            return "; ".join(f"POST /v2/boards/{board}/members" for board in todo[:HAND_OVER_CHUNK])
        if kind == PROMOTE_SUCCESSOR and plan.handover is not None and plan.successor is not None:
            successor_id = plan.successor.id
            return "; ".join(_promote_call(team.id, successor_id) for team in plan.handover.sole_admin_teams)
        if kind == DEACTIVATE and user.active is not False:
            return f"PATCH /Users/{user.id} active=false"
        if kind == REACTIVATE and user.active is not True:
            return f"PATCH /Users/{user.id} active=true"
        if kind == RESET_SESSIONS:
            return "POST /v2/sessions/reset_all"
        if kind == DELETE:
            return f"DELETE /Users/{user.id}"
        return ""

    # ------------------------------------------------------------------ running

    def run(self, trail: Trail, plan: Plan) -> StepsDone:
        record = trail.record
        finished = list(record.steps) if record is not None else []
        done_kinds = {step.kind for step in finished}
        outcome = StepsDone()
        for step in finished:
            outcome.effects += step.count or 0
            if step.status != "done":
                outcome.problems.append(f"{step.kind}: {step.answer}")
        run = _Run(trail=trail, plan=plan, finished=finished, outcome=outcome)
        try:
            for kind in plan.steps:
                if kind not in done_kinds:
                    getattr(self, f"_step_{kind}")(run)
        finally:
            # stored by whichever write comes next: the outcome, a failure or a refusal
            trail.fields["steps"] = [step.model_dump(exclude_none=True) for step in run.finished]
        return outcome

    def _before(self, run: _Run, calls: str) -> None:
        """The write before a step's calls to Miro (skipped when the record already says just that)."""
        record, trail = run.trail.record, run.trail
        unsaved = record is None or len(record.steps) != len(run.finished) or trail.fields or trail.attempts
        if not unsaved and record is not None and record.in_flight == calls:
            return
        fields: dict[str, Any] = {
            "steps": [step.model_dump(exclude_none=True) for step in run.finished],
            "in_flight": calls,
        }
        self._save(run.trail, fields)

    def _finished(self, run: _Run, kind: str, status: str, answer: str, count: int | None = None) -> None:
        step = StepRecord(
            kind=kind,
            status=status,  # type: ignore[arg-type]
            at=utc_now_iso(self._clock()),
            answer=answer[:1000],
            count=count,
        )
        run.finished.append(step)
        run.outcome.summaries.append(f"{kind}: {answer}")
        if count:
            run.outcome.effects += count
        if status != "done":
            run.outcome.problems.append(f"{kind}: {answer}")

    # ------------------------------------------------------------------ the steps

    def _step_hand_over_boards(self, run: _Run) -> None:
        plan, trail = run.plan, run.trail
        if plan.successor is None or plan.handover is None:
            return
        successor = plan.successor
        boards = [board.id for board in plan.handover.boards]
        handed: set[str] = set(trail.record.handed_over) if trail.record is not None else set()
        handed |= self._confirmed_by_miro(run, boards, handed)
        shared, failures = 0, []
        todo = [board for board in boards if board not in handed]
        for start in range(0, len(todo), HAND_OVER_CHUNK):
            chunk = todo[start : start + HAND_OVER_CHUNK]
            trail.fields["handed_over"] = sorted(handed)
            self._before(run, "; ".join(f"POST /v2/boards/{board}/members" for board in chunk))
            for board in chunk:
                operation = f"POST /v2/boards/{board}/members {SUCCESSOR_BOARD_ROLE}={successor.email}"
                try:
                    answer = self._calls.call(
                        trail,
                        operation,
                        lambda board=board: self._workspace.share_board(  # type: ignore[misc]
                            board, [successor.email], SUCCESSOR_BOARD_ROLE
                        ),
                        write=True,
                        forbidden_is_refusal=True,
                    )
                except RefusalError as refused:
                    failures.append(f"{board} ({refused.reason})")
                    continue
                if answer is not None and answer.failed:
                    failures.append(f"{board} ({', '.join(f.reason or 'failed' for f in answer.failed)})")
                    continue
                handed.add(board)
                shared += 1
                trail.fields["handed_over"] = sorted(handed)
        # every board in `handed` was shared by this request (this attempt or an earlier one)
        mine = len(handed & set(boards))
        text = f"{mine} of {len(boards)} board(s) co-owned by {successor.email}"
        if shared != mine:
            text += f" ({mine - shared} by an earlier attempt)"
        if failures:
            text += f"; not handed over: {', '.join(failures[:5])}"
            text += f" and {len(failures) - 5} more" if len(failures) > 5 else ""
        unseen = plan.handover.boards_unseen
        if unseen:
            run.outcome.warnings.append(
                f"{unseen} board(s) owned by {plan.leaver.email} are not visible to the token and were "
                "not handed over (the token's user needs the Content Admin role)"
            )
        trail.fields["handed_over"] = sorted(handed)
        self._finished(run, HAND_OVER_BOARDS, "partly" if failures else "done", text, mine)

    def _confirmed_by_miro(self, run: _Run, boards: list[str], handed: set[str]) -> set[str]:
        """Boards of shares an earlier attempt made without recording them (it ended inside the call, or
        the answer was lost: a timeout or a 5xx after Miro acted): Miro says whether each landed."""
        if run.plan.successor is None:
            return set()
        calls = _calls_that_may_have_reached_miro(run.trail)
        named = {board for call in calls for board in _SHARE_CALL.findall(call)}
        interrupted = named & set(boards) - handed
        successor_id = run.plan.successor.id
        confirmed = set()
        for board in sorted(interrupted):
            member = self._calls.call(
                run.trail,
                f"GET /v2/boards/{board}/members/{successor_id}",
                lambda board=board: self._workspace.get_board_member(board, successor_id),  # type: ignore[misc]
                gone_ok=True,
            )
            if member is not None and member.role in _TAKES_OVER:
                confirmed.add(board)
        return confirmed

    def _step_promote_successor(self, run: _Run) -> None:
        plan, trail = run.plan, run.trail
        if plan.successor is None or plan.handover is None or not plan.handover.sole_admin_teams:
            return
        successor = plan.successor
        promoted: list[str] = []
        already: list[str] = []
        for team in plan.handover.sole_admin_teams:
            try:
                current = self._calls.call(
                    trail,
                    f"GET /v2/orgs/teams/{team.id}/members/{successor.id}",
                    lambda team=team: self._workspace.get_team_member(team.id, successor.id),  # type: ignore[misc]
                    gone_ok=True,
                )
                if current is not None and current.role == "admin":
                    already.append(team.name)
                    continue
                self._before(run, _promote_call(team.id, successor.id))
                if current is None:
                    self._calls.call(
                        trail,
                        f"POST /v2/orgs/teams/{team.id}/members admin={successor.email}",
                        lambda team=team: self._workspace.add_team_member(  # type: ignore[misc]
                            team.id, successor.email, "admin"
                        ),
                        write=True,
                    )
                else:
                    self._calls.call(
                        trail,
                        f"PATCH /v2/orgs/teams/{team.id}/members/{successor.id} role=admin",
                        lambda team=team: self._workspace.set_team_role(  # type: ignore[misc]
                            team.id, successor.id, "admin"
                        ),
                        write=True,
                    )
            except RefusalError as refused:
                reason = (
                    f"making {successor.email} admin of team {team.name} ({team.id}) failed: {refused.reason}"
                )
                if promoted or self._changed_anything(run):
                    self._finished(run, PROMOTE_SUCCESSOR, "partly", reason, len(promoted))
                    raise PartialError(
                        f"{'; '.join(run.outcome.summaries)}; then {reason}; not deleted", "active", True
                    ) from refused
                raise RefusalError(f"{reason}; nothing was changed") from refused
            promoted.append(team.name)
        text = f"{successor.email} is admin of " + ", ".join(promoted + already)
        if already:
            text += f" ({len(already)} already)"
        self._finished(run, PROMOTE_SUCCESSOR, "done", text, len(promoted))

    @staticmethod
    def _changed_anything(run: _Run) -> bool:
        """Whether this request has changed anything in Miro so far, over all its attempts."""
        trail = run.trail
        if run.outcome.effects or trail.fields.get("handed_over"):
            return True
        if trail.record is not None and trail.record.handed_over:
            return True
        writes = ("POST ", "PATCH ", "DELETE ")
        return any(call.startswith(writes) for call in _calls_that_may_have_reached_miro(trail))

    def _step_deactivate(self, run: _Run) -> None:
        self._set_active(run, DEACTIVATE, active=False)

    def _step_reactivate(self, run: _Run) -> None:
        self._set_active(run, REACTIVATE, active=True)

    def _set_active(self, run: _Run, kind: str, *, active: bool) -> None:
        user = run.plan.user
        wanted = str(active).lower()
        operation = f"PATCH /Users/{user.id} active={wanted}"
        if user.active is active:
            if _reached(run.trail, operation):
                # an earlier attempt's PATCH (interrupted, or answered with a timeout or a 5xx) took
                # effect, as Miro reads now
                answer = f"SCIM user {user.id} reads active={wanted} after the earlier attempt's PATCH"
                self._finished(run, kind, "done", answer, 1)
            else:
                self._finished(run, kind, "done", f"SCIM user {user.id} was already active={wanted}", 0)
            return
        self._before(run, operation)
        self._calls.call(run.trail, operation, lambda: self._scim.set_active(user.id, active), write=True)
        self._finished(run, kind, "done", f"SCIM user {user.id} set active={wanted}", 1)

    def _step_read_back(self, run: _Run) -> None:
        # Some IdP-driven setups have been seen to downgrade a licence instead of deactivating.
        user = run.plan.user
        wanted = run.plan.action == "reactivate"
        after = self._calls.call(
            run.trail, f"GET /Users/{user.id}", lambda: self._scim.get_user(user.id), gone_ok=True
        )
        if after is None or after.active is not wanted:
            shown = "no user" if after is None else f"active={after.active}"
            wrote = f"PATCH /Users/{user.id} active={str(wanted).lower()}"
            raise RetryableError(f"{wrote} returned but the read-back shows {shown}")
        self._finished(run, READ_BACK, "done", f"SCIM user {user.id} reads active={str(wanted).lower()}")

    def _step_reset_sessions(self, run: _Run) -> None:
        email = run.plan.leaver.email
        operation = f"POST /v2/sessions/reset_all?email={email}"
        self._before(run, "POST /v2/sessions/reset_all")
        try:
            self._calls.call(
                run.trail,
                operation,
                lambda: self._workspace.reset_sessions(email),
                write=True,
                forbidden_is_refusal=True,
            )
        except RefusalError as refused:
            self._finished(run, RESET_SESSIONS, "skipped", f"Miro refused the sign-out: {refused.reason}")
            return
        self._finished(run, RESET_SESSIONS, "done", f"{email} signed out everywhere", 1)

    def _step_delete(self, run: _Run) -> None:
        user = run.plan.user
        operation = f"DELETE /Users/{user.id}"
        self._before(run, operation)
        try:
            # gone_ok: a 404 right after the confirmed suspend means the user was deleted meanwhile
            # (e.g. a retry after a crash between the call and its record): the goal state holds.
            self._calls.call(
                run.trail, operation, lambda: self._scim.delete_user(user.id), write=True, gone_ok=True
            )
        except RefusalError as refused:
            if not run.outcome.effects and not _deactivated_earlier(run.trail, user.id):
                # suspended before this request, by someone else: this request changed nothing
                raise RefusalError(
                    f"already suspended before this request; Miro refused the delete: {refused.reason}"
                ) from refused
            # this request's deactivation is confirmed by its read-back: half done
            raise PartialError(
                f"suspended, but Miro refused the delete: {refused.reason}", "suspended", False
            ) from refused
        self._finished(run, DELETE, "done", f"SCIM user {user.id} deleted", 1)


@dataclass
class _Run:
    trail: Trail
    plan: Plan
    finished: list[StepRecord]
    outcome: StepsDone


def _deactivated_earlier(trail: Trail, scim_id: str) -> bool:
    """Whether an earlier attempt of this request deactivated the user (then failed before the rest)."""
    return _reached(trail, f"PATCH /Users/{scim_id} active=false")


def _promote_call(team_id: str, member_id: str) -> str:
    return f"PATCH /v2/orgs/teams/{team_id}/members/{member_id} role=admin"
