"""The in-memory org: members, SCIM users, teams, boards, items, subscriptions and the audit log.

All reads and writes go through one re-entrant lock; handlers hold it only while touching state."""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from typing import Any

from miro_emulator.audit import EVENT_TYPE_INDEX, NO_INDEX, AuditLog
from miro_emulator.config import Clock, EmulatorConfig, iso_s

ADMIN = "organization_internal_admin"
INTERNAL_USER = "organization_internal_user"
EXTERNAL_USER = "organization_external_user"
TEAM_GUEST = "organization_team_guest_user"
ROLES = (ADMIN, INTERNAL_USER, EXTERNAL_USER, TEAM_GUEST, "unknown")
LICENSES = (
    "advanced",
    "standard",
    "basic",
    "full",
    "occasional",
    "free",
    "free_restricted",
    "full_trial",
    "unknown",
)
SCIM_VISIBLE_ROLES = frozenset({ADMIN, INTERNAL_USER})
TEAM_ROLES = ("member", "admin")  # the roles a team membership can be given (TeamMemberChanges)
BOARD_ROLES = ("viewer", "commenter", "editor", "coowner", "owner")
# Board sharing cannot hand over ownership: "Inviting users with the role `owner` has the same effect as
# the role `coowner`" (BoardMembersInvite), and the emulator reads BoardMemberChanges the same way.
BOARD_OWNER = "owner"
BOARD_COOWNER = "coowner"


@dataclass(slots=True)
class Member:
    index: int
    id: str
    email: str
    given_name: str
    family_name: str
    role: str
    license: str
    active: bool
    last_activity_ms: int | None
    license_assigned_ms: int
    created_ms: int
    scim_id: str | None
    admin_roles: tuple[str, ...] = ()
    deleted: bool = False
    primary_team: int = NO_INDEX
    sessions_reset_ms: int | None = None  # last POST /v2/sessions/reset_all for this member

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "active": self.active,
            "email": self.email,
            "license": self.license,
            "licenseAssignedAt": iso_s(self.license_assigned_ms),
            "role": self.role,
            "type": "organization-member",
        }
        if self.last_activity_ms is not None:
            body["lastActivityAt"] = iso_s(self.last_activity_ms)
        if self.admin_roles:
            body["adminRoles"] = [{"type": "prebuilt", "name": name} for name in self.admin_roles]
        return body


@dataclass(slots=True)
class TeamMembership:
    member_index: int
    role: str  # member | admin | non_team
    created_ms: int
    created_by: str
    # Set by a role change; until then the membership reads as modified when it was created.
    modified_ms: int | None = None
    modified_by: str | None = None


@dataclass(slots=True)
class Team:
    index: int
    id: str
    name: str
    created_ms: int
    # member index -> membership; dict keeps insertion (= join) order, members sorted by id on read
    memberships: dict[int, TeamMembership] = field(default_factory=dict)


@dataclass(slots=True)
class Board:
    index: int
    id: str
    name: str
    description: str
    team_index: int
    owner_index: int
    created_by_index: int
    created_ms: int
    modified_ms: int
    deleted: bool = False
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    # member index -> board role (BOARD_ROLES less "owner"); the owner is `owner_index`, never in here.
    members: dict[int, str] = field(default_factory=dict)

    def __setattr__(self, name: str, value: Any) -> None:
        # Any change to what GET /v2/boards filters or sorts on invalidates its cached order.
        object.__setattr__(self, name, value)
        if name in _BOARD_LISTING_FIELDS:
            _board_listing_generation[0] += 1


_BOARD_LISTING_FIELDS = frozenset({"team_index", "owner_index", "modified_ms", "deleted"})
# Bumped by every Board change that can move it in the listing; one counter for every OrgState in the
# process (a change elsewhere only costs a re-sort).
_board_listing_generation = [0]


def board_listing_generation() -> int:
    return _board_listing_generation[0]


@dataclass(slots=True)
class Subscription:
    id: str
    board_id: str
    callback_url: str
    status: str
    created_ms: int
    modified_ms: int


