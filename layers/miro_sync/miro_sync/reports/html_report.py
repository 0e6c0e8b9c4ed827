"""The HTML report: one self-contained file (inline CSS and SVG, no script, no external resource).

Headline figures carry `data-figure="..."` attributes so tools (and our tests) can read them back
without scraping prose.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from html import escape

from miro_sync.reports.inactive import InactiveReport, InactiveSeat
from miro_sync.reports.licenses import LicenseReport
from miro_sync.reports.render import iso, money
from miro_sync.reports.svg import PALETTE, Bar, Series, horizontal_bars, line_chart, vertical_bars

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #0f172a;
       background: #f8fafc; }
header { background: #0f172a; color: #f8fafc; padding: 24px 32px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0; color: #cbd5e1; }
main { padding: 24px 32px; max-width: 1100px; }
section { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 16px 20px;
          margin-bottom: 20px; }
h2 { font-size: 18px; margin: 0 0 12px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 20px; }
.card { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 12px 16px;
        min-width: 180px; }
.card .value { font-size: 26px; font-weight: 700; }
.card .label { color: #475569; font-size: 13px; }
.card.money .value { color: #047857; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #e2e8f0; vertical-align: top; }
th { background: #f1f5f9; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #64748b; font-size: 12px; }
.admin { font-weight: 600; }
svg { max-width: 100%; height: auto; }
@media print { body { background: #fff; } section { break-inside: avoid; } }
"""


def _card(label: str, value: str, figure: str, *, money_card: bool = False) -> str:
    kind = "card money" if money_card else "card"
    return (
        f'<div class="{kind}"><div class="value" data-figure="{figure}">{escape(value)}</div>'
        f'<div class="label">{escape(label)}</div></div>'
    )


def _amount(amount: Decimal) -> str:
    return f"{amount:.2f}"


def _seat_rows(seats: tuple[InactiveSeat, ...], currency: str) -> str:
    rows = []
    for seat in seats:
        seen = "never" if seat.last_seen_at is None else f"{seat.last_seen_at:%Y-%m-%d}"
        days = "" if seat.days_inactive is None else str(seat.days_inactive)
        rows.append(
            f'<tr data-email="{escape(seat.email)}"><td>{escape(seat.email)}</td>'
            f"<td>{escape(seat.display_name or '')}</td><td>{escape(seat.license)}</td>"
            f"<td{' class=admin' if seat.is_admin else ''}>{escape(seat.role_label)}</td><td>{seen}</td>"
            f'<td class="num">{days}</td><td>{escape(seat.last_seen_source)}</td>'
            f"<td>{escape(', '.join(seat.teams))}</td><td class=num>{seat.boards_owned}</td>"
            f'<td class="num" data-cost="{_amount(seat.monthly_cost)}">'
            f"{escape(money(seat.monthly_cost, currency))}</td></tr>"
        )
    return "".join(rows)


_SEAT_HEAD = (
    "<tr><th>email</th><th>name</th><th>license</th><th>role</th><th>last seen</th><th class=num>days</th>"
    "<th>source</th><th>teams</th><th class=num>boards owned</th><th class=num>monthly</th></tr>"
)


def _inactive_sections(report: InactiveReport, licenses: LicenseReport | None) -> list[str]:
    currency = report.prices.currency
    cards = [
        _card(f"paid seats inactive {report.days}+ days", str(report.inactive_seats), "inactive-seats"),
        _card(
            "reclaimable per month",
            money(report.reclaimable_monthly, currency),
            "reclaimable-monthly",
            money_card=True,
        ),
        _card(
            "reclaimable per year",
            money(report.reclaimable_annual, currency),
            "reclaimable-annual",
            money_card=True,
        ),
    ]
    if report.paid_seats_total is not None:
        share = report.inactive_share or 0.0
        cards.append(_card("active paid seats", str(report.paid_seats_total), "paid-seats"))
        cards.append(_card("of paid seats idle", f"{share:.0%}", "inactive-share"))
    cards.append(
        _card("external users / guests listed apart", str(len(report.external)), "external-inactive")
    )
    cards.append(_card("boards owned by inactive seats", str(report.boards_owned), "inactive-boards-owned"))
    if licenses is not None and licenses.boards is not None:
        cards.append(_card("boards in the organization", str(licenses.boards), "boards"))
    sections = [f'<div class="cards">{"".join(cards)}</div>']

    if licenses is not None:
        sections.extend(_license_chart_sections(licenses, report))
    else:
        bars = [
            Bar(t.label, t.seats, f"{t.seats} · {money(t.monthly_cost, currency)}") for t in report.by_license
        ]
        sections.append(
            "<section><h2>Inactive seats by license</h2>"
            f"{horizontal_bars('Inactive seats by license', bars)}</section>"
        )

    age_bars = [
        Bar(t.label, t.seats, f"{t.seats} · {money(t.monthly_cost, currency)}") for t in report.by_age
    ]
    sections.append(
        "<section><h2>Inactive seats by time since last seen</h2>"
        f"{vertical_bars('Inactive seats by age', age_bars)}</section>"
    )
    team_bars = [
        Bar(t.label, float(t.monthly_cost), f"{money(t.monthly_cost, currency)} · {t.seats} seats")
        for t in report.top_teams
    ]
    team_note = "" if report.team_names_known else " Team names are not stored yet: teams are shown by id."
    sections.append(
        "<section><h2>Top reclaimable teams</h2>"
        f"{horizontal_bars('Reclaimable monthly cost by team', team_bars, color=PALETTE[2])}"
        f'<p class="note">A seat in several teams counts in each of them.{escape(team_note)}</p></section>'
    )
    sections.append(
        f"<section><h2>Inactive paid seats ({report.inactive_seats})</h2>"
        f'<table id="inactive-seats"><thead>{_SEAT_HEAD}</thead><tbody>'
        f"{_seat_rows(report.seats, currency)}</tbody></table></section>"
    )
    sections.append(
        f"<section><h2>External users and guests on paid licenses ({len(report.external)})</h2>"
        '<p class="note">Not billed like members and not actionable through SCIM: listed apart, '
        f"not counted as reclaimable ({escape(money(report.external_monthly, currency))} per month at "
        "list price).</p>"
        f'<table id="external-seats"><thead>{_SEAT_HEAD}</thead><tbody>'
        f"{_seat_rows(report.external, currency)}</tbody></table></section>"
    )
    return sections


