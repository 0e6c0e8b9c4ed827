"""Pydantic v2 wire models for the Miro REST and SCIM APIs.

Tolerant where Miro may add things (unknown fields are kept, enums such as role/license are plain
strings so a new Miro value does not break a sync) and strict where a wrong type means the payload
is garbage (ids/emails must be strings, flags must be real booleans, counters real integers,
timestamps must parse). Field names are snake_case with Miro's camelCase as the alias; dump with
``model_dump(by_alias=True)`` to get Miro's shape back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr


class MiroModel(BaseModel):
    # defer_build: schemas are built on first use, so a cold start only pays for the models it touches.
    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)


ItemT = TypeVar("ItemT", bound=MiroModel)


class CursorPage(MiroModel, Generic[ItemT]):
    """Miro's `cursor-list` page: an empty or missing cursor means this was the last page."""

    type: StrictStr = "cursor-list"
    limit: StrictInt | None = None
    size: StrictInt | None = None
    data: list[ItemT]
    cursor: StrictStr | None = None
    total: StrictInt | None = None

    @property
    def next_cursor(self) -> str | None:
        return self.cursor or None


# --- organization and members -------------------------------------------------------------------


class AdminRole(MiroModel):
    type: StrictStr | None = None
    name: StrictStr | None = None


class OrgMember(MiroModel):
    id: StrictStr
    email: StrictStr
    role: StrictStr
    license: StrictStr
    active: StrictBool
    last_activity_at: datetime | None = Field(default=None, alias="lastActivityAt")
    license_assigned_at: datetime | None = Field(default=None, alias="licenseAssignedAt")
    type: StrictStr = "organization-member"
    admin_roles: list[AdminRole] = Field(default_factory=list, alias="adminRoles")


class MembersPage(CursorPage[OrgMember]):
    pass


class Organization(MiroModel):
    id: StrictStr
    name: StrictStr
    plan: StrictStr | None = None
    full_licenses_purchased: StrictInt | None = Field(default=None, alias="fullLicensesPurchased")
    type: StrictStr = "organization"


class Team(MiroModel):
    id: StrictStr
    name: StrictStr
    type: StrictStr = "team"


class TeamsPage(CursorPage[Team]):
    pass


class TeamMember(MiroModel):
    # The spec calls the organization member id `id`; `memberId` is accepted too.
    member_id: StrictStr = Field(alias="id", validation_alias=AliasChoices("id", "memberId", "member_id"))
    role: StrictStr
    team_id: StrictStr | None = Field(default=None, alias="teamId")
    created_at: datetime | None = Field(default=None, alias="createdAt")
    created_by: StrictStr | None = Field(default=None, alias="createdBy")
    modified_at: datetime | None = Field(default=None, alias="modifiedAt")
    modified_by: StrictStr | None = Field(default=None, alias="modifiedBy")
    type: StrictStr = "team-member"


class TeamMembersPage(CursorPage[TeamMember]):
    pass


# --- boards ---------------------------------------------------------------------------------------


class UserRef(MiroModel):
    id: StrictStr
    name: StrictStr | None = None
    type: StrictStr | None = None


class TeamRef(MiroModel):
    id: StrictStr
    name: StrictStr | None = None


class Board(MiroModel):
    id: StrictStr
    name: StrictStr
    description: StrictStr | None = None
    type: StrictStr = "board"
    owner: UserRef | None = None
    team: TeamRef | None = None
    created_at: datetime | None = Field(default=None, alias="createdAt")
    modified_at: datetime | None = Field(default=None, alias="modifiedAt")
    last_opened_at: datetime | None = Field(default=None, alias="lastOpenedAt")
    view_link: StrictStr | None = Field(default=None, alias="viewLink")


class BoardMember(MiroModel):
    id: StrictStr
    name: StrictStr | None = None
    role: StrictStr | None = None  # viewer | commenter | editor | coowner | owner
    type: StrictStr = "board_member"


class InvitationFailure(MiroModel):
    email: StrictStr | None = None
    reason: StrictStr | None = None


class BoardInvitation(MiroModel):
    """share-board's answer: the user ids invited and the invites that failed, with why."""

    successful: list[int | StrictStr] = Field(default_factory=list)
    failed: list[InvitationFailure] = Field(default_factory=list)


class BoardsPage(MiroModel):
    """Offset-paged (`/v2/boards` is not cursor-paged)."""

    type: StrictStr | None = None
    data: list[Board]
    total: StrictInt | None = None
    size: StrictInt | None = None
    offset: StrictInt | None = None
    limit: StrictInt | None = None


# --- audit logs -----------------------------------------------------------------------------------


class AuditRef(MiroModel):
    id: StrictStr | None = None
    name: StrictStr | None = None


class AuditContext(MiroModel):
    ip: StrictStr | None = None
    team: AuditRef | None = None
    organization: AuditRef | None = None


class AuditActor(MiroModel):
    type: StrictStr | None = None
    id: StrictStr | None = None
    name: StrictStr | None = None
    email: StrictStr | None = None


class AuditEvent(MiroModel):
    id: StrictStr
    created_at: datetime = Field(alias="createdAt")
    event: StrictStr
    category: StrictStr | None = None
    context: AuditContext | None = None
    object: AuditRef | None = None
    created_by: AuditActor | None = Field(default=None, alias="createdBy")
    details: dict[str, Any] = Field(default_factory=dict)


class AuditPage(CursorPage[Any]):
    """A page of audit events as received: the envelope is validated strictly, the events are not.

    One malformed event (no id, a date that does not parse) must not fail the page and stop the
    run: the audit sync validates each event itself and records the bad ones as rejected, with the
    page cursor. `AuditEvent.model_validate` gives the typed view of a good one.
    """

    type: StrictStr = "cursor-list"
    data: list[Any]


