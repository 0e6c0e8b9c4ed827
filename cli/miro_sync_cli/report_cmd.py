"""`miro-sync report`: inactive paid seats and license usage, as a table, CSV, JSON or one HTML file.

    miro-sync report inactive --days 90                                  # rich table
    miro-sync report inactive --days 60 --format html --output report.html
    miro-sync report inactive --days 90 --prices prices.toml --format csv > idle.csv
    miro-sync report inactive --days 120 --offboard suspend               # + the offboarding plan
    miro-sync report inactive --days 120 --offboard suspend --yes         # enqueue it
    miro-sync report licenses --format json

Tables come from --members-table/--state-table or MEMBERS_TABLE/STATE_TABLE, else from the outputs of
the deployed stack named by --stack/MIRO_SYNC_STACK (explicit options win); AWS region,
credentials and endpoint (e.g. AWS_ENDPOINT_URL_DYNAMODB for DynamoDB Local) from the usual
AWS environment. Exit codes: 0 done, 1 plan shown but not enqueued / enqueue failed, 2 bad input,
nothing to report (no sync yet) or, with --offboard, a members sync older than --max-sync-age.

`--offboard` acts only on seats that are idle, not new: a seat whose licence was assigned inside the
window, or whose member was first seen inside it with no activity on record, is left out (and named).
It needs the state table, and refuses to act when the last complete members sync ended more than
--max-sync-age ago (default twice the template's MembersSyncSchedule, rate(6 hours)). Every request it
enqueues carries `inactiveSince` = the report's cutoff: the worker re-reads the member from Miro just
before acting and refuses if they were active after it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from miro_sync_cli.stack_outputs import Stack, StackError, fill_from_stack

if TYPE_CHECKING:
    from miro_sync.reports.inactive import InactiveReport
    from miro_sync.reports.licenses import LicenseReport
    from miro_sync.reports.prices import SeatPrices
    from miro_sync.store.reports import ReportStore

app = typer.Typer(no_args_is_help=True, help="Inactive-seat and license reports.")
errors = Console(stderr=True, soft_wrap=True)


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    html = "html"


class OffboardAction(StrEnum):
    suspend = "suspend"
    delete = "delete"


Format = Annotated[OutputFormat, typer.Option("--format", "-f", case_sensitive=False, help="Output format.")]
Output = Annotated[
    Path | None,
    typer.Option("--output", "-o", dir_okay=False, help="Write the report to this file (default: stdout)."),
]
Prices = Annotated[
    Path | None,
    typer.Option(
        "--prices",
        dir_okay=False,
        help="JSON or TOML table {license: monthly price} over the list-price defaults.",
    ),
]
MembersTable = Annotated[
    str, typer.Option("--members-table", envvar="MEMBERS_TABLE", help="Members table name.")
]
StateTable = Annotated[
    str, typer.Option("--state-table", envvar="STATE_TABLE", help="State table name (usage history).")
]


# = miro_sync.reports.freshness.DEFAULT_MAX_SYNC_AGE (not imported here: `miro-sync --help` stays fast;
# a unit test keeps them equal).
DEFAULT_MAX_SYNC_AGE_HOURS = 12.0


class CommandError(Exception):
    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _prices(path: Path | None) -> SeatPrices:
    from miro_sync.reports.prices import default_prices, load_seat_prices

    return load_seat_prices(path) if path is not None else default_prices()


def _open_store(members_table: str, state_table: str) -> ReportStore:
    from miro_sync.store.reports import TableNotFoundError, open_report_store

    if not members_table:
        raise CommandError("name the members table: --members-table NAME or MEMBERS_TABLE=NAME")
    try:
        return open_report_store(members_table, state_table or None)
    except TableNotFoundError as missing:
        raise CommandError(f"{missing}; check the name, AWS region and endpoint (AWS_ENDPOINT_URL)") from None


def _tables_from_stack(
    stack: str | None, members_table: str, state_table: str, queue_url: str | None = None
) -> tuple[str, str, str]:
    """Blank table names (and, when wanted, the queue URL) from --stack: option > environment > stack."""
    wanted: dict[str, str | None] = {"MEMBERS_TABLE": members_table, "STATE_TABLE": state_table}
    if queue_url is not None:
        wanted["OFFBOARDING_QUEUE_URL"] = queue_url
    try:
        filled = fill_from_stack(stack, wanted, required=("MEMBERS_TABLE",))
    except StackError as error:
        raise CommandError(f"--stack: {error}") from None
    return (
        filled["MEMBERS_TABLE"] or "",
        filled["STATE_TABLE"] or "",
        filled.get("OFFBOARDING_QUEUE_URL") or "",
    )


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise CommandError(f"cannot write {output}: {error}") from None
    errors.print(f"wrote {escape(str(output))}")


def _guard(body: Callable[[], None]) -> None:
    """Turn every expected failure into a one-line message and an exit code, never a traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    from miro_sync.reports.errors import ReportError

    try:
        body()
    except ReportError as error:
        errors.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None
    except CommandError as error:
        errors.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(error.code) from None
    except (BotoCoreError, ClientError) as error:
        errors.print(f"[red]error:[/red] DynamoDB: {escape(str(error))}")
        raise typer.Exit(1) from None


