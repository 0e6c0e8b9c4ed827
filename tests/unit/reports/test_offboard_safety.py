"""What `report inactive --offboard` may act on: seats idle for the whole window (not new in it), and only
while the members table is fresh."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from miro_sync.reports.errors import ReportError, StaleSyncError
from miro_sync.reports.freshness import DEFAULT_MAX_SYNC_AGE, MEMBERS_SYNC_PERIOD, require_recent_sync
from miro_sync.reports.inactive import build_inactive_report
from miro_sync.reports.prices import default_prices
from tests.unit.reports.fakes import FakeMembers, member

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def test_seats_new_in_the_window_are_listed_but_not_offboarded() -> None:
    members = FakeMembers(
        [
            # idle for the whole window
            member("old", last_activity_at=ago(200), license_assigned_at=ago(400), first_seen_at=ago(300)),
            member("never-old", license_assigned_at=ago(400), first_seen_at=ago(300)),
            # miro-sync started watching recently, but Miro's activity proves an older membership
            member("watched-lately", last_activity_at=ago(150), first_seen_at=ago(2)),
            # nothing says when they joined: no evidence they are new
            member("unknown", last_activity_at=ago(120)),
            # new: licence assigned inside the window (possibly re-licensed after old activity)
            member("relicensed", last_activity_at=ago(200), license_assigned_at=ago(10)),
            member("assigned", license_assigned_at=ago(89)),
            # new: first seen inside the window, and no activity on record
            member("joined", first_seen_at=ago(5)),
        ]
    )
    report = build_inactive_report(members, days=90, now=NOW, prices=default_prices())

    assert {seat.member_id for seat in report.seats} == {
        "old",
        "never-old",
        "watched-lately",
        "unknown",
        "relicensed",
        "assigned",
        "joined",
    }
    selected, left_out = report.offboard_selection()
    assert {seat.member_id for seat in selected} == {"old", "never-old", "watched-lately", "unknown"}
    reasons = {seat.member_id: why for seat, why in left_out}
    assert set(reasons) == {"relicensed", "assigned", "joined"}
    assert reasons["relicensed"].startswith("licence assigned 2026-02-19")
    assert reasons["joined"].startswith("first seen 2026-02-24")


def test_the_window_edge_counts_as_inside() -> None:
    members = FakeMembers([member("edge", license_assigned_at=ago(90))])
    report = build_inactive_report(members, days=90, now=NOW, prices=default_prices())
    selected, left_out = report.offboard_selection()
    assert selected == ()
    assert [seat.member_id for seat, _ in left_out] == ["edge"]


class Synced:
    def __init__(self, at: datetime | None) -> None:
        self.at = at

    def last_complete_at(self) -> datetime | None:
        return self.at


def test_a_recent_sync_is_accepted() -> None:
    at = NOW - timedelta(hours=11, minutes=59)
    assert require_recent_sync(Synced(at), now=NOW, max_age=DEFAULT_MAX_SYNC_AGE) == at


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (Synced(NOW - timedelta(hours=12, seconds=1)), "more than --max-sync-age"),
        (Synced(None), "no complete members sync is recorded"),
        (None, "needs the state table"),
    ],
)
def test_a_stale_or_unknown_sync_is_refused(source: Synced | None, message: str) -> None:
    with pytest.raises(StaleSyncError, match=message) as refused:
        require_recent_sync(source, now=NOW, max_age=DEFAULT_MAX_SYNC_AGE)
    assert isinstance(refused.value, ReportError)  # the CLI exits 2 on it


def test_the_default_max_sync_age_is_twice_the_templates_members_schedule() -> None:
    from miro_sync_cli.report_cmd import DEFAULT_MAX_SYNC_AGE_HOURS

    text = TEMPLATE.read_text(encoding="utf-8")
    block = re.search(r"^  MembersSyncSchedule:\n(?:    .*\n)*?    Default: (.+)$", text, re.MULTILINE)
    assert block is not None
    rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", block.group(1).strip())
    assert rate is not None, block.group(1)
    unit = {"minute": "minutes", "hour": "hours", "day": "days"}.get(rate.group(2), rate.group(2))
    period = timedelta(**{unit: int(rate.group(1))})
    assert period == MEMBERS_SYNC_PERIOD
    assert 2 * period == DEFAULT_MAX_SYNC_AGE
    assert timedelta(hours=DEFAULT_MAX_SYNC_AGE_HOURS) == DEFAULT_MAX_SYNC_AGE


def test_the_store_reads_the_members_syncs_own_checkpoint() -> None:
    from miro_sync.store.reports import MEMBERS_SYNC_NAME
    from miro_sync.sync.members import SYNC_NAME

    assert MEMBERS_SYNC_NAME == SYNC_NAME
