"""MembersTable: one item per Miro organization member, keyed by member id.

Item attributes (camelCase, as stored):
  memberId, email (lower-cased; GSI ByEmail), role, license, active, status
  (active|suspended|deprovisioned), seat = "{status}#{license}" and lastSeenAt (GSI BySeat;
  "0000-00-00T00:00:00Z" when never seen so such seats sort as the oldest), lastActivityAt,
  licenseAssignedAt, teams (team ids), teamMemberships (list of "id:role:name" strings: the member's
  teams with the team's name and the member's team role, sorted by team id; absent when none),
  boardsOwned, scimId, scimCheckedAt, displayName (the member's full name as Miro shows it, from
  SCIM: displayName, else name.formatted, else givenName + familyName; absent until SCIM named the
  member), adminRoles (names: "Content Admin", a custom role's name), firstSeenAt, lastChangedAt, removedAt,
  fingerprint (hash of the Miro-owned content) and the derived signals written by other
  functions: lastSignInAt, lastAuditActivityAt, lastBoardActivityAt. lastSeenAt is the newest
  of lastActivityAt and those signals.

Concurrency rule that keeps the signals safe: the sync never writes the signal attributes, and
when it rewrites an existing item it conditions on the lastSeenAt it read. Every signal writer
that moves lastSeenAt changes it, so a sync write racing a signal fails its condition and is
recomputed from a fresh read instead of clobbering the signal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from miro_sync.store.dynamo import (
    batch_get,
    batch_write,
    is_conditional_check_failed,
    paged_items,
    update_expression,
)
from miro_sync.store.lowlevel import to_item
from miro_sync.store.member_activity import BOARD_ACTIVITY, MemberActivityRepository
from miro_sync.timestamps import iso_millis

if TYPE_CHECKING:
    # Annotations only: keeps the Miro wire models off the import path of signal writers.
    from miro_sync.miro.models import OrgMember

NEVER_SEEN = "0000-00-00T00:00:00Z"
STATUS_ACTIVE = "active"
STATUS_SUSPENDED = "suspended"
STATUS_DEPROVISIONED = "deprovisioned"
STATUSES = (STATUS_ACTIVE, STATUS_SUSPENDED, STATUS_DEPROVISIONED)

_SIGNALS = ("last_sign_in_at", "last_audit_activity_at", "last_board_activity_at")
TEAM_ROLE_ADMIN = "admin"


class TeamMembership(BaseModel):
    """One of a member's teams: the team's id and name and the member's role in it (Miro's team
    role: "member", "admin", "non_team", "team_guest", ...). Stored as one string "id:role:name" (a map
    per team costs boto3 several times the CPU per item on every sync's write and read)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    role: str

    def to_item(self) -> str:
        return f"{self.id}:{self.role}:{self.name}"

    @classmethod
    def from_item(cls, value: object) -> TeamMembership:
        if isinstance(value, dict):  # the map form some items were first written with
            return cls.model_validate(value)
        team_id, role, name = str(value).split(":", 2)  # ids and roles hold no ":"; names may
        return cls(id=team_id, name=name, role=role)


class MemberRecord(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)

    member_id: str = Field(alias="memberId")
    email: str
    role: str
    license: str
    active: bool
    status: str
    last_activity_at: datetime | None = Field(default=None, alias="lastActivityAt")
    license_assigned_at: datetime | None = Field(default=None, alias="licenseAssignedAt")
    teams: tuple[str, ...] = ()
    # Absent from items written before team roles were stored: read back as ().
    team_memberships: tuple[TeamMembership, ...] = Field(default=(), alias="teamMemberships")
    boards_owned: int = Field(default=0, alias="boardsOwned")
    scim_id: str | None = Field(default=None, alias="scimId")
    scim_checked_at: datetime | None = Field(default=None, alias="scimCheckedAt")
    admin_roles: tuple[str, ...] = Field(default=(), alias="adminRoles")
    display_name: str | None = Field(default=None, alias="displayName")
    first_seen_at: datetime | None = Field(default=None, alias="firstSeenAt")
    last_changed_at: datetime | None = Field(default=None, alias="lastChangedAt")
    removed_at: datetime | None = Field(default=None, alias="removedAt")
    last_sign_in_at: datetime | None = Field(default=None, alias="lastSignInAt")
    last_audit_activity_at: datetime | None = Field(default=None, alias="lastAuditActivityAt")
    last_board_activity_at: datetime | None = Field(default=None, alias="lastBoardActivityAt")
    fingerprint: str | None = None

    @property
    def seat(self) -> str:
        return f"{self.status}#{self.license}"

    @property
    def admin_team_ids(self) -> tuple[str, ...]:
        """The ids of the teams in which the member is a team admin, sorted."""
        return tuple(sorted(m.id for m in self.team_memberships if m.role == TEAM_ROLE_ADMIN))

    @property
    def last_seen_at(self) -> datetime | None:
        moments = [self.last_activity_at, *(getattr(self, name) for name in _SIGNALS)]
        known = [moment for moment in moments if moment is not None]
        return max(known) if known else None

    @property
    def last_seen_key(self) -> str:
        seen = self.last_seen_at
        return iso_millis(seen) if seen else NEVER_SEEN

    def content_fingerprint(self) -> str:
        """Hash of everything the sync owns; equal fingerprints mean nothing to write."""
        content = {
            "email": self.email,
            "role": self.role,
            "license": self.license,
            "active": self.active,
            "status": self.status,
            "lastActivityAt": _iso_or_none(self.last_activity_at),
            "licenseAssignedAt": _iso_or_none(self.license_assigned_at),
            "teams": sorted(self.teams),
            "boardsOwned": self.boards_owned,
            "scimId": self.scim_id,
            # Part of the content so that a failed SCIM lookup is remembered (not repeated per run).
            "scimCheckedAt": _iso_or_none(self.scim_checked_at),
            "adminRoles": sorted(self.admin_roles),
            "removedAt": _iso_or_none(self.removed_at),
        }
        if self.team_memberships:
            # Only when there are any: a member in no team keeps the fingerprint it had before
            # memberships were stored, so the first sync after the upgrade does not rewrite it.
            content["teamMemberships"] = [[m.id, m.name, m.role] for m in _sorted(self.team_memberships)]
        if self.display_name is not None:
            # Likewise: members SCIM has not named keep their fingerprint; a named one is written once.
            content["displayName"] = self.display_name
        digest = hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode())
        return digest.hexdigest()[:24]

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "memberId": self.member_id,
            "email": self.email,
            "role": self.role,
            "license": self.license,
            "active": self.active,
            "status": self.status,
            "seat": self.seat,
            "lastSeenAt": self.last_seen_key,
            "boardsOwned": self.boards_owned,
        }
        optional: dict[str, Any] = {
            "lastActivityAt": _iso_or_none(self.last_activity_at),
            "licenseAssignedAt": _iso_or_none(self.license_assigned_at),
            "teams": list(self.teams) or None,
            "teamMemberships": [m.to_item() for m in _sorted(self.team_memberships)] or None,
            "adminRoles": list(self.admin_roles) or None,
            "displayName": self.display_name or None,
            "scimId": self.scim_id,
            "scimCheckedAt": _iso_or_none(self.scim_checked_at),
            "firstSeenAt": _iso_or_none(self.first_seen_at),
            "lastChangedAt": _iso_or_none(self.last_changed_at),
            "removedAt": _iso_or_none(self.removed_at),
            "lastSignInAt": _iso_or_none(self.last_sign_in_at),
            "lastAuditActivityAt": _iso_or_none(self.last_audit_activity_at),
            "lastBoardActivityAt": _iso_or_none(self.last_board_activity_at),
            "fingerprint": self.fingerprint,
        }
        item.update({key: value for key, value in optional.items() if value is not None})
        return item

    def sync_owned_attributes(self) -> dict[str, Any]:
        """What a sync rewrite sets (None = REMOVE); never the signal attributes."""
        item = self.to_item()
        owned = (
            *("email", "role", "license", "active", "status", "seat", "lastSeenAt", "boardsOwned"),
            *("lastActivityAt", "licenseAssignedAt", "teams", "teamMemberships", "adminRoles"),
            *("scimId", "scimCheckedAt", "displayName"),
            *("firstSeenAt", "lastChangedAt", "removedAt", "fingerprint"),
        )
        return {name: item.get(name) for name in owned}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> MemberRecord:
        data = dict(item)
        data.pop("seat", None)
        data.pop("lastSeenAt", None)
        if "boardsOwned" in data:
            data["boardsOwned"] = int(data["boardsOwned"])
        for name in ("teams", "adminRoles"):
            if name in data:
                data[name] = tuple(data[name])
        if "teamMemberships" in data:
            data["teamMemberships"] = tuple(
                TeamMembership.from_item(value) for value in data["teamMemberships"]
            )
        return cls.model_validate(data)


