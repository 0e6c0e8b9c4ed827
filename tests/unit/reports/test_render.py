from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

from rich.console import Console

from miro_sync.reports import render
from miro_sync.reports.collect import collect_inactive, collect_licenses
from miro_sync.reports.html_report import render_html
from miro_sync.reports.inactive import InactiveReport
from miro_sync.reports.licenses import LicenseReport
from miro_sync.reports.prices import default_prices
from tests.unit.reports.fakes import FakeMembers, FakeSnapshots, Stored, member

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script>"


def reports() -> tuple[InactiveReport, LicenseReport]:
    members = FakeMembers(
        [
            member("a", last_activity_at=NOW - timedelta(days=100), teams=(HOSTILE,)),
            member("b", license="occasional"),
            member("c", last_activity_at=NOW - timedelta(days=3)),
            member("x", role="organization_external_user", license="occasional"),
        ]
    )
    snapshots = FakeSnapshots(
        Stored(
            NOW - timedelta(days=d),
            {"byLicense": {"full": 2 + d}, "fullLicensesPurchased": 9, "inactiveSeats": {"90": d}},
        )
        for d in (3, 2, 1)
    )
    prices = default_prices()
    inactive = collect_inactive(members, members, table_name="m", days=90, now=NOW, prices=prices)
    licenses = collect_licenses(members, snapshots, table_name="m", now=NOW, prices=prices)
    return inactive, licenses


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self.tags: list[str] = []
        self.emails: list[str] = []
        self.external_refs: list[str] = []
        self._figure: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        self._figure = values.get("data-figure")
        if values.get("data-email"):
            self.emails.append(values["data-email"] or "")
        for name in ("src", "href"):
            if values.get(name):
                self.external_refs.append(values[name] or "")

    def handle_data(self, data: str) -> None:
        if self._figure:
            self.figures[self._figure] = data
            self._figure = None


def test_html_is_one_offline_file_holding_the_figures() -> None:
    inactive, licenses = reports()

    page = render_html(inactive=inactive, licenses=licenses, org_name="Acme")

    parsed = Collector()
    parsed.feed(page)
    parsed.close()
    assert parsed.figures["inactive-seats"] == "2"
    assert parsed.figures["reclaimable-monthly"] == "$30.00"
    assert parsed.figures["reclaimable-annual"] == "$360.00"
    assert parsed.figures["paid-seats"] == "4"  # every active paid seat, external ones included
    assert parsed.figures["external-inactive"] == "1"
    assert parsed.emails == ["b@acme.example", "a@acme.example", "x@acme.example"]
    assert parsed.tags.count("svg") == 4  # seats by license, trend, age buckets, top teams
    assert "polyline" in parsed.tags  # the trend has three snapshots: a line
    assert "script" not in parsed.tags
    assert parsed.external_refs == []
    assert HOSTILE not in page


def test_license_only_html_and_empty_history_still_render() -> None:
    _, licenses = reports()
    empty = LicenseReport(generated_at=NOW, prices=licenses.prices, rows=licenses.rows, history=())

    parsed = Collector()
    parsed.feed(render_html(licenses=empty))

    assert parsed.figures["members"] == "4"
    assert "No usage snapshots stored yet" in render_html(licenses=empty)


def test_csv_lists_every_seat_with_its_category() -> None:
    inactive, _ = reports()

    rows = list(csv.DictReader(io.StringIO(render.render_inactive_csv(inactive))))

    assert [(r["email"], r["category"], r["monthly_cost"]) for r in rows] == [
        ("b@acme.example", "reclaimable", "10.00"),
        ("a@acme.example", "reclaimable", "20.00"),
        ("x@acme.example", "external", "10.00"),
    ]
    assert rows[0]["last_seen_source"] == "never"
    assert rows[0]["days_inactive"] == ""
    assert rows[1]["teams"] == HOSTILE


def test_json_round_trips_the_totals_and_history() -> None:
    inactive, licenses = reports()

    data = json.loads(render.render_json(render.inactive_to_dict(inactive)))
    history = json.loads(render.render_json(render.licenses_to_dict(licenses)))["history"]

    assert data["totals"]["reclaimableMonthly"] == 30.0
    assert data["totals"]["inactiveSeats"] == 2
    assert [seat["memberId"] for seat in data["seats"]] == ["b", "a"]
    assert [h["byLicense"]["full"] for h in history] == [5, 4, 3]


def test_licenses_csv_has_current_and_snapshot_rows() -> None:
    _, licenses = reports()

    rows = list(csv.DictReader(io.StringIO(render.render_licenses_csv(licenses))))

    assert {(r["source"], r["license"]) for r in rows if r["source"] == "current"} == {
        ("current", "full"),
        ("current", "occasional"),
    }
    assert [r["members"] for r in rows if r["source"] == "snapshot"] == ["5", "4", "3"]


def test_tables_print_the_totals() -> None:
    inactive, licenses = reports()
    console = Console(record=True, width=200, file=io.StringIO())

    render.render_inactive_table(inactive, console)
    render.render_licenses_table(licenses, console)

    text = console.export_text()
    assert "2 inactive paid seats of 4 active paid seats (50%)" in text
    assert "$30.00 per month" in text
    assert "idle 90d+" in text
