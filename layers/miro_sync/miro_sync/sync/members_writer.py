"""Writing one page of members: BatchGetItem of the page's items, the records built with the aux
(teams, boards, SCIM ids), fingerprint comparison, batched puts for new members and conditional
updates for changed ones (rebuilt on the fresh item when a signal writer got there first)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from miro_sync.miro.errors import MiroAuthError, MiroNotFound
from miro_sync.miro.models import MembersPage, OrgMember
from miro_sync.store.members import ConcurrentChangeError, MemberRecord, TeamMembership, build_member_record
from miro_sync.sync.members_aux import Aux
from miro_sync.sync.members_ports import MembersStore, MembersSyncError, ScimDirectory, auth_failure
from miro_sync.sync.members_snapshot import Totals

INTERNAL_ROLES = frozenset({"organization_internal_admin", "organization_internal_user"})
SCIM_RECHECK = timedelta(days=7)
_MAX_WRITE_ATTEMPTS = 5


@dataclass
class PageOutcome:
    """What storing one page did; merged into the run's totals in page order."""

    member_ids: list[str]
    totals: Totals
    written: int = 0
    unchanged: int = 0
    write_requests: int = 0
    read_requests: int = 0
    scim_lookups: int = 0


class PageWriter:
    def __init__(
        self, *, members: MembersStore, scim: ScimDirectory | None, thresholds: Sequence[int]
    ) -> None:
        self._members = members
        self._scim = scim
        self._thresholds = tuple(thresholds)

    def store_page(self, page: MembersPage, aux: Aux, started: datetime) -> PageOutcome:
        listed = {member.id: member for member in page.data}  # a repeated id counts once
        outcome = PageOutcome(member_ids=list(listed), totals=Totals())
        existing, reads = self._members.get_many(listed)
        outcome.read_requests += reads
        new_records: list[MemberRecord] = []
        changed: list[tuple[MemberRecord, MemberRecord]] = []
        for member in listed.values():
            old = existing.get(member.id)
            record = self._build(member, old, aux, started, outcome)
            outcome.totals.add(record, run_started=started, thresholds=self._thresholds)
            if old is None:
                new_records.append(record)
            elif old.fingerprint != record.fingerprint:
                changed.append((record, old))
            else:
                outcome.unchanged += 1
        if new_records:
            outcome.write_requests += self._members.put_new(new_records)
            outcome.written += len(new_records)
        for record, old in changed:
            self._replace(record, old, outcome)
        return outcome

    def _build(
        self, member: OrgMember, old: MemberRecord | None, aux: Aux, started: datetime, outcome: PageOutcome
    ) -> MemberRecord:
        scim_id: str | None = None
        display_name: str | None = None
        checked_at: datetime | None = None
        email = member.email.strip().lower()
        if aux.scim_ids is not None:
            scim_id, display_name = aux.scim_user(email)
            if scim_id is None and member.role in INTERNAL_ROLES:
                checked_at = started  # not in SCIM now: look again only after SCIM_RECHECK
        elif self._scim is not None and self._needs_scim_lookup(member, old, started):
            outcome.scim_lookups += 1
            checked_at = started
            scim_id, display_name = self._look_up_scim(self._scim, email)
        memberships = aux.teams.memberships_of(member.id)
        return build_member_record(
            member,
            old,
            teams=[team_id for team_id, _name, _role in memberships],
            team_memberships=[
                TeamMembership(id=team_id, name=name, role=role) for team_id, name, role in memberships
            ],
            boards_owned=aux.boards_owned.count(member.id),
            scim_id=scim_id,
            scim_checked_at=checked_at,
            display_name=display_name,
            now=started,
        )

    @staticmethod
    def _look_up_scim(scim: ScimDirectory, email: str) -> tuple[str | None, str | None]:
        """(SCIM id, display name) of the SCIM user with this email; (None, None) if there is none."""
        try:
            user = scim.find_user_by_username(email)
        except MiroNotFound:
            user = None
        except MiroAuthError as error:
            raise auth_failure(error, "looking up SCIM users") from None
        return (user.id, user.full_name) if user else (None, None)

    def _needs_scim_lookup(self, member: OrgMember, old: MemberRecord | None, started: datetime) -> bool:
        if member.role not in INTERNAL_ROLES:
            return False  # guests and external users are invisible to SCIM
        if old is not None and old.scim_id:
            return False
        checked = old.scim_checked_at if old is not None else None
        return checked is None or checked < started - SCIM_RECHECK

    def _replace(self, record: MemberRecord, old: MemberRecord, outcome: PageOutcome) -> None:
        for _attempt in range(_MAX_WRITE_ATTEMPTS):
            try:
                self._members.replace_synced(record, expected_last_seen=old.last_seen_key)
                outcome.write_requests += 1
                outcome.written += 1
                return
            except ConcurrentChangeError:
                outcome.write_requests += 1
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
                    outcome.unchanged += 1
                    return
        raise MembersSyncError(f"member {record.member_id} kept changing during the write; retry the run")