class StateError(Exception):
    """A Miro rule refused the change; `kind` maps to the HTTP status the API layer returns."""

    def __init__(self, kind: str, message: str, scim_type: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind  # not_found | conflict | invalid | mutability | uniqueness
        self.message = message
        self.scim_type = scim_type


class OrgState:
    def __init__(self, config: EmulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        self.org_id = config.org_id
        self.org_name = config.org_name
        self.all_members: list[Member] = []
        self.member_ids: list[str] = []  # sorted ids of members that are not deleted
        self.members_by_id: dict[str, Member] = {}
        self.members_by_email: dict[str, Member] = {}
        self.members_by_scim_id: dict[str, Member] = {}
        self.scim_order: list[int] = []  # member indexes of SCIM-visible members, in SCIM id order
        self.teams: list[Team] = []
        self.teams_by_id: dict[str, Team] = {}
        self.boards: list[Board] = []
        self.boards_by_id: dict[str, Board] = {}
        # Orders that listings page through, built once and reused while valid (see rest.py).
        self.listing_cache: dict[str, tuple[Any, list[Board]]] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.audit = AuditLog()
        self.next_item_number = 0
        self.next_subscription_number = 0

    # ---- lookups -------------------------------------------------------------------------------
    def member(self, member_id: str) -> Member | None:
        member = self.members_by_id.get(member_id)
        return None if member is None or member.deleted else member

    def member_by_email(self, email: str) -> Member | None:
        member = self.members_by_email.get(email.lower())
        return None if member is None or member.deleted else member

    def scim_user(self, scim_id: str) -> Member | None:
        member = self.members_by_scim_id.get(scim_id)
        if member is None or member.deleted or member.role not in SCIM_VISIBLE_ROLES:
            return None
        return member

    def board(self, board_id: str) -> Board | None:
        board = self.boards_by_id.get(board_id)
        return None if board is None or board.deleted else board

    def token_user(self) -> Member:
        """The user the REST token belongs to: the generator makes member 0 an always-active org admin
        and the inviter of every generated team membership (see generator._add_members)."""
        return self.all_members[0]

    def can_access(self, board: Board, member: Member) -> bool:
        """Whether `member` owns or was invited to `board` (what a user who is no Content Admin sees)."""
        return board.owner_index == member.index or member.index in board.members

    def active_admins(self) -> list[Member]:
        return [m for m in self.all_members if m.role == ADMIN and m.active and not m.deleted]

    def fully_licensed_count(self) -> int:
        return sum(1 for m in self.all_members if not m.deleted and m.license == "full")

    # ---- SCIM-driven changes -------------------------------------------------------------------
    def set_active(self, member: Member, active: bool, actor: str = "scim_provisioner") -> None:
        with self.lock:
            if member.active == active:
                return
            if not active and member.role == ADMIN and len(self.active_admins()) <= 1:
                raise StateError(
                    "conflict", "The last active admin of the organization cannot be deactivated"
                )
            member.active = active
            event = "user_activated" if active else "user_deactivated"
            self._record_user_event(event, member)

    def rename(self, member: Member, user_name: str) -> None:
        with self.lock:
            if not member.active:
                raise StateError(
                    "mutability", "userName of a deactivated user cannot be changed", "mutability"
                )
            other = self.members_by_email.get(user_name.lower())
            if other is not None and other is not member and not other.deleted:
                raise StateError("uniqueness", "userName is already taken", "uniqueness")
            del self.members_by_email[member.email.lower()]
            member.email = user_name
            self.members_by_email[user_name.lower()] = member

    def teams_with_sole_admin(self, member: Member) -> list[Team]:
        """Teams in which `member` is the only admin. Deleted members have no memberships left, so every
        other admin counted is a live (possibly deactivated) member, who still holds the team."""
        return [
            team
            for team in self.teams
            if (membership := team.memberships.get(member.index)) is not None
            and membership.role == "admin"
            and not any(
                other.role == "admin" and index != member.index for index, other in team.memberships.items()
            )
        ]

    def delete_member(self, member: Member) -> list[str]:
        """Remove a member; each board they own goes to the oldest admin of its team. Returns moved ids.

        Miro (SCIM deleteUser): "A user who is the last admin in the team or the last admin in the
        organization cannot be deleted." Deactivating such a user is allowed (see `set_active`)."""
        with self.lock:
            if member.role == ADMIN and len([a for a in self.active_admins() if a is not member]) == 0:
                raise StateError("conflict", "The last admin of the organization cannot be deleted")
            sole = self.teams_with_sole_admin(member)
            if sole:
                named = ", ".join(f"{team.name} ({team.id})" for team in sole[:3])
                more = f" and {len(sole) - 3} more" if len(sole) > 3 else ""
                raise StateError(
                    "conflict",
                    f"The last admin of a team cannot be deleted: the user is the only admin of team"
                    f"{'s' if len(sole) > 1 else ''} {named}{more}; make another team member an admin first",
                )
            moved: list[str] = []
            for board in self.boards:
                board.members.pop(member.index, None)
                if board.deleted or board.owner_index != member.index:
                    continue
                heir = self._oldest_team_admin(board.team_index, excluding=member.index)
                board.owner_index = heir.index
                board.members.pop(heir.index, None)  # an heir who was a board member is now its owner
                board.modified_ms = self.clock.now_ms()
                moved.append(board.id)
            for team in self.teams:
                team.memberships.pop(member.index, None)
            member.deleted = True
            position = bisect.bisect_left(self.member_ids, member.id)
            if position < len(self.member_ids) and self.member_ids[position] == member.id:
                del self.member_ids[position]
            if member.index in self.scim_order:
                self.scim_order.remove(member.index)
            self._record_user_event("user_deleted", member)
            return moved

    def _oldest_team_admin(self, team_index: int, excluding: int) -> Member:
        team = self.teams[team_index]
        admins = [
            (membership.created_ms, self.all_members[index].id, self.all_members[index])
            for index, membership in team.memberships.items()
            if membership.role == "admin" and index != excluding and not self.all_members[index].deleted
        ]
        if admins:
            return min(admins, key=lambda entry: (entry[0], entry[1]))[2]
        # Unreachable through the API (the last admin of a team cannot be deleted, nor removed from
        # it): only a hand-built state gets here. Such a board goes to the longest-standing org admin.
        org_admins = [m for m in self.active_admins() if m.index != excluding]
        return min(org_admins, key=lambda m: (m.created_ms, m.id))

    def remove_team_member(self, team: Team, member: Member) -> None:
        with self.lock:
            membership = team.memberships.get(member.index)
            if membership is None:
                raise StateError("not_found", "Team member not found")
            other_admins = [
                i for i, tm in team.memberships.items() if tm.role == "admin" and i != member.index
            ]
            if membership.role == "admin" and not other_admins:
                raise StateError("conflict", "The last admin of a team cannot be removed")
            del team.memberships[member.index]

    def add_team_member(self, team: Team, member: Member, role: str | None, actor: Member) -> TeamMembership:
        with self.lock:
            if member.index in team.memberships:
                raise StateError("conflict", "The user is already a member of this team")
            membership = TeamMembership(
                member.index, self._team_role_for(member, role), self.clock.now_ms(), actor.id
            )
            team.memberships[member.index] = membership
            if member.primary_team == NO_INDEX:
                member.primary_team = team.index
            return membership

    def set_team_role(self, team: Team, member: Member, role: str, actor: Member) -> TeamMembership:
        with self.lock:
            membership = team.memberships.get(member.index)
            if membership is None:
                raise StateError("not_found", "Team member not found")
            role = self._team_role_for(member, role)
            if membership.role == role:
                return membership
            other_admins = [
                i for i, tm in team.memberships.items() if tm.role == "admin" and i != member.index
            ]
            if membership.role == "admin" and not other_admins:
                raise StateError("conflict", "The last admin of a team cannot be demoted")
            membership.role = role
            membership.modified_ms = self.clock.now_ms()
            membership.modified_by = actor.id
            return membership

    @staticmethod
    def _team_role_for(member: Member, role: str | None) -> str:
        """The team role `member` gets for a requested one (None: the default). External users belong to
        teams only as non-team members (Miro's `non_team` role), so they cannot be made members or admins."""
        if member.role != EXTERNAL_USER:
            return role or "member"
        if role is None:
            return "non_team"
        raise StateError("invalid", "An external user can only be a non-team member of a team")

    def reset_sessions(self, member: Member) -> None:
        with self.lock:
            member.sessions_reset_ms = self.clock.now_ms()

    # ---- board members ---------------------------------------------------------------------------
    def board_role(self, board: Board, member: Member) -> str | None:
        if board.owner_index == member.index:
            return BOARD_OWNER
        return board.members.get(member.index)

    def share_board(self, board: Board, member: Member, role: str) -> None:
        """Invite `member` with `role`; a member's role changes to it, the owner's stays "owner"."""
        with self.lock:
            if board.owner_index != member.index:
                board.members[member.index] = BOARD_COOWNER if role == BOARD_OWNER else role

    def set_board_role(self, board: Board, member: Member, role: str) -> None:
        with self.lock:
            if board.owner_index == member.index:
                raise StateError("invalid", "The role of the board owner cannot be changed")
            if member.index not in board.members:
                raise StateError("not_found", "Board member not found")
            board.members[member.index] = BOARD_COOWNER if role == BOARD_OWNER else role

    def remove_board_member(self, board: Board, member: Member) -> None:
        with self.lock:
            if board.owner_index == member.index:
                raise StateError("invalid", "The board owner cannot be removed from the board")
            if board.members.pop(member.index, None) is None:
                raise StateError("not_found", "Board member not found")

    def _record_user_event(self, event_name: str, member: Member) -> None:
        self.audit.append(
            self.clock.now_ms(), EVENT_TYPE_INDEX[event_name], NO_INDEX, member.index, member.primary_team
        )

    # ---- board items and subscriptions ---------------------------------------------------------
    def new_item_id(self) -> str:
        with self.lock:
            self.next_item_number += 1
            return str(3_458_764_700_000_000_000 + self.next_item_number)

    def new_subscription_id(self) -> str:
        with self.lock:
            self.next_subscription_number += 1
            return str(3_458_764_800_000_000_000 + self.next_subscription_number)

    def delete_board(self, board: Board) -> None:
        with self.lock:
            board.deleted = True
            for subscription in self.subscriptions.values():
                if subscription.board_id == board.id:
                    subscription.status = "lost_access"
                    subscription.modified_ms = self.clock.now_ms()