def _license_chart_sections(licenses: LicenseReport, inactive: InactiveReport | None) -> list[str]:
    currency = licenses.prices.currency
    idle = {tally.label: tally.seats for tally in inactive.by_license} if inactive else {}
    bars = []
    for row in licenses.rows:
        caption = f"{row.active} active"
        if row.purchased is not None:
            caption += f" / {row.purchased} bought"
        if row.license in idle:
            caption += f" · {idle[row.license]} idle"
        bars.append(Bar(row.license, row.active, caption))
    sections = [
        "<section><h2>Seats by license</h2>"
        f"{horizontal_bars('Active seats by license', bars)}"
        '<p class="note">Suspended members hold no license. '
        f"Prices: {escape(licenses.prices.source)}.</p></section>"
    ]
    paid = [
        Series(
            "paid seats (members)",
            [(s.at, s.assigned_paid(licenses.prices)) for s in licenses.history],
            PALETTE[0],
        )
    ]
    purchased = [(s.at, float(s.full_purchased)) for s in licenses.history if s.full_purchased is not None]
    if purchased:
        paid.append(Series("full seats purchased", purchased, PALETTE[1]))
    days = inactive.days if inactive is not None else _largest_threshold(licenses)
    if days is not None:
        idle_points = [(s.at, float(n)) for s in licenses.history if (n := s.inactive_at(days)) is not None]
        if idle_points:
            paid.append(Series(f"inactive {days}+ days", idle_points, PALETTE[3]))
    trend_note = (
        f"{len(licenses.history)} usage snapshots, one per complete members sync."
        if licenses.history
        else "No usage snapshots stored yet: the trend fills in as the scheduled members sync runs."
    )
    sections.append(
        f"<section><h2>Trend</h2>{line_chart('Assigned and purchased seats over time', paid)}"
        f'<p class="note">{escape(trend_note)}</p></section>'
    )
    rows = "".join(
        f'<tr data-license="{escape(row.license)}"><td>{escape(row.license)}</td>'
        f"<td class=num>{'-' if row.purchased is None else row.purchased}</td>"
        f"<td class=num>{row.active}</td><td class=num>{row.suspended}</td>"
        f"<td class=num>{row.deprovisioned}</td>"
        f"<td class=num>{escape(money(row.monthly_price, currency))}</td>"
        f'<td class=num data-cost="{_amount(row.monthly_cost)}">'
        f"{escape(money(row.monthly_cost, currency))}</td></tr>"
        for row in licenses.rows
    )
    sections.append(
        '<section><h2>Licenses</h2><table id="licenses"><thead><tr><th>license</th>'
        "<th class=num>purchased</th>"
        "<th class=num>active</th><th class=num>suspended</th><th class=num>deprovisioned</th>"
        "<th class=num>price</th><th class=num>monthly</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )
    return sections


def _largest_threshold(licenses: LicenseReport) -> int | None:
    thresholds = licenses.history[-1].inactive_seats if licenses.history else {}
    return max(thresholds) if thresholds else None


def render_html(
    *,
    inactive: InactiveReport | None = None,
    licenses: LicenseReport | None = None,
    org_name: str | None = None,
) -> str:
    if inactive is not None:
        generated: datetime = inactive.generated_at
    elif licenses is not None:
        generated = licenses.generated_at
    else:
        raise ValueError("render_html needs at least one report")
    if inactive is not None:
        title = f"Miro seats inactive for {inactive.days}+ days"
        sections = _inactive_sections(inactive, licenses)
        cutoff = f" · cutoff {iso(inactive.cutoff)}"
    elif licenses is not None:
        title = "Miro license usage"
        currency = licenses.prices.currency
        cards = (
            _card("members", str(licenses.members_total), "members")
            + _card("active paid seats", str(licenses.paid_active), "paid-seats")
            + _card("monthly cost", money(licenses.monthly_cost, currency), "monthly-cost", money_card=True)
        )
        if licenses.boards is not None:
            cards += _card("boards in the organization", str(licenses.boards), "boards")
        sections = [f'<div class="cards">{cards}</div>', *_license_chart_sections(licenses, None)]
        cutoff = ""
    subtitle = f"{org_name + ' · ' if org_name else ''}generated {iso(generated)}{cutoff} · miro-sync"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>"
        f"<main>{''.join(sections)}</main></body></html>\n"
    )