# --- SCIM -----------------------------------------------------------------------------------------

SCIM_ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
SCIM_PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class ScimName(MiroModel):
    formatted: StrictStr | None = None
    given_name: StrictStr | None = Field(default=None, alias="givenName")
    family_name: StrictStr | None = Field(default=None, alias="familyName")


class ScimEmail(MiroModel):
    value: StrictStr
    type: StrictStr | None = None
    primary: StrictBool | None = None


SCIM_USER_ROLE = "organization_user_role"  # the one organization role (ORGANIZATION_INTERNAL_USER, ...)
SCIM_ADMIN_ROLE = "organization_admin_role"  # admin roles by name ("Content Admin", custom role names)
# SCIM userType (a licence name, free-form per the spec: "Full", "Free", "Free Restricted", "Full (Trial)",
# "Basic", "Standard", "Advanced") -> the REST API's license value. Others: lower-cased, "_" for blanks.
SCIM_USER_TYPES = {"full (trial)": "full_trial", "free restricted": "free_restricted"}


class ScimRole(MiroModel):
    value: StrictStr | None = None  # tolerated missing: a role without a value is ignored
    type: StrictStr | None = None
    display: StrictStr | None = None
    primary: StrictBool | None = None


class ScimManager(MiroModel):
    value: StrictStr | None = None
    display_name: StrictStr | None = Field(default=None, alias="displayName")


class ScimEnterpriseUser(MiroModel):
    employee_number: StrictStr | None = Field(default=None, alias="employeeNumber")
    cost_center: StrictStr | None = Field(default=None, alias="costCenter")
    organization: StrictStr | None = None
    division: StrictStr | None = None
    department: StrictStr | None = None
    manager: ScimManager | None = None


class ScimGroupRef(MiroModel):
    """One of a user's groups (in Miro's spec: teams) as `groups` lists them: id and name."""

    value: StrictStr | None = None
    display: StrictStr | None = None
    type: StrictStr | None = None


class ScimUser(MiroModel):
    id: StrictStr
    user_name: StrictStr = Field(alias="userName")
    active: StrictBool | None = None
    schemas: list[StrictStr] = Field(default_factory=list)
    name: ScimName | None = None
    display_name: StrictStr | None = Field(default=None, alias="displayName")
    user_type: StrictStr | None = Field(default=None, alias="userType")
    emails: list[ScimEmail] = Field(default_factory=list)
    roles: list[ScimRole] = Field(default_factory=list)
    groups: list[ScimGroupRef] = Field(default_factory=list)
    meta: dict[str, Any] | None = None
    enterprise: ScimEnterpriseUser | None = Field(default=None, alias=SCIM_ENTERPRISE_USER)

    @property
    def full_name(self) -> str | None:
        """The name Miro shows, by Miro's documented order: displayName, else name.formatted, else
        givenName + " " + familyName (None when none is given; Miro would show the userName)."""
        for candidate in (self.display_name, self.name.formatted if self.name else None):
            if candidate and candidate.strip():
                return candidate.strip()
        if self.name is not None:
            parts = [part.strip() for part in (self.name.given_name, self.name.family_name) if part]
            joined = " ".join(part for part in parts if part)
            if joined:
                return joined
        return None

    @property
    def organization_role(self) -> str | None:
        """The organization role in the REST API's spelling ("organization_internal_user"): the role
        of type organization_user_role, else the primary role (older answers had no such type)."""
        typed = [role for role in self.roles if role.value and role.type == SCIM_USER_ROLE]
        primary = [
            role for role in self.roles if role.value and role.primary and role.type != SCIM_ADMIN_ROLE
        ]
        chosen = (typed or primary)[:1]
        return chosen[0].value.lower() if chosen and chosen[0].value else None

    @property
    def admin_role_names(self) -> tuple[str, ...]:
        """Admin roles by name ("Content Admin", a custom role's name), sorted."""
        return tuple(
            sorted({role.value for role in self.roles if role.value and role.type == SCIM_ADMIN_ROLE})
        )

    @property
    def license(self) -> str | None:
        """userType as the REST API names licenses ("Full" -> "full", "Free Restricted" ->
        "free_restricted", "Full (Trial)" -> "full_trial"); None when absent."""
        if not self.user_type or not self.user_type.strip():
            return None
        lowered = " ".join(self.user_type.lower().split())
        return SCIM_USER_TYPES.get(lowered, lowered.replace(" ", "_"))


class ScimListResponse(MiroModel):
    schemas: list[StrictStr] = Field(default_factory=list)
    # SCIM declares these as JSON numbers; integral floats (e.g. 5.0) are accepted.
    total_results: int = Field(alias="totalResults")
    start_index: int | None = Field(default=None, alias="startIndex")
    items_per_page: int | None = Field(default=None, alias="itemsPerPage")
    resources: list[ScimUser] = Field(default_factory=list, alias="Resources")


# --- webhooks (experimental endpoints) ------------------------------------------------------------


class BoardSubscriptionData(MiroModel):
    board_id: StrictStr | None = Field(default=None, alias="boardId")


class BoardSubscription(MiroModel):
    id: StrictStr
    type: StrictStr | None = None
    status: StrictStr
    callback_url: StrictStr | None = Field(default=None, alias="callbackUrl")
    data: BoardSubscriptionData | None = None
    created_at: datetime | None = Field(default=None, alias="createdAt")
    modified_at: datetime | None = Field(default=None, alias="modifiedAt")


class SubscriptionsPage(CursorPage[BoardSubscription]):
    type: StrictStr = "cursor-list"
