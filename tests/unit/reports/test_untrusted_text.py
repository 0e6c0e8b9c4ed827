"""Text from Miro and the tables (emails, team and licence names, the price file's name) is untrusted:
the rich tables never read it as markup, the CSVs never hand a spreadsheet a formula, the HTML escapes it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from rich.console import Console

from miro_sync.reports import render
from miro_sync.reports.collect import collect_inactive, collect_licenses
from miro_sync.reports.html_report import render_html
from miro_sync.reports.inactive import InactiveReport
from miro_sync.reports.licenses import LicenseReport
from miro_sync.reports.prices import SeatPrices
from miro_sync.store.members import MemberRecord
from tests.unit.reports.fakes import FakeMembers, FakeSnapshots

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MARKUP = "[/x]"  # a closing tag with nothing open: rich raises MarkupError when it reads it as markup
FORMULA_TEAM = '=HYPERLINK("http://evil.example","x")'


def hostile_member(member_id: str, email: str, *, license: str, teams: tuple[str, ...]) -> MemberRecord:
    return MemberRecord(
        member_id=member_id,
        email=email,
        role="organization_internal_user",
        license=license,
        active=True,
        status="active",
        teams=teams,
        last_activity_at=NOW - timedelta(days=200),
    )


def hostile_reports() -> tuple[InactiveReport, LicenseReport]:
    prices = SeatPrices(
        monthly={"full": Decimal("20"), "[/x]lic": Decimal("5"), "-2+3": Decimal("7")},
        source="[/x] prices.toml",
    )
    members = FakeMembers(
        [
            hostile_member("m1", "=cmd|' /C calc'!A0@evil.example", license="full", teams=(FORMULA_TEAM,)),
            hostile_member("m2", f"{MARKUP}@evil.example", license="[/x]lic", teams=("[bold]t[/x]",)),
            hostile_member("m3", "+1@evil.example", license="-2+3", teams=("@SUM(1)",)),
            hostile_member("m4", "\tTAB@evil.example", license="full", teams=()),
            hostile_member("m5", "-neg@evil.example", license="full", teams=("\rCR",)),
            hostile_member("m6", "row@evil.example", license="full", teams=("a\r=1+1,b", "c\nd")),
        ]
    )
    snapshots = FakeSnapshots([])
    inactive = collect_inactive(members, members, table_name="m", days=90, now=NOW, prices=prices)
    licenses = collect_licenses(members, snapshots, table_name="m", now=NOW, prices=prices)
    return inactive, licenses


def test_tables_show_markup_like_text_as_it_is() -> None:
    inactive, licenses = hostile_reports()
    console = Console(record=True, width=250, file=io.StringIO())

    render.render_inactive_table(inactive, console)  # raised MarkupError before
    render.render_licenses_table(licenses, console)

    text = console.export_text()
    assert f"{MARKUP}@evil.example" in text
    assert "[bold]t[/x]" in text
    assert "[/x]lic" in text
    assert "[/x] prices.toml" in text


@pytest.mark.parametrize("trigger", ["=", "+", "-", "@", "\t", "\r"])
def test_safe_cell_prefixes_formula_triggers_with_a_quote(trigger: str) -> None:
    assert render.safe_cell(f"{trigger}1+1") == f"'{trigger}1+1"


def test_safe_cell_leaves_plain_text_and_numbers_alone() -> None:
    assert render.safe_cell("ann@example.com") == "ann@example.com"
    assert render.safe_cell("2026-03-01T12:00:00Z") == "2026-03-01T12:00:00Z"
    assert render.safe_cell(-3) == -3
    assert render.safe_cell("") == ""


def test_inactive_csv_never_starts_a_cell_with_a_formula_trigger() -> None:
    inactive, _ = hostile_reports()

    text = render.render_inactive_csv(inactive)
    rows = list(csv.DictReader(io.StringIO(text)))

    by_id = {row["member_id"]: row for row in rows}
    assert by_id["m1"]["email"] == "'=cmd|' /C calc'!A0@evil.example"
    assert by_id["m1"]["teams"] == "'" + FORMULA_TEAM
    assert by_id["m3"]["email"] == "'+1@evil.example"
    assert by_id["m3"]["license"] == "'-2+3"
    assert by_id["m3"]["teams"] == "'@SUM(1)"
    assert by_id["m4"]["email"] == "'\tTAB@evil.example"
    assert by_id["m5"]["email"] == "'-neg@evil.example"
    assert by_id["m5"]["teams"] == "'\rCR"
    # a CR or LF inside a cell stays inside it: no row can be injected
    assert by_id["m6"]["teams"] == "a\r=1+1,b;c\nd"
    assert len(rows) == 6
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), row


def test_licenses_csv_never_starts_a_cell_with_a_formula_trigger() -> None:
    _, licenses = hostile_reports()

    rows = list(csv.DictReader(io.StringIO(render.render_licenses_csv(licenses))))

    assert "'-2+3" in {row["license"] for row in rows}
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), row


class Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.data: list[str] = []
        self.emails: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        email = dict(attrs).get("data-email")
        if email:
            self.emails.append(email)

    def handle_data(self, data: str) -> None:
        self.data.append(data)


def test_html_escapes_emails_teams_licences_and_the_price_source() -> None:
    prices = SeatPrices(monthly={"full": Decimal("20"), "<i>lic": Decimal("5")}, source="<b>p</b>")
    script = "<script>alert(1)</script>"
    members = FakeMembers(
        [
            hostile_member(
                "h1", '"><img src=x onerror=alert(1)>@e.example', license="<i>lic", teams=(script,)
            ),
        ]
    )
    inactive = collect_inactive(members, members, table_name="m", days=90, now=NOW, prices=prices)
    licenses = collect_licenses(members, FakeSnapshots([]), table_name="m", now=NOW, prices=prices)

    page = render_html(inactive=inactive, licenses=licenses, org_name="<svg onload=x>")
    parsed = Text()
    parsed.feed(page)

    assert not {"script", "img", "i", "b"} & set(parsed.tags)
    assert parsed.emails == ['"><img src=x onerror=alert(1)>@e.example']
    assert script in "".join(parsed.data)
    assert "onload" not in "".join(t for t in parsed.tags)
