"""The counts a members run keeps over its listing (stored in every page record) and the usage
snapshot it stores at the end (`pk="snapshot#usage"`, read by miro_sync.reports.licenses)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from miro_sync.store.dynamo import iso_utc
from miro_sync.store.members import STATUS_ACTIVE, MemberRecord
from miro_sync.sync.members_aux import Aux

UNPAID_LICENSES = frozenset({"free", "free_restricted"})


@dataclass
class Totals:
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

    def merge(self, other: Totals) -> None:
        self.members += other.members
        self.by_license.update(other.by_license)
        self.by_role.update(other.by_role)
        self.by_status.update(other.by_status)
        self.inactive_seats.update(other.inactive_seats)
        self.never_seen_seats += other.never_seen_seats

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
    def from_json(cls, data: Mapping[str, Any]) -> Totals:
        return cls(
            members=int(data.get("members", 0)),
            by_license=Counter(data.get("byLicense", {})),
            by_role=Counter(data.get("byRole", {})),
            by_status=Counter(data.get("byStatus", {})),
            inactive_seats=Counter(data.get("inactiveSeats", {})),
            never_seen_seats=int(data.get("neverSeenSeats", 0)),
        )


def usage_snapshot(
    run_id: str, started: datetime, totals: Totals, aux: Aux, removed: int, thresholds: Sequence[int]
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
            aux.full_licenses_purchased - full_assigned if aux.full_licenses_purchased is not None else None
        ),
        "boards": aux.boards_total,
        "membersOwningBoards": len(aux.boards_owned),
        "teamsMembers": aux.teams.members,
        "inactiveSeats": {days: totals.inactive_seats.get(days, 0) for days in map(str, thresholds)},
        "neverSeenSeats": totals.never_seen_seats,
    }
