"""In-memory fakes for the members sync: a Miro org, a SCIM directory and the two repositories.

The repositories keep items in their stored (DynamoDB item) shape and apply the same conditions as
the real ones, so a record that does not survive `to_item`/`from_item` fails here too.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from miro_sync.miro.errors import MiroError
from miro_sync.miro.models import (
    Board,
    BoardsPage,
    MembersPage,
    Organization,
    OrgMember,
    ScimListResponse,
    ScimUser,
    Team,
    TeamMember,
    TeamMembersPage,
    TeamsPage,
)
from miro_sync.store.dynamo import iso_utc
from miro_sync.store.members import (
    STATUS_DEPROVISIONED,
    ConcurrentChangeError,
    MemberRecord,
    deprovisioned_record,
)
from miro_sync.store.state import RunPage, StoredCheckpoint
from miro_sync.sync.member_index import Buffer


class Killed(BaseException):
    """Stands for the process dying: not an Exception, so no `except Exception` swallows it."""


@dataclass
class Faults:
    """Raise `error` on the `at`-th call (1-based) counted across every faulty method."""

    at: int | None = None
    error: BaseException | None = None
    calls: int = 0
    # The sync calls from several threads: count each call exactly once.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def tick(self) -> None:
        with self._lock:
            self.calls += 1
            hit = self.at is not None and self.calls == self.at
        if hit and self.error is not None:
            raise self.error


def member(
    member_id: str,
    *,
    email: str | None = None,
    role: str = "organization_internal_user",
    license: str = "full",
    active: bool = True,
    last_activity: str | None = "2026-01-01T00:00:00Z",
) -> OrgMember:
    return OrgMember.model_validate(
        {
            "id": member_id,
            "email": email or f"user{member_id}@example.com",
            "role": role,
            "license": license,
            "active": active,
            "lastActivityAt": last_activity,
            "licenseAssignedAt": "2025-01-01T00:00:00Z",
        }
    )


@dataclass
class FakeMiro:
    members: list[OrgMember]
    teams: dict[str, list[str]] = field(default_factory=dict)  # team id -> member ids
    boards: list[tuple[str, str]] = field(default_factory=list)  # (board id, owner id)
    team_names: dict[str, str] = field(default_factory=dict)  # team id -> name ("Team {id}" if absent)
    team_roles: dict[tuple[str, str], str] = field(default_factory=dict)  # (team, member) -> role
    full_licenses_purchased: int = 1000
    faults: Faults = field(default_factory=Faults)
    # page number (1-based) -> error raised instead of returning that members page
    broken_member_pages: dict[int, MiroError] = field(default_factory=dict)
    requests: int = 0
    member_pages_served: int = 0
    board_pages_served: int = 0

    def _call(self) -> None:
        self.requests += 1
        self.faults.tick()

    def get_organization(self) -> Organization:
        self._call()
        return Organization(id="org-1", name="Org", full_licenses_purchased=self.full_licenses_purchased)

    def iter_member_pages(self, limit: int = 100, cursor: str | None = None) -> Iterator[MembersPage]:
        ordered = sorted(self.members, key=lambda m: m.id)
        start = 0
        if cursor is not None:
            start = next(i for i, m in enumerate(ordered) if m.id == cursor) + 1
        page_number = start // limit
        while True:
            self._call()
            page_number += 1
            if page_number in self.broken_member_pages:
                raise self.broken_member_pages[page_number]
            chunk = ordered[start : start + limit]
            start += len(chunk)
            self.member_pages_served += 1
            more = start < len(ordered)
            yield MembersPage(data=chunk, cursor=chunk[-1].id if more and chunk else None, limit=limit)
            if not more:
                return

    def iter_team_pages(self, cursor: str | None = None, limit: int = 100) -> Iterator[TeamsPage]:
        self._call()
        yield TeamsPage(
            data=[
                Team(id=team_id, name=self.team_names.get(team_id, f"Team {team_id}"))
                for team_id in sorted(self.teams)
            ]
        )

    def iter_team_member_pages(
        self, team_id: str, cursor: str | None = None, limit: int = 100
    ) -> Iterator[TeamMembersPage]:
        self._call()
        yield TeamMembersPage(
            data=[
                TeamMember.model_validate({"id": m, "role": self.team_roles.get((team_id, m), "member")})
                for m in self.teams[team_id]
            ]
        )

    def iter_board_pages(
        self, owner: str | None = None, team_id: str | None = None, offset: int = 0, limit: int = 50
    ) -> Iterator[BoardsPage]:
        for start in range(offset, max(len(self.boards), 1), limit):
            self._call()
            self.board_pages_served += 1
            chunk = self.boards[start : start + limit]
            yield BoardsPage(
                data=[Board.model_validate({"id": b, "name": b, "owner": {"id": o}}) for b, o in chunk],
                total=len(self.boards),
            )


@dataclass
class FakeScim:
    users: dict[str, str]  # email -> SCIM id
    listings: int = 0
    pages_served: int = 0
    lookups: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # email -> displayName
    counts: list[int] = field(default_factory=list)  # `count` of every page request
    attributes: list[tuple[str, ...] | None] = field(default_factory=list)

    def _user(self, email: str) -> ScimUser:
        body: dict[str, str] = {"id": self.users[email], "userName": email}
        if email in self.names:
            body["displayName"] = self.names[email]
        return ScimUser.model_validate(body)

    def iter_user_pages(
        self,
        filter: str | None = None,
        count: int = 100,
        start_index: int = 1,
        attributes: Sequence[str] | None = None,
    ) -> Iterator[ScimListResponse]:
        if start_index == 1:
            self.listings += 1
        emails = sorted(self.users)
        for start in range(start_index - 1, max(len(emails), 1), count):
            self.pages_served += 1
            self.counts.append(count)
            self.attributes.append(tuple(attributes) if attributes is not None else None)
            users = [self._user(email) for email in emails[start : start + count]]
            yield ScimListResponse.model_validate(
                {
                    "Resources": [user.model_dump(by_alias=True) for user in users],
                    "totalResults": len(emails),
                    "startIndex": start + 1,
                    "itemsPerPage": len(users),
                }
            )

    def find_user_by_username(self, email: str) -> ScimUser | None:
        self.lookups.append(email)
        return self._user(email) if email in self.users else None


@dataclass
class FakeMembersStore:
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    put_requests: int = 0
    update_requests: int = 0
    items_written: int = 0
    # Called between the sync's read and its conditional write (to race a signal writer in).
    before_replace: Callable[[str], None] | None = None

    def get(self, member_id: str) -> MemberRecord | None:
        item = self.items.get(member_id)
        return MemberRecord.from_item(item) if item else None

    def get_many(self, member_ids: Iterable[str]) -> tuple[dict[str, MemberRecord], int]:
        ids = list(dict.fromkeys(member_ids))
        found = {i: MemberRecord.from_item(self.items[i]) for i in ids if i in self.items}
        return found, math.ceil(len(ids) / 100)

    def put_new(self, records: Sequence[MemberRecord]) -> int:
        for start in range(0, len(records), 25):
            self.faults.tick()
            for record in records[start : start + 25]:
                self.items[record.member_id] = record.to_item()
                self.items_written += 1
            self.put_requests += 1
        return math.ceil(len(records) / 25)

    def replace_synced(self, record: MemberRecord, *, expected_last_seen: str) -> None:
        if self.before_replace is not None:
            self.before_replace(record.member_id)
        self.faults.tick()
        self.update_requests += 1
        current = self.items.get(record.member_id)
        if current is None or current["lastSeenAt"] != expected_last_seen:
            raise ConcurrentChangeError(record.member_id)
        for name, value in record.sync_owned_attributes().items():
            if value is None:
                current.pop(name, None)
            else:
                current[name] = value
        self.items_written += 1

    def mark_deprovisioned(self, existing: MemberRecord, *, now: datetime) -> bool:
        current: MemberRecord | None = existing
        while current is not None and current.status != STATUS_DEPROVISIONED:
            try:
                gone = deprovisioned_record(current, now=now)
                self.replace_synced(gone, expected_last_seen=current.last_seen_key)
                return True
            except ConcurrentChangeError:
                current = self.get(existing.member_id)
        return False

    def record_board_activity(self, member_id: str, at: datetime) -> bool:
        item = self.items.get(member_id)
        moment = iso_utc(at)
        if item is None or item.get("lastBoardActivityAt", "") >= moment:
            return False
        item["lastBoardActivityAt"] = moment
        item["lastSeenAt"] = max(item["lastSeenAt"], moment)
        return True

    def table(self) -> dict[str, dict[str, Any]]:
        return json.loads(json.dumps(self.items, sort_keys=True))


@dataclass
class FakeStateStore:
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    pages: dict[str, dict[int, tuple[list[str], str]]] = field(default_factory=dict)
    blobs: dict[tuple[str, str], str] = field(default_factory=dict)
    byte_blobs: dict[tuple[str, str], bytes] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)

    def load_checkpoint(self, name: str) -> StoredCheckpoint | None:
        item = self.checkpoints.get(name)
        if item is None:
            return None
        return StoredCheckpoint(
            state=json.loads(item.get("state", "{}")),
            lease_owner=item.get("leaseOwner"),
            lease_until_ms=item.get("leaseUntil", 0),
        )

    def acquire_lease(self, name: str, owner: str, *, now_ms: int, until_ms: int) -> bool:
        item = self.checkpoints.setdefault(name, {})
        if item.get("leaseUntil", -1) >= now_ms and item.get("leaseOwner") != owner:
            return False
        item.update(leaseOwner=owner, leaseUntil=until_ms)
        return True

    def save_checkpoint(self, name: str, owner: str, state: Mapping[str, Any]) -> None:
        self.faults.tick()
        item = self.checkpoints[name]
        assert item.get("leaseOwner") == owner
        item["state"] = json.dumps(state, sort_keys=True)

    def release_lease(self, name: str, owner: str) -> None:
        item = self.checkpoints.get(name, {})
        if item.get("leaseOwner") == owner:
            item["leaseUntil"] = 0

    def put_run_page(
        self,
        name: str,
        run_id: str,
        number: int,
        member_ids: Sequence[str],
        state: Mapping[str, Any],
        *,
        now: datetime,
    ) -> None:
        self.faults.tick()
        self.pages.setdefault(run_id, {})[number] = (list(member_ids), json.dumps(state, sort_keys=True))

    def last_run_page(self, name: str, run_id: str) -> RunPage | None:
        pages = self.pages.get(run_id, {})
        if not pages:
            return None
        number = max(pages)
        return RunPage(number=number, member_ids=pages[number][0], state=json.loads(pages[number][1]))

    def iter_run_pages(self, name: str, run_id: str) -> Iterator[RunPage]:
        for number, (ids, state) in sorted(self.pages.get(run_id, {}).items()):
            yield RunPage(number=number, member_ids=ids, state=json.loads(state))

    def put_blob(self, name: str, run_id: str, kind: str, payload: Any, *, now: datetime) -> int:
        self.faults.tick()
        self.blobs[(run_id, kind)] = json.dumps(payload)
        return 1

    def load_blob(self, name: str, run_id: str, kind: str) -> Any:
        raw = self.blobs.get((run_id, kind))
        return json.loads(raw) if raw is not None else None

    def put_bytes(
        self, name: str, run_id: str, kind: str, payload: bytes | Iterable[Buffer], *, now: datetime
    ) -> int:
        self.faults.tick()
        self.byte_blobs[(run_id, kind)] = payload if isinstance(payload, bytes) else b"".join(payload)
        return 1

    def load_bytes(self, name: str, run_id: str, kind: str) -> bytes | None:
        return self.byte_blobs.get((run_id, kind))

    def put_usage_snapshot(self, at: datetime, run_id: str, snapshot: Mapping[str, Any]) -> None:
        self.faults.tick()
        self.snapshots[run_id] = json.loads(json.dumps(snapshot))


def aux_stored(state: FakeStateStore) -> Callable[[], bool]:
    """True once the run's complete aux is stored (for FakeDeadline.count_when)."""
    return lambda: any(kind == "aux" for _run_id, kind in state.byte_blobs)


@dataclass
class FakeDeadline:
    """Runs low after `checks_before_low` checks (None: never), or whenever `low_when()` says so.

    The aux checks each time one of its requests finishes, a number that depends on thread timing:
    `count_when` counts only the checks made while it holds (e.g. once the aux is stored)."""

    checks_before_low: int | None = None
    checks: int = 0
    low_when: Callable[[], bool] | None = None
    count_when: Callable[[], bool] | None = None

    def remaining_ms(self) -> int:
        return 600_000

    def running_low(self) -> bool:
        if self.low_when is not None and self.low_when():
            return True
        if self.count_when is not None and not self.count_when():
            return False
        self.checks += 1
        return self.checks_before_low is not None and self.checks > self.checks_before_low
