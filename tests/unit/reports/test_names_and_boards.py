"""Reports show the display name next to the email, admin role names, boards per seat and in total."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

from rich.console import Console

from miro_sync.reports import render
from miro_sync.reports.collect import collect_inactive, collect_licenses
from miro_sync.reports.html_report import render_html
from miro_sync.reports.inactive import InactiveReport
from miro_sync.reports.licenses import LicenseReport
from miro_sync.reports.prices import default_prices
from tests.unit.reports.fakes import FakeMembers, FakeSnapshots, Stored, member

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def reports() -> tuple[InactiveReport, LicenseReport]:
    old = NOW - timedelta(days=120)
    admin = member("ada", role="organization_internal_admin", boards_owned=7, last_activity_at=old)
    admin = admin.model_copy(
        update={"display_name": "Ada <Lovelace>", "admin_roles": ("Content Admin", "User Admin")}
    )
    plain = member("bob", boards_owned=3, last_activity_at=old).model_copy(
        update={"display_name": "Bob Builder"}
    )
    guest = member("gus", role="organization_external_user", license="occasional", boards_owned=2)
    members = FakeMembers([admin, plain, guest, member("cy", last_activity_at=NOW)])
    snapshots = FakeSnapshots(
        [Stored(NOW - timedelta(days=1), {"byLicense": {"full": 3}, "boards": 41, "membersOwningBoards": 9})]
    )
    prices = default_prices()
    return (
        collect_inactive(members, members, table_name="m", days=90, now=NOW, prices=prices),
        collect_licenses(members, snapshots, table_name="m", now=NOW, prices=prices),
    )


def test_json_and_csv_carry_names_admin_roles_and_board_totals() -> None:
    inactive, licenses = reports()
    data = json.loads(render.render_json(render.inactive_to_dict(inactive)))
    seats = {seat["email"]: seat for seat in data["seats"]}
    assert seats["ada@acme.example"]["displayName"] == "Ada <Lovelace>"
    assert seats["ada@acme.example"]["adminRoles"] == ["Content Admin", "User Admin"]
    assert seats["ada@acme.example"]["boardsOwned"] == 7
    assert data["totals"]["boardsOwned"] == 10
    assert data["totals"]["externalBoardsOwned"] == 2
    rows = list(csv.DictReader(io.StringIO(render.render_inactive_csv(inactive))))
    ada = next(row for row in rows if row["email"] == "ada@acme.example")
    assert (ada["display_name"], ada["admin_roles"], ada["boards_owned"]) == (
        "Ada <Lovelace>",
        "Content Admin;User Admin",
        "7",
    )
    lic = json.loads(render.render_json(render.licenses_to_dict(licenses)))
    assert (lic["totals"]["boards"], lic["totals"]["membersOwningBoards"]) == (41, 9)


def test_tables_and_html_show_names_roles_and_boards() -> None:
    inactive, licenses = reports()
    console = Console(record=True, width=220)
    render.render_inactive_table(inactive, console)
    render.render_licenses_table(licenses, console)
    text = console.export_text()
    assert "Ada <Lovelace>" in text
    assert "internal_admin (Content Admin, User Admin)" in text
    assert "Boards owned by the inactive seats: 10" in text
    assert "41 boards, owned by 9 members." in text
    html = render_html(inactive=inactive, licenses=licenses)
    assert "Ada &lt;Lovelace&gt;" in html
    assert "<Lovelace>" not in html
    assert 'data-figure="inactive-boards-owned">10<' in html
    assert 'data-figure="boards">41<' in html
    assert "internal_admin (Content Admin, User Admin)" in html
    assert 'data-figure="boards">41<' in render_html(licenses=licenses)