def _iso_or_none(moment: datetime | None) -> str | None:
    return iso_millis(moment) if moment is not None else None


def _membership_key(membership: TeamMembership) -> tuple[str, str, str]:
    return membership.id, membership.role, membership.name


def _sorted(memberships: Iterable[TeamMembership]) -> list[TeamMembership]:
    return sorted(memberships, key=_membership_key)


def _unique_sorted(memberships: Iterable[TeamMembership]) -> tuple[TeamMembership, ...]:
    by_key = {_membership_key(membership): membership for membership in memberships}
    return tuple(by_key[key] for key in sorted(by_key))


def build_member_record(
    member: OrgMember,
    existing: MemberRecord | None,
    *,
    teams: Sequence[str],
    boards_owned: int,
    scim_id: str | None,
    scim_checked_at: datetime | None,
    now: datetime,
    team_memberships: Sequence[TeamMembership] | None = None,
    display_name: str | None = None,
) -> MemberRecord:
    """The record a sync would store for `member`; keeps signals and history from `existing`.

    `team_memberships`: the member's teams with name and role; None keeps `existing`'s (for callers
    that, like `teams=existing.teams`, refresh a member without listing teams).
    `display_name`: the name SCIM gives the member; None keeps `existing`'s (SCIM was not asked).

    When nothing the sync owns changed, the result carries `existing`'s fingerprint and
    lastChangedAt, so callers compare fingerprints to decide whether to write.
    """
    draft = MemberRecord(
        member_id=member.id,
        email=member.email.strip().lower(),
        role=member.role,
        license=member.license,
        active=member.active,
        status=STATUS_ACTIVE if member.active else STATUS_SUSPENDED,
        last_activity_at=member.last_activity_at,
        license_assigned_at=member.license_assigned_at,
        teams=tuple(sorted(set(teams))),
        team_memberships=(
            _unique_sorted(team_memberships)
            if team_memberships is not None
            else (existing.team_memberships if existing else ())
        ),
        boards_owned=boards_owned,
        scim_id=scim_id if scim_id is not None else (existing.scim_id if existing else None),
        scim_checked_at=scim_checked_at or (existing.scim_checked_at if existing else None),
        display_name=display_name or (existing.display_name if existing else None),
        # By name ("Content Admin", "User Admin", a custom role's name); `type` is only "prebuilt" or
        # "custom", so it stands in only for a role Miro sent without a name.
        admin_roles=tuple(sorted({name for role in member.admin_roles if (name := role.name or role.type)})),
        first_seen_at=existing.first_seen_at if existing and existing.first_seen_at else now,
        removed_at=None,
        last_sign_in_at=existing.last_sign_in_at if existing else None,
        last_audit_activity_at=existing.last_audit_activity_at if existing else None,
        last_board_activity_at=existing.last_board_activity_at if existing else None,
    )
    fingerprint = draft.content_fingerprint()
    if existing is not None and existing.fingerprint == fingerprint:
        return draft.model_copy(
            update={"fingerprint": fingerprint, "last_changed_at": existing.last_changed_at}
        )
    return draft.model_copy(update={"fingerprint": fingerprint, "last_changed_at": now})


