"""Text renderers of the reports: JSON, CSV and a rich table. (HTML lives in `reports.html_report`.)

rich is imported inside `render_*_table` only: it is a CLI dependency, not part of the Lambda layer.
Text from Miro or the tables (emails, team names, licence names, the price file's name) is untrusted:
the tables escape it (never read as rich markup) and the CSVs neutralise cells a spreadsheet would run as
a formula (`safe_cell`).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from miro_sync.reports.inactive import InactiveReport, InactiveSeat, Tally
from miro_sync.reports.licenses import LicenseReport
from miro_sync.timestamps import iso_as_given

if TYPE_CHECKING:
    from rich.console import Console


def money(amount: Decimal, currency: str = "USD") -> str:
    text = f"{amount:,.2f}"
    return f"${text}" if currency == "USD" else f"{text} {currency}"


def iso(moment: datetime | None) -> str | None:
    return iso_as_given(moment) if moment is not None else None


def _number(amount: Decimal) -> float:
    # JSON has no decimal type; two decimals of a money amount survive a float exactly enough.
    return float(amount.quantize(Decimal("0.01")))


# --- JSON ----------------------------------------------------------------------------------------


def _seat_dict(seat: InactiveSeat) -> dict[str, Any]:
    return {
        "memberId": seat.member_id,
        "email": seat.email,
        "displayName": seat.display_name,
        "license": seat.license,
        "role": seat.role,
        "adminRoles": list(seat.admin_roles),
        "lastSeenAt": iso(seat.last_seen_at),
        "lastSeenSource": seat.last_seen_source,
        "daysInactive": seat.days_inactive,
        "teams": list(seat.teams),
        "boardsOwned": seat.boards_owned,
        "monthlyCost": _number(seat.monthly_cost),
    }


def _tally_dict(tally: Tally) -> dict[str, Any]:
    return {"label": tally.label, "seats": tally.seats, "monthlyCost": _number(tally.monthly_cost)}


def inactive_to_dict(report: InactiveReport) -> dict[str, Any]:
    return {
        "report": "inactive",
        "generatedAt": iso(report.generated_at),
        "days": report.days,
        "cutoff": iso(report.cutoff),
        "currency": report.prices.currency,
        "prices": {
            "source": report.prices.source,
            "monthly": {k: _number(v) for k, v in sorted(report.prices.monthly.items())},
        },
        "totals": {
            "inactiveSeats": report.inactive_seats,
            "reclaimableMonthly": _number(report.reclaimable_monthly),
            "reclaimableAnnual": _number(report.reclaimable_annual),
            "paidSeats": report.paid_seats_total,
            "paidMonthly": _number(report.paid_monthly_total)
            if report.paid_monthly_total is not None
            else None,
            "externalInactive": len(report.external),
            "externalMonthly": _number(report.external_monthly),
            "boardsOwned": report.boards_owned,
            "externalBoardsOwned": report.external_boards_owned,
        },
        "byLicense": [_tally_dict(tally) for tally in report.by_license],
        "byAge": [_tally_dict(tally) for tally in report.by_age],
        "topTeams": [_tally_dict(tally) for tally in report.top_teams],
        "seats": [_seat_dict(seat) for seat in report.seats],
        "external": [_seat_dict(seat) for seat in report.external],
    }


def licenses_to_dict(report: LicenseReport) -> dict[str, Any]:
    return {
        "report": "licenses",
        "generatedAt": iso(report.generated_at),
        "currency": report.prices.currency,
        "totals": {
            "members": report.members_total,
            "paidActive": report.paid_active,
            "monthlyCost": _number(report.monthly_cost),
            "boards": report.boards,
            "membersOwningBoards": report.members_owning_boards,
        },
        "licenses": [
            {
                "license": row.license,
                "paid": report.prices.is_paid(row.license),
                "purchased": row.purchased,
                "active": row.active,
                "suspended": row.suspended,
                "deprovisioned": row.deprovisioned,
                "unassigned": row.unassigned,
                "monthlyPrice": _number(row.monthly_price),
                "monthlyCost": _number(row.monthly_cost),
            }
            for row in report.rows
        ],
        "history": [
            {
                "at": iso(snapshot.at),
                "members": snapshot.members,
                "assignedPaid": snapshot.assigned_paid(report.prices),
                "fullLicensesPurchased": snapshot.full_purchased,
                "byLicense": dict(sorted(snapshot.by_license.items())),
                "byStatus": dict(sorted(snapshot.by_status.items())),
                "inactiveSeats": {str(days): n for days, n in sorted(snapshot.inactive_seats.items())},
                "neverSeenSeats": snapshot.never_seen_seats,
                "boards": snapshot.boards,
            }
            for snapshot in report.history
        ],
        "skippedSnapshots": report.skipped_snapshots,
    }


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2) + "\n"


# --- CSV -----------------------------------------------------------------------------------------

# A spreadsheet opening the CSV reads a cell starting with one of these as a formula (OWASP, "CSV
# Injection"): such text cells get a leading single quote, which makes them plain text.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def safe_cell(value: object) -> object:
    """`value` as a CSV cell no spreadsheet runs as a formula. Numbers pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def _csv_writer(buffer: io.StringIO) -> Any:
    """Every cell quoted (OWASP): a CR inside a cell, which the minimal quoting of a "\\n"-terminated
    writer leaves bare, can never start a new row."""
    return csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)


