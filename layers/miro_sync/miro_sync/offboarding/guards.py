"""Who a request is about, and whether it may be carried out: resolution from the Members table and
Miro, then guards that fail closed (what is not positively allowed is refused), all before the first
write. A successor is checked the same way: an active internal member with a full licence, never the
leaver."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from miro_sync.miro.errors import MiroError, MiroNotFound
from miro_sync.miro.models import OrgMember
from miro_sync.offboarding.errors import RefusalError, RetryableError
from miro_sync.offboarding.messages import OffboardingRequest
from miro_sync.offboarding.model import (
    PREFETCH_MAX_AGE,
    REFUSED_ROLES,
    ROLE_ADMIN,
    ROLE_USER,
    GuardPolicy,
    ResolvedMember,
    aware,
)
from miro_sync.offboarding.ports import KnownMember, LogSink, MembersStore, OrgDirectory

FULL_LICENSE = "full"


class BatchLookups:
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


class MemberResolver:
    """Members table first (ids, SCIM id, boards owned, teams), then Miro for what the table lacks. The
    member's role and state are always confirmed with Miro, since the table can be a sync old and a guard
    decided on a stale role could act on an admin or a guest."""

    def __init__(
        self,
        *,
        members: MembersStore,
        directory: OrgDirectory,
        prefetch: BatchLookups,
        clock: Callable[[], datetime],
        logger: LogSink | None = None,
    ) -> None:
        self._members = members
        self._directory = directory
        self._prefetch = prefetch
        self._clock = clock
        self._log: LogSink = logger if logger is not None else logging.getLogger(__name__)

    def resolve(self, request: OffboardingRequest, *, count_boards: bool = True) -> ResolvedMember:
        """`count_boards`: count a delete's boards with Miro when the table has no count (not needed when
        a successor's hand-over lists them anyway)."""
        known: KnownMember | None
        if request.email is not None:
            known = self._members.find_by_email(request.email)
        else:
            if request.member_id is None:  # the message model requires one of the two
                raise RefusalError("the request names no member")
            known = self._members.get(request.member_id)
        live = self._live_member(request, known)
        if live is None:
            raise RefusalError(
                f"unknown member {request.member_key.removeprefix('id:')}: not in the Miro organization"
            )
        same = known is not None and known.member_id == live.id
        scim_id = known.scim_id if known is not None and same else None
        boards_owned = known.boards_owned if known is not None and same else None
        if boards_owned is None and request.action == "delete" and count_boards:
            boards_owned = self._count_boards(live.id)
        admin_teams: tuple[tuple[str, str], ...] = ()
        if known is not None and same:
            admin_teams = tuple(
                (team.id, team.name) for team in known.team_memberships if team.role == "admin"
            )
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
            admin_teams=admin_teams,
        )

    def member_by_email(self, email: str) -> OrgMember | None:
        """The one Miro member with this email (None if none); refuses an ambiguous answer."""
        try:
            prefetched = self._prefetch.members_for(email, self._clock())
            found = prefetched if prefetched is not None else self._directory.find_members_by_email([email])
        except MiroNotFound:
            return None
        except MiroError as error:
            raise RetryableError(f"looking up {email} failed: {error}") from error
        matches = [m for m in found if m.email.lower() == email]
        if len(matches) > 1:
            raise RefusalError(f"{email} matches {len(matches)} Miro members; refusing to guess")
        return matches[0] if matches else None

    def _live_member(self, request: OffboardingRequest, known: KnownMember | None) -> OrgMember | None:
        if request.email is not None:
            # by email even when the table knows the id: the batch's lookup answers it with no call
            return self.member_by_email(request.email)
        member_id = known.member_id if known is not None else request.member_id
        if member_id is None:
            return None
        try:
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


def check_guards(policy: GuardPolicy, member: ResolvedMember, request: OffboardingRequest) -> None:
    """Every guard fails closed: what is not positively allowed is refused, before any write."""
    if policy.configuration_error is not None and request.is_destructive:
        raise RefusalError(
            f"configuration error, every suspend and delete is refused until it is fixed: "
            f"{policy.configuration_error}"
        )
    if member.role in REFUSED_ROLES:
        raise RefusalError(f"{member.email} is {member.role}: {REFUSED_ROLES[member.role]}")
    if member.role not in {ROLE_ADMIN, ROLE_USER}:
        raise RefusalError(
            f"{member.email} has role {member.role!r}; only internal users and admins are offboarded"
        )
    if member.email in policy.protected_emails:
        raise RefusalError(f"{member.email} is a protected account (PROTECTED_EMAILS)")
    if not policy.allow_admin_offboarding:
        if member.role == ROLE_ADMIN:
            raise RefusalError(f"{member.email} is a Company Admin and ALLOW_ADMIN_OFFBOARDING is false")
        if member.admin_roles:
            raise RefusalError(
                f"{member.email} holds Miro admin roles ({', '.join(member.admin_roles)}) and "
                "ALLOW_ADMIN_OFFBOARDING is false"
            )
    check_still_inactive(member, request)


def check_still_inactive(member: ResolvedMember, request: OffboardingRequest) -> None:
    """The precondition of a request made from an inactivity report, checked against Miro's live
    member record just before acting: activity or a new licence since the report's cutoff refuses it."""
    since = request.inactive_since
    if since is None:
        return
    last_activity, licensed = aware(member.last_activity_at), aware(member.license_assigned_at)
    if last_activity is not None and last_activity > since:
        raise RefusalError(
            f"{member.email} is active again: last activity {last_activity.isoformat()} is "
            f"after inactiveSince {since.isoformat()}"
        )
    if licensed is not None and licensed > since:
        raise RefusalError(
            f"{member.email} was licensed {licensed.isoformat()}, after inactiveSince "
            f"{since.isoformat()}: not inactive for the whole window"
        )


def check_successor(successor: OrgMember | None, email: str, leaver: ResolvedMember) -> OrgMember:
    """The successor takes over boards and team admin roles: an active internal member of the
    organization with a full licence, and not the leaver (by email or by member id)."""
    if successor is None:
        raise RefusalError(f"successor {email} is not a member of the Miro organization")
    if successor.id == leaver.member_id or email == leaver.email:
        raise RefusalError(f"successor {email} is the leaver: boards cannot be handed over to their owner")
    if successor.role not in {ROLE_ADMIN, ROLE_USER}:
        raise RefusalError(
            f"successor {email} is {successor.role}: only an internal member can take over boards"
        )
    if not successor.active:
        raise RefusalError(f"successor {email} is deactivated in Miro")
    if successor.license != FULL_LICENSE:
        raise RefusalError(
            f"successor {email} has a {successor.license!r} licence; taking over boards needs a full one"
        )
    return successor
