"""License usage now (from MembersTable) and over time (the usage snapshots each members sync stores).

A snapshot is the JSON object `miro_sync.sync.members` stores in StateTable (`pk="snapshot#usage"`)
when a run completes. The fields read here: `members`, `byLicense` ({license: members listed by
Miro, active or suspended}), `byStatus`, `fullLicensesPurchased` (Miro's Organization field; null
when unknown), `inactiveSeats` ({"<days>": active paid seats not seen for that many days}),
`neverSeenSeats`, `boards` (boards in the organization) and `membersOwningBoards`. A stored item
that is not such an object is skipped and counted in
`LicenseReport.skipped_snapshots` rather than failing the whole history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from miro_sync.reports.prices import SeatPrices

STATUSES: tuple[str, ...] = ("active", "suspended", "deprovisioned")


@dataclass(frozen=True)
class UsageSnapshot:
    at: datetime
    members: int
    by_license: Mapping[str, int]  # members per license, active or suspended
    by_status: Mapping[str, int] = field(default_factory=dict)
    full_purchased: int | None = None
    inactive_seats: Mapping[int, int] = field(default_factory=dict)  # days -> inactive paid seats
    never_seen_seats: int | None = None
    boards: int | None = None  # boards in the organization at that run
    members_owning_boards: int | None = None

    def assigned_paid(self, prices: SeatPrices) -> int:
        return sum(count for license, count in self.by_license.items() if prices.is_paid(license))

    def inactive_at(self, days: int) -> int | None:
        return self.inactive_seats.get(days)


@dataclass(frozen=True)
class LicenseRow:
    license: str
    purchased: int | None
    active: int
    suspended: int
    deprovisioned: int
    monthly_price: Decimal

    @property
    def monthly_cost(self) -> Decimal:
        """What the assigned seats cost, or the purchased ones when more were bought than assigned."""
        billed = max(self.active, self.purchased or 0)
        return self.monthly_price * billed

    @property
    def unassigned(self) -> int | None:
        return None if self.purchased is None else self.purchased - self.active


@dataclass(frozen=True)
class LicenseReport:
    generated_at: datetime
    prices: SeatPrices
    rows: tuple[LicenseRow, ...]  # one per license with any member (or purchase)
    history: tuple[UsageSnapshot, ...]  # oldest first
    skipped_snapshots: int = 0

    @property
    def members_total(self) -> int:
        return sum(row.active + row.suspended + row.deprovisioned for row in self.rows)

    @property
    def paid_active(self) -> int:
        return sum(row.active for row in self.rows if self.prices.is_paid(row.license))

    @property
    def monthly_cost(self) -> Decimal:
        return sum((row.monthly_cost for row in self.rows), Decimal("0"))

    @property
    def boards(self) -> int | None:
        """Boards in the organization at the newest snapshot (None before the first complete sync)."""
        return self.history[-1].boards if self.history else None

    @property
    def members_owning_boards(self) -> int | None:
        return self.history[-1].members_owning_boards if self.history else None


def parse_usage_snapshot(at: datetime, data: Any) -> UsageSnapshot | None:
    """A snapshot from its stored JSON (run time `at` unless the JSON has its own), or None."""
    if not isinstance(data, Mapping) or not isinstance(data.get("byLicense"), Mapping):
        return None
    by_license = _counts(data["byLicense"])
    if by_license is None:
        return None
    by_status = _counts(data.get("byStatus") or {}) or {}
    inactive = _counts(data.get("inactiveSeats") or {}) or {}
    members = data.get("members")
    member_total = _count_or_none(members)
    purchased = data.get("fullLicensesPurchased")
    never = data.get("neverSeenSeats")
    return UsageSnapshot(
        at=_moment(data.get("at")) or at.astimezone(UTC),
        members=member_total if member_total is not None else sum(by_license.values()),
        by_license=by_license,
        by_status=by_status,
        full_purchased=_count_or_none(purchased),
        inactive_seats={int(days): n for days, n in inactive.items() if days.isdigit()},
        never_seen_seats=_count_or_none(never),
        boards=_count_or_none(data.get("boards")),
        members_owning_boards=_count_or_none(data.get("membersOwningBoards")),
    )


def _counts(raw: Any) -> dict[str, int] | None:
    if not isinstance(raw, Mapping) or not all(_is_count(value) for value in raw.values()):
        return None
    return {str(key): int(value) for key, value in raw.items()}


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else None


def _count_or_none(value: Any) -> int | None:
    return int(value) if _is_count(value) else None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def build_license_report(
    seat_counts: Mapping[tuple[str, str], int],
    snapshots: Iterable[tuple[datetime, Any]],
    *,
    now: datetime,
    prices: SeatPrices,
) -> LicenseReport:
    """Current usage from `seat_counts` ((status, license) -> members), purchases from the newest
    snapshot, and the trend from all `snapshots` ((run time, stored JSON), any order)."""
    history: list[UsageSnapshot] = []
    skipped = 0
    for at, data in snapshots:
        snapshot = parse_usage_snapshot(at, data)
        if snapshot is None:
            skipped += 1
        else:
            history.append(snapshot)
    history.sort(key=lambda snapshot: snapshot.at)
    purchased: dict[str, int] = {}
    if history and history[-1].full_purchased is not None:
        purchased["full"] = history[-1].full_purchased
    licenses = sorted(
        {license for (_status, license), count in seat_counts.items() if count} | set(purchased),
        key=lambda license: (not prices.is_paid(license), -prices.price(license), license),
    )
    rows = tuple(
        LicenseRow(
            license=license,
            purchased=purchased.get(license),
            active=seat_counts.get(("active", license), 0),
            suspended=seat_counts.get(("suspended", license), 0),
            deprovisioned=seat_counts.get(("deprovisioned", license), 0),
            monthly_price=prices.price(license),
        )
        for license in licenses
    )
    return LicenseReport(
        generated_at=now.astimezone(UTC),
        prices=prices,
        rows=rows,
        history=tuple(history),
        skipped_snapshots=skipped,
    )
