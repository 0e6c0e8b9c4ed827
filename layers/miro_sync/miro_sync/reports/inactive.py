"""Which paid seats sit idle, what they cost, and how that splits by license, age and team.

A seat is inactive when its member is active in Miro (suspended members hold no license), holds a
paid license (price > 0) and was last seen before the cutoff, or never. "Last seen" is the newest
of Miro's lastActivityAt and the signals the other functions record (audit sign-ins, other audit
activity, board events); MembersTable keeps that newest value as the BySeat sort key, so the whole
selection is one Query per paid license. External users and team guests are listed apart: they are
not billed like members and offboarding cannot act on them (SCIM does not see them).

`--offboard` acts on a narrower selection (`InactiveReport.offboard_selection`): a seat whose licence
was assigned inside the inactivity window, or whose member miro-sync first saw inside it with no
activity on record, is idle only because it is new, and is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import TYPE_CHECKING, Protocol

from miro_sync.reports.prices import SeatPrices
from miro_sync.store.dynamo import iso_utc

if TYPE_CHECKING:
    from miro_sync.store.members import MemberRecord

ACTIVE_STATUS = "active"
ADMIN_ROLE = "organization_internal_admin"
NOT_ACTIONABLE_ROLES: frozenset[str] = frozenset(
    {"organization_external_user", "organization_team_guest_user"}
)

# Attribute of MemberRecord -> how the report names that source of "last seen". Order breaks ties.
LAST_SEEN_SOURCES: tuple[tuple[str, str], ...] = (
    ("last_activity_at", "miro"),
    ("last_sign_in_at", "audit sign-in"),
    ("last_audit_activity_at", "audit log"),
    ("last_board_activity_at", "board event"),
)
NEVER = "never"
TOP_TEAMS = 10


class SeatSource(Protocol):
    """The read side the report needs; `MembersRepository` is the real one."""

    def query_seats(self, status: str, license: str, last_seen_before: str) -> Iterable[MemberRecord]: ...


@dataclass(frozen=True)
class InactiveSeat:
    member_id: str
    email: str
    license: str
    role: str
    last_seen_at: datetime | None
    last_seen_source: str  # one of LAST_SEEN_SOURCES' names, or "never"
    days_inactive: int | None  # None = never seen
    teams: tuple[str, ...]  # team names where known, else ids
    boards_owned: int
    monthly_cost: Decimal
    license_assigned_at: datetime | None = None  # Miro's licenseAssignedAt
    first_seen_at: datetime | None = None  # when the members sync first recorded the member
    display_name: str | None = None  # the full name SCIM gives (None until SCIM named the member)
    admin_roles: tuple[str, ...] = ()  # admin role names ("Content Admin", custom role names)

    @property
    def role_label(self) -> str:
        """The role without Miro's prefix, with the admin role names: "internal_admin (Content Admin)"."""
        role = self.role.removeprefix("organization_")
        return f"{role} ({', '.join(self.admin_roles)})" if self.admin_roles else role

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN_ROLE

    def new_in_window(self, cutoff: datetime) -> str | None:
        """Why this seat is idle only because it is new (None when it is not): its licence was assigned
        at or after `cutoff`, or miro-sync first saw the member at or after `cutoff` and no activity of
        theirs is on record. (Activity before the cutoff proves the member existed before the window:
        then a recent first sighting only means miro-sync started watching recently.)"""
        if self.license_assigned_at is not None and self.license_assigned_at >= cutoff:
            return f"licence assigned {self.license_assigned_at.astimezone(UTC):%Y-%m-%d}"
        if self.first_seen_at is not None and self.first_seen_at >= cutoff and self.last_seen_at is None:
            return f"first seen {self.first_seen_at.astimezone(UTC):%Y-%m-%d}, no activity yet"
        return None


@dataclass(frozen=True)
class Tally:
    """A count of seats and what they cost per month."""

    label: str
    seats: int = 0
    monthly_cost: Decimal = Decimal("0")

    def add(self, cost: Decimal) -> Tally:
        return Tally(self.label, self.seats + 1, self.monthly_cost + cost)


@dataclass(frozen=True)
class InactiveReport:
    generated_at: datetime
    days: int
    cutoff: datetime
    prices: SeatPrices
    seats: tuple[InactiveSeat, ...]  # billable and actionable: what `--offboard` acts on
    external: tuple[InactiveSeat, ...]  # external users and guests on paid licenses: listed apart
    paid_seats_total: int | None = None  # active paid seats of any activity, when counts were given
    paid_monthly_total: Decimal | None = None
    by_license: tuple[Tally, ...] = ()
    by_age: tuple[Tally, ...] = ()
    top_teams: tuple[Tally, ...] = ()
    team_names_known: bool = field(default=False)

    @property
    def inactive_seats(self) -> int:
        return len(self.seats)

    @property
    def reclaimable_monthly(self) -> Decimal:
        return sum((seat.monthly_cost for seat in self.seats), Decimal("0"))

    @property
    def reclaimable_annual(self) -> Decimal:
        return self.reclaimable_monthly * 12

    @property
    def external_monthly(self) -> Decimal:
        return sum((seat.monthly_cost for seat in self.external), Decimal("0"))

    @property
    def inactive_share(self) -> float | None:
        """Inactive billable seats as a share of all active paid seats (0..1), if known."""
        if not self.paid_seats_total:
            return None
        return self.inactive_seats / self.paid_seats_total

    @property
    def boards_owned(self) -> int:
        """Boards owned by the reclaimable seats (each seat's count is in its row)."""
        return sum(seat.boards_owned for seat in self.seats)

    @property
    def external_boards_owned(self) -> int:
        return sum(seat.boards_owned for seat in self.external)

    @property
    def emails(self) -> list[str]:
        return [seat.email for seat in self.seats]

    def offboard_selection(self) -> tuple[tuple[InactiveSeat, ...], tuple[tuple[InactiveSeat, str], ...]]:
        """The seats `--offboard` may act on, and those left out with the reason: new in the window."""
        selected: list[InactiveSeat] = []
        left_out: list[tuple[InactiveSeat, str]] = []
        for seat in self.seats:
            why = seat.new_in_window(self.cutoff)
            if why is None:
                selected.append(seat)
            else:
                left_out.append((seat, why))
        return tuple(selected), tuple(left_out)