def _write_row(writer: Any, row: tuple[object, ...]) -> None:
    writer.writerow(tuple(safe_cell(cell) for cell in row))


INACTIVE_CSV_COLUMNS = (
    "category",
    "email",
    "member_id",
    "license",
    "role",
    "last_seen_at",
    "last_seen_source",
    "days_inactive",
    "teams",
    "boards_owned",
    "monthly_cost",
    "display_name",
    "admin_roles",
)


def render_inactive_csv(report: InactiveReport) -> str:
    """One row per seat; `category` is `reclaimable` or `external` (listed apart, not actionable)."""
    buffer = io.StringIO()
    writer = _csv_writer(buffer)
    writer.writerow(INACTIVE_CSV_COLUMNS)
    for category, seats in (("reclaimable", report.seats), ("external", report.external)):
        for seat in seats:
            _write_row(
                writer,
                (
                    category,
                    seat.email,
                    seat.member_id,
                    seat.license,
                    seat.role,
                    iso(seat.last_seen_at) or "",
                    seat.last_seen_source,
                    "" if seat.days_inactive is None else seat.days_inactive,
                    ";".join(seat.teams),
                    seat.boards_owned,
                    f"{seat.monthly_cost:.2f}",
                    seat.display_name or "",
                    ";".join(seat.admin_roles),
                ),
            )
    return buffer.getvalue()


LICENSES_CSV_COLUMNS = (
    "as_of",
    "source",
    "license",
    "purchased",
    "members",
    "active",
    "suspended",
    "deprovisioned",
)


def render_licenses_csv(report: LicenseReport) -> str:
    """Long format: the current counts (`source=current`, split by status) then every stored snapshot
    (`source=snapshot`; snapshots count members per license without the status split)."""
    buffer = io.StringIO()
    writer = _csv_writer(buffer)
    writer.writerow(LICENSES_CSV_COLUMNS)
    as_of = iso(report.generated_at)
    for row in report.rows:
        purchased = "" if row.purchased is None else row.purchased
        members = row.active + row.suspended + row.deprovisioned
        _write_row(
            writer,
            (as_of, "current", row.license, purchased, members, row.active, row.suspended, row.deprovisioned),
        )
    for snapshot in report.history:
        for license, members in sorted(snapshot.by_license.items()):
            bought = snapshot.full_purchased if license == "full" else None
            _write_row(
                writer,
                (
                    iso(snapshot.at),
                    "snapshot",
                    license,
                    "" if bought is None else bought,
                    members,
                    "",
                    "",
                    "",
                ),
            )
    return buffer.getvalue()


# --- rich tables ---------------------------------------------------------------------------------


def _seen(seat: InactiveSeat) -> str:
    """Markup-safe."""
    from rich.markup import escape

    if seat.last_seen_at is None:
        return "never"
    return escape(f"{seat.last_seen_at:%Y-%m-%d} ({seat.days_inactive}d, {seat.last_seen_source})")