@app.command()
def inactive(
    days: Annotated[
        int, typer.Option("--days", "-d", min=1, help="Inactive when not seen for this many days.")
    ] = 90,
    output_format: Format = OutputFormat.table,
    output: Output = None,
    prices: Prices = None,
    members_table: MembersTable = "",
    state_table: StateTable = "",
    offboard: Annotated[
        OffboardAction | None,
        typer.Option("--offboard", help="Plan this offboarding action for every listed paid seat."),
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Reason recorded with --offboard.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="With --offboard: enqueue (else plan only).")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --offboard: enqueue as dry runs (guards only).")
    ] = False,
    by: Annotated[str | None, typer.Option("--by", help="With --offboard: who asks.")] = None,
    queue_url: Annotated[
        str, typer.Option("--queue-url", envvar="OFFBOARDING_QUEUE_URL", help="With --offboard.")
    ] = "",
    max_sync_age: Annotated[
        float,
        typer.Option(
            "--max-sync-age",
            help="With --offboard: refuse to act when the last complete members sync ended more than "
            "this many hours ago (default: twice the template's MembersSyncSchedule, rate(6 hours)).",
        ),
    ] = DEFAULT_MAX_SYNC_AGE_HOURS,
    stack: Stack = None,
) -> None:
    """Paid seats with no activity for --days (or never), their cost, and what is reclaimable."""

    def body() -> None:
        if offboard is not None and output_format is not OutputFormat.table and output is None:
            raise CommandError(
                "with --offboard and --format csv/json/html, write the report with --output FILE"
            )
        members, state, queue = _tables_from_stack(
            stack, members_table, state_table, queue_url if offboard is not None else None
        )
        if offboard is not None and yes and not queue:
            raise CommandError("--offboard --yes needs --queue-url, OFFBOARDING_QUEUE_URL or --stack")
        if not max_sync_age > 0:
            raise CommandError(f"--max-sync-age must be a positive number of hours, got {max_sync_age}")
        seat_prices = _prices(prices)
        store = _open_store(members, state)
        now = datetime.now(UTC)
        if offboard is not None:
            # before anything else: a stale members table is no ground for acting (exit 2)
            from miro_sync.reports.freshness import require_recent_sync

            require_recent_sync(store.sync_status, now=now, max_age=timedelta(hours=max_sync_age))
        report, licenses = _inactive_reports(store, days, seat_prices, output_format, now=now)
        _render_inactive(report, licenses, output_format, output)
        if offboard is not None:
            _offboard(report, store, offboard.value, reason, yes, dry_run, by, queue, now=now)

    _guard(body)


@app.command()
def licenses(
    output_format: Format = OutputFormat.table,
    output: Output = None,
    prices: Prices = None,
    members_table: MembersTable = "",
    state_table: StateTable = "",
    stack: Stack = None,
) -> None:
    """Seats by license and status now, purchased vs assigned, and the trend over stored snapshots."""

    def body() -> None:
        from miro_sync.reports.collect import collect_licenses

        members, state, _ = _tables_from_stack(stack, members_table, state_table)
        seat_prices = _prices(prices)
        store = _open_store(members, state)
        with errors.status("counting seats and reading usage history"):
            report = collect_licenses(
                store.seats,
                store.snapshots,
                table_name=store.members_table,
                now=datetime.now(UTC),
                prices=seat_prices,
            )
        _render_licenses(report, output_format, output)

    _guard(body)


