from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from miro_sync.reports.collect import collect_inactive
from miro_sync.reports.errors import NoSyncDataError
from miro_sync.reports.inactive import age_bucket_label, build_inactive_report
from miro_sync.reports.prices import SeatPrices, default_prices
from tests.unit.reports.fakes import FakeMembers, member

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def test_selects_active_paid_seats_not_seen_since_the_cutoff_or_never() -> None:
    members = FakeMembers(
        [
            member("old", last_activity_at=ago(120)),
            member("never"),
            member("recent", last_activity_at=ago(10)),
            member("free-old", license="free", last_activity_at=ago(300)),
            member("suspended-old", status="suspended", last_activity_at=ago(300)),
            member("trial-old", license="full_trial", last_activity_at=ago(95)),
        ]
    )

    report = build_inactive_report(members, days=90, now=NOW, prices=default_prices())

    assert [seat.member_id for seat in report.seats] == ["never", "old", "trial-old"]
    assert report.seats[0].last_seen_source == "never"
    assert report.seats[0].days_inactive is None
    assert report.seats[1].days_inactive == 120
    # One BySeat query per paid license, all on active seats, bounded by the cutoff.
    assert {(status, bound) for status, _license, bound in members.queries} == {
        ("active", "2025-12-01T12:00:00.000Z")
    }
    assert sorted(license for _s, license, _b in members.queries) == sorted(default_prices().paid_licenses)


def test_newest_signal_wins_and_is_named_as_the_source() -> None:
    members = FakeMembers(
        [
            member("board", last_activity_at=ago(200), last_board_activity_at=ago(5)),
            member("signin", last_activity_at=ago(200), last_sign_in_at=ago(100)),
            member("audit", last_audit_activity_at=ago(150)),
        ]
    )

    report = build_inactive_report(members, days=90, now=NOW, prices=default_prices())

    by_id = {seat.member_id: seat for seat in report.seats}
    assert set(by_id) == {"signin", "audit"}  # board activity 5 days ago keeps "board" off the list
    assert by_id["signin"].last_seen_source == "audit sign-in"
    assert by_id["signin"].last_seen_at == ago(100)
    assert by_id["audit"].last_seen_source == "audit log"


def test_guests_and_external_users_are_listed_apart_and_not_reclaimable() -> None:
    members = FakeMembers(
        [
            member("inside", last_activity_at=ago(100)),
            member("ext", license="occasional", role="organization_external_user"),
            member("guest", license="full", role="organization_team_guest_user", last_activity_at=ago(400)),
        ]
    )

    report = build_inactive_report(members, days=90, now=NOW, prices=default_prices())

    assert report.emails == ["inside@acme.example"]
    assert {seat.member_id for seat in report.external} == {"ext", "guest"}
    assert report.reclaimable_monthly == Decimal("20.00")
    assert report.external_monthly == Decimal("30.00")


def test_costs_totals_buckets_and_teams_add_up() -> None:
    prices = SeatPrices(monthly={"full": Decimal("16"), "occasional": Decimal("8")})
    members = FakeMembers(
        [
            member("a", last_activity_at=ago(100), teams=("t1", "t2"), boards_owned=3),
            member("b", last_activity_at=ago(200), teams=("t1",)),
            member("c", license="occasional", last_activity_at=ago(400)),
            member("d", license="occasional"),
            member("e", last_activity_at=ago(1)),
        ]
    )

    report = collect_inactive(
        members,
        members,
        table_name="members",
        days=90,
        now=NOW,
        prices=prices,
        team_names={"t1": "Design"},
    )

    assert report.inactive_seats == 4
    assert report.reclaimable_monthly == Decimal("48")
    assert report.reclaimable_annual == Decimal("576")
    assert report.paid_seats_total == 5
    assert report.paid_monthly_total == Decimal("64")
    assert report.inactive_share == pytest.approx(0.8)
    assert {t.label: (t.seats, t.monthly_cost) for t in report.by_license} == {
        "full": (2, Decimal("32")),
        "occasional": (2, Decimal("16")),
    }
    assert [(t.label, t.seats) for t in report.by_age] == [
        ("90-179 days", 1),
        ("180-364 days", 1),
        ("365+ days", 1),
        ("never active", 1),
    ]
    # A seat in two teams counts in both; unknown team names fall back to the id.
    assert [(t.label, t.seats, t.monthly_cost) for t in report.top_teams] == [
        ("Design", 2, Decimal("32")),
        ("(no team)", 2, Decimal("16")),
        ("t2", 1, Decimal("16")),
    ]
    seat_a = next(seat for seat in report.seats if seat.member_id == "a")
    assert seat_a.teams == ("Design", "t2")
    assert seat_a.boards_owned == 3


def test_age_buckets_follow_a_threshold_beyond_half_a_year() -> None:
    assert age_bucket_label(400, (365,)) == "365+ days"
    assert age_bucket_label(200, (200, 365)) == "200-364 days"
    assert age_bucket_label(None, (90, 180, 365)) == "never active"


def test_an_empty_members_table_means_no_sync_has_run() -> None:
    with pytest.raises(NoSyncDataError, match="no sync has run yet"):
        collect_inactive(
            FakeMembers([]), FakeMembers([]), table_name="m", days=90, now=NOW, prices=default_prices()
        )


@pytest.mark.parametrize("days", [0, -5])
def test_days_must_be_positive(days: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        build_inactive_report(FakeMembers([]), days=days, now=NOW, prices=default_prices())


signal = st.one_of(st.none(), st.integers(min_value=0, max_value=800).map(lambda d: ago(d)))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["full", "occasional", "free", "full_trial"]),
            st.sampled_from(["active", "suspended"]),
            st.sampled_from(["organization_internal_user", "organization_external_user"]),
            signal,
            signal,
            signal,
        ),
        max_size=25,
    ),
    st.integers(min_value=1, max_value=500),
)
def test_selection_matches_a_brute_force_reading_of_the_rules(
    rows: list[tuple[str, str, str, datetime | None, datetime | None, datetime | None]], days: int
) -> None:
    records = [
        member(
            f"m{i}",
            license=lic,
            status=status,
            role=role,
            last_activity_at=a,
            last_sign_in_at=s,
            last_board_activity_at=b,
        )
        for i, (lic, status, role, a, s, b) in enumerate(rows)
    ]
    prices = default_prices()

    report = build_inactive_report(FakeMembers(records), days=days, now=NOW, prices=prices)

    cutoff = NOW - timedelta(days=days)
    expected = {
        r.member_id
        for r in records
        if r.status == "active"
        and prices.is_paid(r.license)
        and r.role == "organization_internal_user"
        and (r.last_seen_at is None or r.last_seen_at < cutoff)
    }
    assert {seat.member_id for seat in report.seats} == expected
    assert report.reclaimable_monthly == sum(
        (prices.price(r.license) for r in records if r.member_id in expected), Decimal("0")
    )
