from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from miro_sync.reports.collect import collect_licenses
from miro_sync.reports.licenses import parse_usage_snapshot
from miro_sync.reports.prices import default_prices
from tests.unit.reports.fakes import FakeMembers, FakeSnapshots, Stored, member

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def sync_snapshot(at: datetime, *, full: int, purchased: int | None, inactive_90: int) -> dict[str, object]:
    """The shape miro_sync.sync.members stores at the end of a run."""
    return {
        "runId": "r",
        "at": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "members": full + 4,
        "byLicense": {"full": full, "free": 3, "occasional": 1},
        "byRole": {"organization_internal_user": full + 4},
        "byStatus": {"active": full + 3, "suspended": 1},
        "removedSinceLastRun": 0,
        "fullLicensesPurchased": purchased,
        "fullLicensesAssigned": full,
        "fullLicensesFree": None if purchased is None else purchased - full,
        "inactiveSeats": {"30": inactive_90 + 2, "90": inactive_90},
        "neverSeenSeats": 1,
    }


def test_a_snapshot_of_the_members_sync_is_read_with_its_counts() -> None:
    snapshot = parse_usage_snapshot(NOW, sync_snapshot(NOW, full=10, purchased=12, inactive_90=3))

    assert snapshot is not None
    assert snapshot.members == 14
    assert snapshot.full_purchased == 12
    assert snapshot.assigned_paid(default_prices()) == 11  # full + occasional
    assert snapshot.inactive_at(90) == 3
    assert snapshot.inactive_at(60) is None
    assert snapshot.never_seen_seats == 1


def test_unrecognisable_snapshots_are_skipped_not_fatal() -> None:
    assert parse_usage_snapshot(NOW, None) is None
    assert parse_usage_snapshot(NOW, {"members": 3}) is None
    assert parse_usage_snapshot(NOW, {"byLicense": {"full": "many"}}) is None


def test_current_rows_come_from_the_table_and_purchases_and_trend_from_snapshots() -> None:
    members = FakeMembers(
        [
            member("a"),
            member("b"),
            member("c", status="suspended"),
            member("d", status="deprovisioned"),
            member("e", license="free"),
        ]
    )
    history = FakeSnapshots(
        [
            Stored(
                NOW - timedelta(days=1),
                sync_snapshot(NOW - timedelta(days=1), full=3, purchased=5, inactive_90=1),
            ),
            Stored(
                NOW - timedelta(days=2),
                sync_snapshot(NOW - timedelta(days=2), full=4, purchased=4, inactive_90=2),
            ),
            Stored(NOW, "not json"),
        ]
    )

    report = collect_licenses(members, history, table_name="m", now=NOW, prices=default_prices())

    rows = {row.license: row for row in report.rows}
    assert list(rows) == ["full", "free"]  # paid first, priciest first
    assert (rows["full"].active, rows["full"].suspended, rows["full"].deprovisioned) == (2, 1, 1)
    assert rows["full"].purchased == 5  # from the newest snapshot
    assert rows["full"].unassigned == 3
    assert rows["full"].monthly_cost == Decimal("100.00")  # 5 purchased seats are billed
    assert rows["free"].purchased is None
    assert rows["free"].monthly_cost == 0
    assert [s.full_purchased for s in report.history] == [4, 5]  # oldest first
    assert report.skipped_snapshots == 1
    assert report.members_total == 5
    assert report.paid_active == 2


def test_without_a_state_table_the_report_has_no_history() -> None:
    report = collect_licenses(
        FakeMembers([member("a")]), None, table_name="m", now=NOW, prices=default_prices()
    )

    assert report.history == ()
    assert report.rows[0].purchased is None