def _inactive_reports(
    store: ReportStore,
    days: int,
    prices: SeatPrices,
    output_format: OutputFormat,
    *,
    now: datetime | None = None,
) -> tuple[InactiveReport, LicenseReport | None]:
    from miro_sync.reports.collect import collect_inactive, collect_licenses, seat_counts

    now = now or datetime.now(UTC)
    with errors.status(f"selecting paid seats not seen for {days} days"):
        counts = seat_counts(store.seats, prices, table_name=store.members_table)
        report = collect_inactive(
            store.members,
            store.seats,
            table_name=store.members_table,
            days=days,
            now=now,
            prices=prices,
            counts=counts,
        )
        license_report = None
        if output_format is OutputFormat.html:
            # The HTML report also charts seats by license and the trend.
            license_report = collect_licenses(
                store.seats,
                store.snapshots,
                table_name=store.members_table,
                now=now,
                prices=prices,
                counts=counts,
            )
    return report, license_report


def _render_inactive(
    report: InactiveReport, licenses: LicenseReport | None, output_format: OutputFormat, output: Path | None
) -> None:
    from miro_sync.reports import render
    from miro_sync.reports.html_report import render_html

    if output_format is OutputFormat.table:
        if output is None:
            render.render_inactive_table(report, Console(soft_wrap=False))
        else:
            _emit(_captured_table(lambda console: render.render_inactive_table(report, console)), output)
    elif output_format is OutputFormat.csv:
        _emit(render.render_inactive_csv(report), output)
    elif output_format is OutputFormat.json:
        _emit(render.render_json(render.inactive_to_dict(report)), output)
    else:
        _emit(render_html(inactive=report, licenses=licenses), output)


def _render_licenses(report: LicenseReport, output_format: OutputFormat, output: Path | None) -> None:
    from miro_sync.reports import render
    from miro_sync.reports.html_report import render_html

    if output_format is OutputFormat.table:
        if output is None:
            render.render_licenses_table(report, Console())
        else:
            _emit(_captured_table(lambda console: render.render_licenses_table(report, console)), output)
    elif output_format is OutputFormat.csv:
        _emit(render.render_licenses_csv(report), output)
    elif output_format is OutputFormat.json:
        _emit(render.render_json(render.licenses_to_dict(report)), output)
    else:
        _emit(render_html(licenses=report), output)


def _captured_table(draw: Callable[[Console], None]) -> str:
    console = Console(record=True, width=160, file=io.StringIO())
    draw(console)
    return console.export_text()


def _offboard(
    report: InactiveReport,
    store: ReportStore,
    action: str,
    reason: str | None,
    yes: bool,
    dry_run: bool,
    by: str | None,
    queue_url: str,
    *,
    now: datetime | None = None,
) -> None:
    """Feed the selection into `miro-sync offboard`'s own planning, plan display and enqueueing. Only
    seats idle for the whole window are selected (not those new in it); every request carries the
    report's cutoff as `inactiveSince`, which the worker re-checks against Miro before acting."""
    from miro_sync_cli import offboard_cmd

    selected, left_out = report.offboard_selection()
    for seat, why in left_out:
        errors.print(f"[yellow]left out[/yellow] {escape(seat.email)}: new in the window ({escape(why)})")
    emails = [seat.email for seat in selected]
    if not emails:
        errors.print("No inactive paid seats to offboard.")
        return
    try:
        planned = offboard_cmd.build_requests(
            action,
            emails,
            None,
            reason=reason or f"no Miro activity for {report.days}+ days (miro-sync report inactive)",
            requested_by=offboard_cmd._operator(by),
            not_before=None,
            dry_run=dry_run,
            now=now,
            inactive_since=report.cutoff,
        )
    except offboard_cmd.InputError as bad:
        raise CommandError(str(bad)) from None
    offboard_cmd.console.print(
        offboard_cmd.render_plan(
            planned,
            store.members,
            # this command reads no Miro token: name the one that does
            lookup_hint="(`miro-sync offboard ... --token` lists the boards and checks team admins)",
        )
    )
    offboard_cmd.console.print(
        f"Each request carries inactiveSince {report.cutoff.isoformat().replace('+00:00', 'Z')}: the worker "
        "refuses it if Miro shows activity after that."
    )
    if not yes:
        offboard_cmd.console.print(
            f"Nothing enqueued. Re-run with [bold]--yes[/bold] to {action} these {len(planned)} member(s)"
            + (" as dry runs." if dry_run else ".")
        )
        raise typer.Exit(1)
    from miro_sync.store.queue import OffboardingQueue

    sent = offboard_cmd.enqueue(planned, OffboardingQueue.from_url(queue_url))
    offboard_cmd.console.print(
        f"Enqueued {sent} of {len(planned)} request(s). Follow with `miro-sync offboard status`."
    )
    if sent != len(planned):
        raise typer.Exit(1)