def render_inactive_table(report: InactiveReport, console: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    currency = report.prices.currency
    table = Table(title=f"Paid seats inactive for {report.days}+ days", show_lines=False)
    for column, justify in (
        ("email", "left"),
        ("name", "left"),
        ("license", "left"),
        ("role", "left"),
        ("last seen", "left"),
        ("teams", "left"),
        ("boards", "right"),
        ("monthly", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for seat in report.seats:
        role = escape(seat.role_label)
        table.add_row(
            escape(seat.email),
            escape(seat.display_name or ""),
            escape(seat.license),
            f"[bold]{role}[/bold]" if seat.is_admin else role,
            _seen(seat),
            escape(", ".join(seat.teams)),
            str(seat.boards_owned),
            escape(money(seat.monthly_cost, currency)),
        )
    console.print(table)
    if report.external:
        external = Table(title="External users and guests on paid licenses (listed apart, not actionable)")
        for column in ("email", "name", "license", "role", "last seen", "boards", "monthly"):
            external.add_column(column, justify="right" if column in ("boards", "monthly") else "left")
        for seat in report.external:
            external.add_row(
                escape(seat.email),
                escape(seat.display_name or ""),
                escape(seat.license),
                escape(seat.role_label),
                _seen(seat),
                str(seat.boards_owned),
                escape(money(seat.monthly_cost, currency)),
            )
        console.print(external)
    of_total = ""
    if report.paid_seats_total is not None:
        share = report.inactive_share or 0.0
        of_total = f" of {report.paid_seats_total} active paid seats ({share:.0%})"
    console.print(
        f"[bold]{report.inactive_seats}[/bold] inactive paid seats{of_total}; reclaimable "
        f"[bold green]{escape(money(report.reclaimable_monthly, currency))}[/bold green] per month, "
        f"{escape(money(report.reclaimable_annual, currency))} per year. "
        f"{len(report.external)} external users/guests listed apart "
        f"({escape(money(report.external_monthly, currency))}/month). "
        f"Boards owned by the inactive seats: [bold]{report.boards_owned}[/bold]"
        f" (external users/guests: {report.external_boards_owned})."
    )
    console.print(f"[dim]Prices: {escape(report.prices.source)}. Cutoff: {iso(report.cutoff)}.[/dim]")


def render_licenses_table(report: LicenseReport, console: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    currency = report.prices.currency
    table = Table(title="Seats by license")
    for column in ("license", "purchased", "active", "suspended", "deprovisioned", "price", "monthly"):
        table.add_column(column, justify="left" if column == "license" else "right")
    for row in report.rows:
        table.add_row(
            escape(row.license),
            "-" if row.purchased is None else str(row.purchased),
            str(row.active),
            str(row.suspended),
            str(row.deprovisioned),
            escape(money(row.monthly_price, currency)),
            escape(money(row.monthly_cost, currency)),
        )
    console.print(table)
    boards = ""
    if report.boards is not None:
        owners = report.members_owning_boards
        boards = (
            f" {report.boards} boards" + (f", owned by {owners} members" if owners is not None else "") + "."
        )
    console.print(
        f"{report.members_total} members, {report.paid_active} active paid seats, "
        f"{escape(money(report.monthly_cost, currency))} per month at {escape(report.prices.source)}.{boards}"
    )
    if report.history:
        thresholds = sorted(report.history[-1].inactive_seats)
        trend = Table(title="Trend (usage snapshots of the members sync)")
        columns = [
            "at",
            "members",
            "paid seats",
            "full purchased",
            *(f"idle {d}d+" for d in thresholds),
            "boards",
        ]
        for column in columns:
            trend.add_column(column, justify="left" if column == "at" else "right")
        for snapshot in report.history:
            idle = [snapshot.inactive_at(days) for days in thresholds]
            trend.add_row(
                f"{snapshot.at:%Y-%m-%d %H:%M}",
                str(snapshot.members),
                str(snapshot.assigned_paid(report.prices)),
                "-" if snapshot.full_purchased is None else str(snapshot.full_purchased),
                *("-" if count is None else str(count) for count in idle),
                "-" if snapshot.boards is None else str(snapshot.boards),
            )
        console.print(trend)
    else:
        console.print(
            "[dim]No usage snapshots stored yet: the trend appears after the first complete sync.[/dim]"
        )
    if report.skipped_snapshots:
        console.print(
            f"[yellow]{report.skipped_snapshots} snapshots had an unknown shape and were skipped.[/yellow]"
        )