def deprovisioned_record(existing: MemberRecord, *, now: datetime) -> MemberRecord:
    """The record of a member who is gone from the organization: kept, never deleted."""
    draft = existing.model_copy(
        update={"status": STATUS_DEPROVISIONED, "active": False, "removed_at": existing.removed_at or now}
    )
    return draft.model_copy(update={"fingerprint": draft.content_fingerprint(), "last_changed_at": now})


class ConcurrentChangeError(Exception):
    """The item changed between our read and our write (a signal writer got there first)."""


class _ItemUpdates:
    """UpdateItem on one table through a shared client: a boto3 resource `Table` is not thread-safe,
    its client is (and takes plain values: the resource's serializer is registered on it)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    def update_item(self, **kwargs: Any) -> Mapping[str, Any]:
        response: Mapping[str, Any] = self._client.update_item(TableName=self._table_name, **kwargs)
        return response


class MembersRepository:
    """All access to MembersTable. Thread-safe: it only uses the table's low-level client."""

    def __init__(self, table: Any, *, writer: Any | None = None) -> None:
        self._client = table.meta.client
        # New members' batch puts go through `writer` when given: a plain low-level client, sent items
        # typed by `lowlevel.to_item` (no resource serializer walking every attribute under the GIL:
        # a first sync writes every member this way). None: the table's own client.
        self._writer = writer
        self._table = table
        self.table_name: str = table.name
        self._activity = MemberActivityRepository(_ItemUpdates(self._client, self.table_name))

    # --- reads -----------------------------------------------------------------------------------

    def get(self, member_id: str) -> MemberRecord | None:
        response = self._client.get_item(
            TableName=self.table_name, Key={"memberId": member_id}, ConsistentRead=True
        )
        item = response.get("Item")
        return MemberRecord.from_item(item) if item else None

    def get_many(self, member_ids: Iterable[str]) -> tuple[dict[str, MemberRecord], int]:
        """Existing records by id (missing ids are absent) and the number of requests made."""
        keys = [{"memberId": member_id} for member_id in dict.fromkeys(member_ids)]
        items, requests = batch_get(self._client, self.table_name, keys)
        records = {item["memberId"]: MemberRecord.from_item(item) for item in items}
        return records, requests

    def find_by_email(self, email: str) -> MemberRecord | None:
        """The member with this email; if Miro reused the address, the one not deprovisioned."""
        response = self._client.query(
            TableName=self.table_name,
            IndexName="ByEmail",
            KeyConditionExpression=Key("email").eq(email.strip().lower()),
        )
        records = [MemberRecord.from_item(item) for item in response.get("Items", [])]
        if not records:
            return None
        records.sort(key=lambda record: (record.status != STATUS_DEPROVISIONED, record.last_changed_at or 0))
        return records[-1]

    def query_seats(self, status: str, license: str, last_seen_before: str) -> Iterator[MemberRecord]:
        """Members holding seat status#license whose lastSeenAt < last_seen_before, oldest first."""
        for item in paged_items(
            self._client.query,
            TableName=self.table_name,
            IndexName="BySeat",
            KeyConditionExpression=Key("seat").eq(f"{status}#{license}")
            & Key("lastSeenAt").lt(last_seen_before),
        ):
            yield MemberRecord.from_item(item)

    # --- sync writes -----------------------------------------------------------------------------

    def put_new(self, records: Sequence[MemberRecord]) -> int:
        """Batch-put members that had no item. Safe without conditions: the only other writers
        (signals, offboarding status) require the item to exist. Returns requests made."""
        if self._writer is not None:
            return batch_write(
                self._writer, self.table_name, [to_item(record.to_item()) for record in records]
            )
        return batch_write(self._client, self.table_name, [record.to_item() for record in records])

    def replace_synced(self, record: MemberRecord, *, expected_last_seen: str) -> None:
        """Rewrite the sync-owned attributes of an existing member, conditional on lastSeenAt
        still being what we read. Raises ConcurrentChangeError when a signal moved in between."""
        expression, names, values = update_expression(record.sync_owned_attributes())
        names["#pk"] = "memberId"
        names["#seen"] = "lastSeenAt"
        values[":expectedSeen"] = expected_last_seen
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={"memberId": record.member_id},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(#pk) AND #seen = :expectedSeen",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if is_conditional_check_failed(error):
                raise ConcurrentChangeError(record.member_id) from None
            raise

    def upsert_from_miro(
        self, member: OrgMember, scim_id: str | None, *, now: datetime | None = None
    ) -> bool:
        """Refresh one member from Miro's view (e.g. after offboarding). Returns True if written."""
        moment = now or datetime.now().astimezone()
        for _attempt in range(5):
            existing = self.get(member.id)
            record = build_member_record(
                member,
                existing,
                teams=existing.teams if existing else (),
                boards_owned=existing.boards_owned if existing else 0,
                scim_id=scim_id,
                scim_checked_at=None,
                now=moment,
            )
            if existing is not None and existing.fingerprint == record.fingerprint:
                return False
            if existing is None:
                self.put_new([record])
                return True
            try:
                self.replace_synced(record, expected_last_seen=existing.last_seen_key)
                return True
            except ConcurrentChangeError:
                continue
        raise ConcurrentChangeError(member.id)

    # --- signals (written by the webhook, audit and sign-in consumers) ---------------------------

    def record_board_activity(self, member_id: str, at: datetime) -> bool:
        return self._record_signal(member_id, BOARD_ACTIVITY, at)

    def record_sign_in(self, member_id: str, at: datetime) -> bool:
        return self._record_signal(member_id, "lastSignInAt", at)

    def record_audit_activity(self, member_id: str, at: datetime) -> bool:
        return self._record_signal(member_id, "lastAuditActivityAt", at)

    def _record_signal(self, member_id: str, attribute: str, at: datetime) -> bool:
        """Move `attribute` (and lastSeenAt) forward to `at`, never backwards; unknown members are left
        alone. The webhook's writer (store/member_activity.py), over this class's client."""
        return self._activity.record_signal(member_id, attribute, at)

    # --- status (offboarding reflects its effect at once; removals by the sync) ------------------

    def set_status(
        self, member_id: str, *, status: str, active: bool, at: datetime, license: str | None = None
    ) -> bool:
        """Set status/active, the seat key and lastChangedAt of an existing member in one conditional
        UpdateItem. Returns False if the member is unknown.

        seat = "{status}#{license}" and an update expression cannot concatenate strings, so the write
        needs the license: pass it if known, otherwise it is read first (one GetItem). The update is
        conditioned on the stored license being that one, so a sync changing the license in between
        makes it re-read instead of leaving a seat that names the old license.

        The fingerprint is removed rather than recomputed (that would need the whole item): the next
        sync then rewrites the member from Miro's view instead of comparing against a fingerprint
        of the status before this change.
        """
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        moment = iso_millis(at)
        names = {
            "#pk": "memberId",
            "#license": "license",
            "#status": "status",
            "#active": "active",
            "#seat": "seat",
            "#changed": "lastChangedAt",
            "#removed": "removedAt",
            "#fingerprint": "fingerprint",
        }
        if status == STATUS_DEPROVISIONED:
            # Keep the first removal time, as the sync's own deprovisioning does.
            update = (
                "SET #status = :status, #active = :active, #seat = :seat, #changed = :at,"
                " #removed = if_not_exists(#removed, :at) REMOVE #fingerprint"
            )
        else:
            update = (
                "SET #status = :status, #active = :active, #seat = :seat, #changed = :at"
                " REMOVE #fingerprint, #removed"
            )
        known_license = license
        for _attempt in range(5):
            if known_license is None:
                known_license = self._stored_license(member_id)
                if known_license is None:
                    return False
            try:
                self._client.update_item(
                    TableName=self.table_name,
                    Key={"memberId": member_id},
                    UpdateExpression=update,
                    ConditionExpression="attribute_exists(#pk) AND #license = :license",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={
                        ":status": status,
                        ":active": active,
                        ":seat": f"{status}#{known_license}",
                        ":at": moment,
                        ":license": known_license,
                    },
                )
                return True
            except ClientError as error:
                if not is_conditional_check_failed(error):
                    raise
                known_license = None  # unknown member or another license: read what is stored
        raise ConcurrentChangeError(member_id)

    def _stored_license(self, member_id: str) -> str | None:
        response = self._client.get_item(
            TableName=self.table_name,
            Key={"memberId": member_id},
            ProjectionExpression="#license",
            ExpressionAttributeNames={"#license": "license"},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return str(item["license"]) if item and "license" in item else None

    def mark_deprovisioned(self, existing: MemberRecord, *, now: datetime) -> bool:
        """Mark a vanished member deprovisioned (idempotent). Returns True if it was written."""
        current: MemberRecord | None = existing
        for _attempt in range(5):
            if current is None or current.status == STATUS_DEPROVISIONED:
                return False
            try:
                self.replace_synced(
                    deprovisioned_record(current, now=now), expected_last_seen=current.last_seen_key
                )
                return True
            except ConcurrentChangeError:
                current = self.get(existing.member_id)
        raise ConcurrentChangeError(existing.member_id)
