"""What one request will do: who it is about, the guards, then what Miro says now (the SCIM user, the
successor, the boards to hand over and the teams the leaver is the last admin of). Only reads Miro;
whatever rules the request out raises RefusalError before the first write."""

from __future__ import annotations

import dataclasses
from typing import Any

from miro_sync.miro.errors import MiroError
from miro_sync.miro.models import OrgMember, ScimUser
from miro_sync.offboarding.errors import RefusalError, RetryableError
from miro_sync.offboarding.guards import MemberResolver, check_guards, check_successor
from miro_sync.offboarding.handover import Handover, TeamInfo, find_handover
from miro_sync.offboarding.messages import OffboardingRequest
from miro_sync.offboarding.model import GuardPolicy, ResolvedMember, Trail
from miro_sync.offboarding.ordering import RequestOrder
from miro_sync.offboarding.ports import OrgDirectory, ScimUsers
from miro_sync.offboarding.recording import Recorder
from miro_sync.offboarding.steps import MiroCalls, Plan, StepOptions, planned_steps


class Planner:
    def __init__(
        self,
        *,
        policy: GuardPolicy,
        resolver: MemberResolver,
        order: RequestOrder,
        directory: OrgDirectory,
        scim: ScimUsers,
        calls: MiroCalls,
        recorder: Recorder,
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._order = order
        self._directory = directory
        self._scim = scim
        self._calls = calls
        self._recorder = recorder

    def successor_email(self, request: OffboardingRequest) -> str | None:
        if request.action == "reactivate":
            return None
        return request.successor or self._policy.default_successor

    def resolve(self, request: OffboardingRequest) -> ResolvedMember:
        """The member the request names (boards counted only when no successor lists them anyway)."""
        return self._resolver.resolve(request, count_boards=self.successor_email(request) is None)

    def plan(self, trail: Trail, member: ResolvedMember) -> Plan:
        """Guards first, then what Miro says now: the SCIM user, the successor, the boards to hand over
        and the teams the leaver is the last admin of. Only reads; raises RefusalError."""
        request = trail.request
        try:
            check_guards(self._policy, member, request)
        except RefusalError:
            if self._policy.configuration_error is not None and request.is_destructive:
                self._recorder.count("OffboardingConfigurationError", 1)
            raise
        self._order.check_not_overtaken(trail, member)
        successor: OrgMember | None = None
        # a request keeps the successor it started with (DefaultSuccessor may change between attempts)
        recorded = trail.record.successor if trail.record is not None else None
        successor_email = recorded or self.successor_email(request)
        if successor_email is not None:
            successor = check_successor(
                self._resolver.member_by_email(successor_email), successor_email, member
            )
        user = self._scim_user(trail, member)
        member = dataclasses.replace(member, scim_id=user.id)
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


def plan_fields(plan: Plan) -> dict[str, Any]:
    """What the record keeps of a plan: the member as resolved, and the successor."""
    fields = plan.leaver.record_fields()
    if plan.successor is not None:
        fields["successor"] = plan.successor.email
    return fields