def last_seen(record: MemberRecord) -> tuple[datetime | None, str]:
    """The newest activity signal of `record` and which source it came from."""
    newest: datetime | None = None
    source = NEVER
    for attribute, name in LAST_SEEN_SOURCES:
        moment: datetime | None = getattr(record, attribute)
        if moment is not None and (newest is None or moment > newest):
            newest, source = moment, name
    return newest, source


def age_bucket_edges(days: int) -> tuple[int, ...]:
    """Lower edges (in days) of the age buckets: the threshold, then half a year and a year if later."""
    return (days, *(edge for edge in (180, 365) if edge > days))


def age_bucket_label(days_inactive: int | None, edges: tuple[int, ...]) -> str:
    if days_inactive is None:
        return "never active"
    label = f"{edges[-1]}+ days"
    for lower, upper in pairwise(edges):
        if lower <= days_inactive < upper:
            return f"{lower}-{upper - 1} days"
    return label


def build_inactive_report(
    source: SeatSource,
    *,
    days: int,
    now: datetime,
    prices: SeatPrices,
    team_names: Mapping[str, str] | None = None,
    seat_counts: Mapping[tuple[str, str], int] | None = None,
) -> InactiveReport:
    """Select the inactive paid seats from `source` and total them.

    `seat_counts` ((status, license) -> members, e.g. from `SeatCounts`) adds the "of how many"
    context; `team_names` (team id -> name) makes the team column readable.
    """
    if days <= 0:
        raise ValueError("days must be a positive number of days")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    cutoff = now - timedelta(days=days)
    cutoff_key = iso_utc(cutoff)
    names = team_names or {}
    billable: list[InactiveSeat] = []
    external: list[InactiveSeat] = []
    for license in prices.paid_licenses:
        price = prices.price(license)
        for record in source.query_seats(ACTIVE_STATUS, license, cutoff_key):
            seen_at, seen_source = last_seen(record)
            # The index already filtered on lastSeenAt; re-check so the report never lists a member
            # whose record says otherwise (e.g. an index entry lagging a signal write).
            if seen_at is not None and seen_at >= cutoff:
                continue
            seat = InactiveSeat(
                member_id=record.member_id,
                email=record.email,
                license=record.license,
                role=record.role,
                last_seen_at=seen_at,
                last_seen_source=seen_source,
                days_inactive=None if seen_at is None else (now - seen_at).days,
                teams=tuple(names.get(team, team) for team in record.teams),
                boards_owned=record.boards_owned,
                monthly_cost=price,
                license_assigned_at=record.license_assigned_at,
                first_seen_at=record.first_seen_at,
                display_name=record.display_name,
                admin_roles=tuple(record.admin_roles),
            )
            (external if record.role in NOT_ACTIONABLE_ROLES else billable).append(seat)
    billable.sort(key=_oldest_first)
    external.sort(key=_oldest_first)

    paid_total: int | None = None
    paid_monthly: Decimal | None = None
    if seat_counts is not None:
        paid = [
            (license, count)
            for (status, license), count in seat_counts.items()
            if status == ACTIVE_STATUS and prices.is_paid(license)
        ]
        paid_total = sum(count for _, count in paid)
        paid_monthly = sum((prices.price(license) * count for license, count in paid), Decimal("0"))

    return InactiveReport(
        generated_at=now,
        days=days,
        cutoff=cutoff,
        prices=prices,
        seats=tuple(billable),
        external=tuple(external),
        paid_seats_total=paid_total,
        paid_monthly_total=paid_monthly,
        by_license=_tally(billable, lambda seat: [seat.license]),
        by_age=_tally_by_age(billable, days),
        top_teams=_tally(billable, lambda seat: list(seat.teams) or ["(no team)"])[:TOP_TEAMS],
        team_names_known=bool(names),
    )


def _oldest_first(seat: InactiveSeat) -> tuple[int, datetime, str]:
    never_first = 0 if seat.last_seen_at is None else 1
    return (never_first, seat.last_seen_at or datetime.min.replace(tzinfo=UTC), seat.email)


def _tally(seats: Iterable[InactiveSeat], keys_of: _KeysOf) -> tuple[Tally, ...]:
    """Seats and cost per key, biggest cost first. A seat in several teams counts in each of them."""
    tallies: dict[str, Tally] = {}
    for seat in seats:
        for key in keys_of(seat):
            tallies[key] = tallies.get(key, Tally(key)).add(seat.monthly_cost)
    return tuple(sorted(tallies.values(), key=lambda tally: (-tally.monthly_cost, -tally.seats, tally.label)))


def _tally_by_age(seats: Iterable[InactiveSeat], days: int) -> tuple[Tally, ...]:
    edges = age_bucket_edges(days)
    labels = [age_bucket_label(edge, edges) for edge in edges] + [age_bucket_label(None, edges)]
    tallies = {label: Tally(label) for label in labels}
    for seat in seats:
        label = age_bucket_label(seat.days_inactive, edges)
        tallies[label] = tallies[label].add(seat.monthly_cost)
    return tuple(tallies[label] for label in labels)


class _KeysOf(Protocol):
    def __call__(self, seat: InactiveSeat, /) -> list[str]: ...
