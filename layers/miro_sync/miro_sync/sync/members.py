"""Members sync: Miro organization members (+ teams, board ownership, SCIM ids) into MembersTable.

One run goes through phases, each resumable from StateTable:

1. ``aux``: team memberships (teams L1 + team members L2), board owners (``GET /v2/boards`` paged
   once, L1, grouped by owner: one request per 50 boards instead of one per member), the
   organization (full licenses purchased) and, on the very first run only, the SCIM id of every
   user (``GET /Users`` paged once, joined on userName = email). Later runs look SCIM ids up only
   for the few internal members that still lack one. Stored as compressed blobs for the run.
2. ``members``: pages ``/v2/orgs/{org}/members``. Each page is handed to a single writer thread
   (BatchGetItem of the page's items, fingerprint comparison, batched puts for new members,
   conditional updates for changed ones, then the page record = checkpoint), while the main
   thread already fetches the next page. At most two pages are in memory.
3. ``removals``: only after the listing completed. Members of the previous complete run's page
   records that this run did not list are marked deprovisioned (never deleted). Memory: the set
   of this run's member ids (~100 B per member); no Scan.
4. ``finish``: the usage snapshot, then the checkpoint returns to idle.

Timestamps written for a run (firstSeenAt, lastChangedAt, removedAt) are the run's start time, so a
run interrupted any number of times writes exactly what an uninterrupted run would.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from miro_sync.miro.errors import MiroAuthError, MiroNotFound
from miro_sync.miro.models import (
    BoardsPage,
    MembersPage,
    Organization,
    OrgMember,
    ScimUser,
    TeamMembersPage,
    TeamsPage,
)
from miro_sync.store.dynamo import iso_utc, parse_iso
from miro_sync.store.members import (
    STATUS_ACTIVE,
    ConcurrentChangeError,
    MemberRecord,
    build_member_record,
)
from miro_sync.store.state import RunPage, StoredCheckpoint

SYNC_NAME = "members"
INTERNAL_ROLES = frozenset({"organization_internal_admin", "organization_internal_user"})
UNPAID_LICENSES = frozenset({"free", "free_restricted"})
SCIM_RECHECK = timedelta(days=7)
_MAX_WRITE_ATTEMPTS = 5


# --- adapters (real ones: MiroRestClient, MiroScimClient, MembersRepository, StateRepository) -----


class MembersSource(Protocol):
    def get_organization(self) -> Organization: ...

    def iter_member_pages(self, limit: int = 100, cursor: str | None = None) -> Iterator[MembersPage]: ...

    def iter_team_pages(self, cursor: str | None = None, limit: int = 100) -> Iterator[TeamsPage]: ...

    def iter_team_member_pages(
        self, team_id: str, cursor: str | None = None, limit: int = 100
    ) -> Iterator[TeamMembersPage]: ...

    def iter_board_pages(
        self, owner: str | None = None, team_id: str | None = None, offset: int = 0, limit: int = 50
    ) -> Iterator[BoardsPage]: ...


class ScimDirectory(Protocol):
    def iter_users(self, filter: str | None = None, count: int = 100) -> Iterator[ScimUser]: ...

    def find_user_by_username(self, email: str) -> ScimUser | None: ...


class MembersStore(Protocol):
    def get(self, member_id: str) -> MemberRecord | None: ...

    def get_many(self, member_ids: Iterable[str]) -> tuple[dict[str, MemberRecord], int]: ...

    def put_new(self, records: Sequence[MemberRecord]) -> int: ...

    def replace_synced(self, record: MemberRecord, *, expected_last_seen: str) -> None: ...

    def mark_deprovisioned(self, existing: MemberRecord, *, now: datetime) -> bool: ...


class StateStore(Protocol):
    def load_checkpoint(self, name: str) -> StoredCheckpoint | None: ...

    def acquire_lease(self, name: str, owner: str, *, now_ms: int, until_ms: int) -> bool: ...

    def save_checkpoint(self, name: str, owner: str, state: Mapping[str, Any]) -> None: ...

    def release_lease(self, name: str, owner: str) -> None: ...

    def put_run_page(
        self,
        name: str,
        run_id: str,
        number: int,
        member_ids: Sequence[str],
        state: Mapping[str, Any],
        *,
        now: datetime,
    ) -> None: ...

    def last_run_page(self, name: str, run_id: str) -> RunPage | None: ...

    def iter_run_pages(self, name: str, run_id: str) -> Iterator[RunPage]: ...

    def put_blob(self, name: str, run_id: str, kind: str, payload: Any, *, now: datetime) -> int: ...

    def load_blob(self, name: str, run_id: str, kind: str) -> Any: ...

    def put_usage_snapshot(self, at: datetime, run_id: str, snapshot: Mapping[str, Any]) -> None: ...


class DeadlineWatch(Protocol):
    def remaining_ms(self) -> int: ...

    def running_low(self) -> bool: ...


# --- errors and results ---------------------------------------------------------------------------


class MembersSyncError(RuntimeError):
    """The run cannot continue; the message says why and what to fix. Nobody was deprovisioned."""


class IncompleteListingError(MembersSyncError):
    """The member listing looks incomplete; removals are refused."""


@dataclass
class MembersSyncResult:
    outcome: str  # "complete" | "continue" | "busy"
    run_id: str | None = None
    resumed: bool = False
    pages: int = 0
    fetched: int = 0
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    write_requests: int = 0
    read_requests: int = 0
    scim_lookups: int = 0
    snapshot: dict[str, Any] | None = None


@dataclass
class _Totals:
    """Running counts over the listing, stored in every page record (JSON-able)."""

    members: int = 0
    by_license: Counter[str] = field(default_factory=Counter)
    by_role: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    inactive_seats: Counter[str] = field(default_factory=Counter)
    never_seen_seats: int = 0

    def add(self, record: MemberRecord, *, run_started: datetime, thresholds: Sequence[int]) -> None:
        self.members += 1
        self.by_license[record.license] += 1
        self.by_role[record.role] += 1
        self.by_status[record.status] += 1
        if record.status != STATUS_ACTIVE or record.license in UNPAID_LICENSES:
            return
        seen = record.last_seen_at
        if seen is None:
            self.never_seen_seats += 1
        for days in thresholds:
            if seen is None or seen < run_started - timedelta(days=days):
                self.inactive_seats[str(days)] += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "members": self.members,
            "byLicense": dict(self.by_license),
            "byRole": dict(self.by_role),
            "byStatus": dict(self.by_status),
            "inactiveSeats": dict(self.inactive_seats),
            "neverSeenSeats": self.never_seen_seats,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Totals:
        return cls(
            members=int(data.get("members", 0)),
            by_license=Counter(data.get("byLicense", {})),
            by_role=Counter(data.get("byRole", {})),
            by_status=Counter(data.get("byStatus", {})),
            inactive_seats=Counter(data.get("inactiveSeats", {})),
            never_seen_seats=int(data.get("neverSeenSeats", 0)),
        )


@dataclass
class _Aux:
    teams: dict[str, list[str]]
    boards_owned: dict[str, int]
    boards_total: int
    full_licenses_purchased: int | None
    scim_ids: dict[str, str] | None  # email -> SCIM id; None when not paged this run

    def to_json(self) -> dict[str, Any]:
        return {
            "teams": self.teams,
            "boardsOwned": self.boards_owned,
            "boardsTotal": self.boards_total,
            "fullLicensesPurchased": self.full_licenses_purchased,
            "scimIds": self.scim_ids,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Aux:
        return cls(
            teams=data["teams"],
            boards_owned=data["boardsOwned"],
            boards_total=int(data["boardsTotal"]),
            full_licenses_purchased=data.get("fullLicensesPurchased"),
            scim_ids=data.get("scimIds"),
        )


def _auth_failure(error: MiroAuthError, what: str) -> MembersSyncError:
    needs = " and ".join(
        part
        for part in (
            f"the scope {error.required_scope}" if error.required_scope else "",
            f"the role {error.required_role}" if error.required_role else "",
        )
        if part
    )
    hint = f"; the token needs {needs}" if needs else ""
    return MembersSyncError(
        f"Miro refused {what} (HTTP {error.status}){hint}. Nothing was marked deprovisioned."
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MembersSync:
    def __init__(
        self,
        *,
        miro: MembersSource,
        scim: ScimDirectory | None,
        members: MembersStore,
        state: StateStore,
        clock: Callable[[], datetime] = _utc_now,
        page_size: int = 100,
        inactive_thresholds_days: Sequence[int] = (30, 60, 90),
        log: Callable[[str, Mapping[str, Any]], None] | None = None,
    ) -> None:
        self._miro = miro
        self._scim = scim
        self._members = members
        self._state = state
        self._clock = clock
        self._page_size = page_size
        self._thresholds = tuple(inactive_thresholds_days)
        self._log = log or (lambda _message, _fields: None)

    # --- entry point -----------------------------------------------------------------------------

    def run(self, *, invocation_id: str, deadline: DeadlineWatch) -> MembersSyncResult:
        now = self._clock()
        now_ms = int(now.timestamp() * 1000)
        if not self._state.acquire_lease(
            SYNC_NAME, invocation_id, now_ms=now_ms, until_ms=now_ms + max(deadline.remaining_ms(), 60_000)
        ):
            self._log("another invocation holds the members sync lease", {})
            return MembersSyncResult(outcome="busy")
        try:
            return self._run_locked(invocation_id, deadline, now)
        finally:
            self._state.release_lease(SYNC_NAME, invocation_id)

    def _run_locked(self, owner: str, deadline: DeadlineWatch, now: datetime) -> MembersSyncResult:
        stored = self._state.load_checkpoint(SYNC_NAME)
        state = dict(stored.state) if stored else {}
        result = MembersSyncResult(outcome="continue")
        if state.get("runId") and state.get("phase") not in (None, "idle"):
            result.resumed = True
            state["invocations"] = int(state.get("invocations", 1)) + 1
        else:
            state.update(
                runId=f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
                phase="aux",
                startedAt=iso_utc(now),
                invocations=1,
                fullScim=self._scim is not None and not state.get("lastCompleteRunId"),
            )
        self._state.save_checkpoint(SYNC_NAME, owner, state)
        run_id: str = state["runId"]
        result.run_id = run_id
        started = parse_iso(state["startedAt"]) or now
        self._log(
            "members sync invocation", {"runId": run_id, "phase": state["phase"], "resumed": result.resumed}
        )

        if state["phase"] == "aux":
            self._collect_aux(run_id, bool(state.get("fullScim")), now)
            state["phase"] = "members"
            self._state.save_checkpoint(SYNC_NAME, owner, state)
            if deadline.running_low():
                return result

        aux_json = self._state.load_blob(SYNC_NAME, run_id, "aux")
        if aux_json is None:  # expired or never completed: collect it again
            self._collect_aux(run_id, bool(state.get("fullScim")), now)
            aux_json = self._state.load_blob(SYNC_NAME, run_id, "aux")
        aux = _Aux.from_json(aux_json)

        if state["phase"] == "members":
            complete = self._list_members(run_id, aux, started, deadline, result)
            if not complete:
                return result
            state["phase"] = "removals"
            self._state.save_checkpoint(SYNC_NAME, owner, state)

        last_page = self._state.last_run_page(SYNC_NAME, run_id)
        totals = _Totals.from_json(last_page.state["totals"]) if last_page else _Totals()
        removed_since_last_run = 0
        if state["phase"] == "removals":
            removed_since_last_run = self._apply_removals(
                run_id, state.get("lastCompleteRunId"), totals.members, started, result
            )
            state["phase"] = "finish"
            state["removedSinceLastRun"] = removed_since_last_run
            self._state.save_checkpoint(SYNC_NAME, owner, state)

        snapshot = self._snapshot(run_id, started, totals, aux, int(state.get("removedSinceLastRun", 0)))
        self._state.put_usage_snapshot(started, run_id, snapshot)
        result.snapshot = snapshot
        state.update(
            phase="idle", runId=None, lastCompleteRunId=run_id, lastCompleteAt=iso_utc(self._clock())
        )
        state.pop("removedSinceLastRun", None)
        self._state.save_checkpoint(SYNC_NAME, owner, state)
        result.outcome = "complete"
        self._log(
            "members sync complete", {"runId": run_id, **{k: v for k, v in snapshot.items() if k != "runId"}}
        )
        return result

    # --- phase 1: teams, boards, organization, SCIM ids ------------------------------------------

    def _collect_aux(self, run_id: str, full_scim: bool, now: datetime) -> None:
        if self._state.load_blob(SYNC_NAME, run_id, "aux") is not None:
            return  # collected before an interruption
        try:
            organization = self._miro.get_organization()
        except MiroAuthError as error:
            raise _auth_failure(error, "reading the organization") from None
        teams: dict[str, list[str]] = {}
        try:
            for teams_page in self._miro.iter_team_pages():
                for team in teams_page.data:
                    for members_page in self._miro.iter_team_member_pages(team.id):
                        for team_member in members_page.data:
                            teams.setdefault(team_member.member_id, []).append(team.id)
        except MiroAuthError as error:
            raise _auth_failure(error, "listing teams and team members") from None
        boards_owned: Counter[str] = Counter()
        boards_total = 0
        try:
            for boards_page in self._miro.iter_board_pages():
                for board in boards_page.data:
                    boards_total += 1
                    if board.owner is not None:
                        boards_owned[board.owner.id] += 1
        except MiroAuthError as error:
            raise _auth_failure(error, "listing boards") from None
        scim_ids: dict[str, str] | None = None
        if full_scim and self._scim is not None:
            scim_ids = {}
            try:
                for user in self._scim.iter_users(count=100):
                    scim_ids[user.user_name.strip().lower()] = user.id
            except MiroAuthError as error:
                raise _auth_failure(error, "listing SCIM users") from None
        aux = _Aux(
            teams={member: sorted(set(ids)) for member, ids in teams.items()},
            boards_owned=dict(boards_owned),
            boards_total=boards_total,
            full_licenses_purchased=organization.full_licenses_purchased,
            scim_ids=scim_ids,
        )
        self._state.put_blob(SYNC_NAME, run_id, "aux", aux.to_json(), now=now)
        self._log(
            "members sync collected teams and boards",
            {
                "runId": run_id,
                "teamMembers": len(teams),
                "boards": boards_total,
                "scimUsers": len(scim_ids or {}),
            },
        )

    # --- phase 2: the listing --------------------------------------------------------------------

    def _list_members(
        self, run_id: str, aux: _Aux, started: datetime, deadline: DeadlineWatch, result: MembersSyncResult
    ) -> bool:
        """Page through members from the last checkpoint. True when the listing is complete."""
        last_page = self._state.last_run_page(SYNC_NAME, run_id)
        if last_page is not None and last_page.state.get("cursor") is None:
            return True
        cursor: str | None = last_page.state["cursor"] if last_page else None
        page_number = last_page.number if last_page else 0
        totals = _Totals.from_json(last_page.state["totals"]) if last_page else _Totals()

        # One writer thread: page writes stay in order (so the page record is a valid checkpoint)
        # and overlap with fetching the next page; at most one page waits, bounding memory.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="members-writer") as writer:
            pending: Future[None] | None = None
            pages = self._miro.iter_member_pages(limit=self._page_size, cursor=cursor)
            try:
                while True:
                    try:
                        page = next(pages)
                    except StopIteration:
                        break
                    except MiroAuthError as error:
                        raise _auth_failure(error, "listing organization members") from None
                    page_number += 1
                    result.pages += 1
                    result.fetched += len(page.data)
                    # Each page's task first waits for the previous one: if that failed, this page
                    # is not stored either, so page records stay contiguous and the last one is a
                    # correct resume point (a later page without its predecessor would make the
                    # skipped members look removed).
                    work = writer.submit(
                        self._store_page_after,
                        pending,
                        run_id,
                        page_number,
                        page,
                        aux,
                        started,
                        totals,
                        result,
                    )
                    if pending is not None:
                        pending.result()
                    pending = work
                    if page.next_cursor is None:
                        break
                    if deadline.running_low():
                        pending.result()
                        self._log("members sync hands over", {"runId": run_id, "page": page_number})
                        return False
                if pending is not None:
                    pending.result()
            finally:
                close = getattr(pages, "close", None)
                if close is not None:
                    close()
        if page_number == 0:
            # Not even one page (an empty organization has its caller at least): record the
            # completed, empty listing so removals can judge it.
            self._state.put_run_page(
                SYNC_NAME, run_id, 1, [], {"cursor": None, "totals": totals.to_json()}, now=started
            )
        return True

    def _store_page_after(
        self,
        previous: Future[None] | None,
        run_id: str,
        page_number: int,
        page: MembersPage,
        aux: _Aux,
        started: datetime,
        totals: _Totals,
        result: MembersSyncResult,
    ) -> None:
        if previous is not None:
            previous.result()
        self._store_page(run_id, page_number, page, aux, started, totals, result)

    def _store_page(
        self,
        run_id: str,
        page_number: int,
        page: MembersPage,
        aux: _Aux,
        started: datetime,
        totals: _Totals,
        result: MembersSyncResult,
    ) -> None:
        listed = {member.id: member for member in page.data}  # a repeated id counts once
        existing, reads = self._members.get_many(listed)
        result.read_requests += reads
        new_records: list[MemberRecord] = []
        changed: list[tuple[MemberRecord, MemberRecord]] = []
        for member in listed.values():
            old = existing.get(member.id)
            record = self._build(member, old, aux, started, result)
            totals.add(record, run_started=started, thresholds=self._thresholds)
            if old is None:
                new_records.append(record)
            elif old.fingerprint != record.fingerprint:
                changed.append((record, old))
            else:
                result.unchanged += 1
        if new_records:
            result.write_requests += self._members.put_new(new_records)
            result.written += len(new_records)
        for record, old in changed:
            self._replace(record, old, aux, started, result)
        self._state.put_run_page(
            SYNC_NAME,
            run_id,
            page_number,
            list(listed),
            {"cursor": page.next_cursor, "totals": totals.to_json()},
            now=started,
        )

    def _build(
        self,
        member: OrgMember,
        old: MemberRecord | None,
        aux: _Aux,
        started: datetime,
        result: MembersSyncResult,
    ) -> MemberRecord:
        scim_id: str | None = None
        checked_at: datetime | None = None
        email = member.email.strip().lower()
        if aux.scim_ids is not None:
            scim_id = aux.scim_ids.get(email)
            if scim_id is None and member.role in INTERNAL_ROLES:
                checked_at = started  # not in SCIM now: look again only after SCIM_RECHECK
        elif self._needs_scim_lookup(member, old, started):
            result.scim_lookups += 1
            checked_at = started
            try:
                user = self._scim.find_user_by_username(email) if self._scim else None
            except MiroNotFound:
                user = None
            except MiroAuthError as error:
                raise _auth_failure(error, "looking up SCIM users") from None
            scim_id = user.id if user else None
        return build_member_record(
            member,
            old,
            teams=aux.teams.get(member.id, ()),
            boards_owned=aux.boards_owned.get(member.id, 0),
            scim_id=scim_id,
            scim_checked_at=checked_at,
            now=started,
        )

    def _needs_scim_lookup(self, member: OrgMember, old: MemberRecord | None, started: datetime) -> bool:
        if self._scim is None or member.role not in INTERNAL_ROLES:
            return False  # guests and external users are invisible to SCIM
        if old is not None and old.scim_id:
            return False
        checked = old.scim_checked_at if old is not None else None
        return checked is None or checked < started - SCIM_RECHECK

    def _replace(
        self, record: MemberRecord, old: MemberRecord, aux: _Aux, started: datetime, result: MembersSyncResult
    ) -> None:
        for _attempt in range(_MAX_WRITE_ATTEMPTS):
            try:
                self._members.replace_synced(record, expected_last_seen=old.last_seen_key)
                result.write_requests += 1
                result.written += 1
                return
            except ConcurrentChangeError:
                result.write_requests += 1
                # A signal writer moved lastSeenAt: rebuild on the fresh item, keeping its signals.
                fresh = self._members.get(record.member_id)
                if fresh is None:
                    raise MembersSyncError(
                        f"member {record.member_id} vanished from the table mid-run"
                    ) from None
                old = fresh
                record = record.model_copy(
                    update={
                        "first_seen_at": fresh.first_seen_at or record.first_seen_at,
                        "last_sign_in_at": fresh.last_sign_in_at,
                        "last_audit_activity_at": fresh.last_audit_activity_at,
                        "last_board_activity_at": fresh.last_board_activity_at,
                    }
                )
                if record.fingerprint == fresh.fingerprint:
                    result.unchanged += 1
                    return
        raise MembersSyncError(f"member {record.member_id} kept changing during the write; retry the run")

    # --- phase 3: removals -----------------------------------------------------------------------

    def _apply_removals(
        self,
        run_id: str,
        previous_run_id: str | None,
        listed_now: int,
        started: datetime,
        result: MembersSyncResult,
    ) -> int:
        if not previous_run_id:
            return 0
        current: set[str] = set()
        for page in self._state.iter_run_pages(SYNC_NAME, run_id):
            current.update(page.member_ids)
        gone: list[str] = []
        previous_count = 0
        for page in self._state.iter_run_pages(SYNC_NAME, previous_run_id):
            previous_count += len(page.member_ids)
            gone.extend(member_id for member_id in page.member_ids if member_id not in current)
        if not current and previous_count:
            raise IncompleteListingError(
                f"Miro listed no members although the previous run listed {previous_count}; "
                "refusing to mark everyone deprovisioned"
            )
        for start in range(0, len(gone), 100):
            batch = gone[start : start + 100]
            existing, reads = self._members.get_many(batch)
            result.read_requests += reads
            for member_id in batch:
                record = existing.get(member_id)
                if record is not None and self._members.mark_deprovisioned(record, now=started):
                    result.removed += 1
                    result.write_requests += 1
        del current
        return len(gone)

    # --- phase 4: usage snapshot -----------------------------------------------------------------

    def _snapshot(
        self, run_id: str, started: datetime, totals: _Totals, aux: _Aux, removed: int
    ) -> dict[str, Any]:
        full_assigned = totals.by_license.get("full", 0)
        return {
            "runId": run_id,
            "at": iso_utc(started),
            "members": totals.members,
            "byLicense": dict(sorted(totals.by_license.items())),
            "byRole": dict(sorted(totals.by_role.items())),
            "byStatus": dict(sorted(totals.by_status.items())),
            "removedSinceLastRun": removed,
            "fullLicensesPurchased": aux.full_licenses_purchased,
            "fullLicensesAssigned": full_assigned,
            "fullLicensesFree": (
                aux.full_licenses_purchased - full_assigned
                if aux.full_licenses_purchased is not None
                else None
            ),
            "boards": aux.boards_total,
            "membersOwningBoards": len(aux.boards_owned),
            "teamsMembers": len(aux.teams),
            "inactiveSeats": {
                days: totals.inactive_seats.get(days, 0) for days in map(str, self._thresholds)
            },
            "neverSeenSeats": totals.never_seen_seats,
        }
