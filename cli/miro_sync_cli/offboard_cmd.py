"""`miro-sync offboard`: enqueue guarded offboarding actions and follow them.

    miro-sync offboard suspend ann@example.com --reason "left 2025-03-01"          # shows the plan
    miro-sync offboard suspend ann@example.com --reason "left 2025-03-01" --yes    # enqueues
    miro-sync offboard delete --csv leavers.csv --reason "Q1 leavers" --yes
    miro-sync offboard delete bob@example.com --successor carol@example.com --reason "left" --token T
    miro-sync offboard status --member ann@example.com | --request REQ | --outcome held
    miro-sync offboard release [--request REQ ...] [--max N] [--yes]                 # plan, then --yes
    miro-sync offboard cancel REQ ...
    miro-sync offboard status --stack miro-sync-prod --outcome failed      # settings from the stack

Tables, queue, token secret and org id come from the options, else their environment variables, else
the outputs and parameters of the deployed stack named by --stack/MIRO_SYNC_STACK (stack_outputs.py).

Every request is validated with the worker's own message model before anything is sent (a CSV is all
or nothing): a row naming another action than the command's, a dryRun other than true/false, a
notBefore more than MAX_NOT_BEFORE_BEHIND_CLI in the past or more than MAX_NOT_BEFORE_AHEAD ahead, a
successor on reactivate, a successor who is the leaver or is offboarded in the same run, or one leaver
given two successors is refused with its line. The plan shows each request's steps and successor and,
with a Miro token, the boards the successor takes over and the teams the leaver is the last admin of.
Each request gets an explicit requestId unique to this run of the command (a CSV row may give its own):
running a command again later is a new request (suspend -> reactivate -> suspend acts three times),
while SQS redeliveries and the retried sends of one run stay one request. Everything shown that came
from input, the tables or Miro is escaped (never read as rich markup). The CLI talks to AWS only
through miro_sync.store adapters; heavy imports stay inside the commands so `miro-sync --help` stays
fast.
"""

from __future__ import annotations

import csv
import getpass
import inspect
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from miro_sync_cli.stack_outputs import Stack, fill_or_exit

if TYPE_CHECKING:
    from miro_sync.miro import MiroRestClient
    from miro_sync.offboarding.handover import Handover, HandoverDirectory, TeamInfo
    from miro_sync.offboarding.messages import OffboardingRequest
    from miro_sync.store.actions import ActionRecord, ActionsRepository
    from miro_sync.store.members import MemberRecord

app = typer.Typer(no_args_is_help=True, help="Enqueue and follow offboarding actions.")
console = Console()
errors = Console(stderr=True)

QueueUrl = Annotated[
    str, typer.Option("--queue-url", envvar="OFFBOARDING_QUEUE_URL", help="Offboarding SQS queue.")
]
ActionsTable = Annotated[
    str, typer.Option("--actions-table", envvar="ACTIONS_TABLE", help="Actions table name.")
]
MembersTable = Annotated[
    str, typer.Option("--members-table", envvar="MEMBERS_TABLE", help="Members table name.")
]
Operator = Annotated[
    str | None,
    typer.Option("--by", help="Who asks (recorded as requestedBy/releasedBy); default: your login."),
]


@dataclass(frozen=True)
class PlannedRequest:
    request: OffboardingRequest
    source: str  # "argument 2" or "leavers.csv line 7", for error messages


class InputError(Exception):
    """Bad command-line or CSV input; nothing has been sent."""


def _operator(by: str | None) -> str:
    return by or os.environ.get("MIRO_SYNC_OPERATOR") or getpass.getuser()


def build_requests(
    action: str,
    emails: Sequence[str],
    csv_file: Path | None,
    *,
    reason: str | None,
    requested_by: str,
    not_before: str | None,
    dry_run: bool,
    submission: str | None = None,
    now: datetime | None = None,
    inactive_since: datetime | None = None,
    successor: str | None = None,
) -> list[PlannedRequest]:
    """Validate everything first; raise InputError listing every bad row, so a CSV is all or nothing.
    Rows without a requestId get one from `submission` (default: this run, see `new_submission`).
    `now` (default: the clock) bounds notBefore; `inactive_since` is set on every request (the
    precondition `report inactive --offboard` hands the worker); `successor` (--successor) is the
    successor of every row without its own `successor` column value."""
    from pydantic import ValidationError

    from miro_sync.offboarding.messages import (
        InvalidRequestError,
        OffboardingRequest,
        cli_request_id,
        describe_validation_error,
        parse_instant,
    )

    now = (now or datetime.now(UTC)).astimezone(UTC)
    submission = submission or new_submission(now)
    if not_before is not None:
        try:
            problem = not_before_problem(parse_instant(not_before, "--not-before"), now)
        except ValueError as bad:
            problem = str(bad)
        if problem:
            raise InputError(f"nothing was enqueued: --not-before: {problem}")

    rows: list[tuple[str, dict[str, Any]]] = []
    for position, email in enumerate(emails, 1):
        rows.append((f"argument {position}", {"email": email}))
    if csv_file is not None:
        with csv_file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            allowed = {
                "email",
                "memberId",
                "action",
                "reason",
                "requestedBy",
                "notBefore",
                "requestId",
                "dryRun",
                "successor",
            }
            unknown = set(reader.fieldnames or []) - allowed
            if unknown:
                raise InputError(
                    f"{csv_file}: unknown column(s) {', '.join(sorted(unknown))}; allowed: {sorted(allowed)}"
                )
            for line, row in enumerate(reader, 2):
                rows.append(
                    (
                        f"{csv_file.name} line {line}",
                        {k: v.strip() for k, v in row.items() if k and v and v.strip()},
                    )
                )
    if not rows:
        raise InputError("name at least one EMAIL or a --csv FILE")
    planned: list[PlannedRequest] = []
    problems: list[str] = []
    for source, row in rows:
        message: dict[str, Any] = {"requestedBy": requested_by, **row, "action": action}
        row_problems: list[str] = []
        if "action" in row and row["action"] != action:
            # the command names the action; a row may only repeat it, never change it
            row_problems.append(f"the action column says {row['action']!r} but this command is {action!r}")
        if reason and "reason" not in row:
            message["reason"] = reason
        if not_before and "notBefore" not in row:
            message["notBefore"] = not_before
        if successor and "successor" not in row:
            message["successor"] = successor
        if "dryRun" in message:
            spelled = str(message["dryRun"]).lower()
            if spelled not in {"true", "false"}:
                row_problems.append(f"dryRun must be true or false, got {str(message['dryRun'])[:40]!r}")
            message["dryRun"] = spelled == "true"
        if dry_run:
            message["dryRun"] = True
        if inactive_since is not None:
            message["inactiveSince"] = inactive_since
        request: OffboardingRequest | None = None
        try:
            request = OffboardingRequest.model_validate(message)
        except ValidationError as invalid:
            row_problems.append(describe_validation_error(invalid))
        except InvalidRequestError as invalid:  # pragma: no cover - model_validate raises ValidationError
            row_problems.append(invalid.reason)
        if request is not None and request.not_before is not None and "notBefore" in row:
            problem = not_before_problem(request.not_before, now)
            if problem:
                row_problems.append(f"notBefore: {problem}")
        if row_problems or request is None:
            problems.append(f"{source}: {'; '.join(row_problems)}")
            continue
        if "requestId" not in row:
            request = request.model_copy(
                update={
                    "request_id": cli_request_id(
                        request.action,
                        request.member_key,
                        request.not_before,
                        dry_run=request.dry_run,
                        submission=submission,
                        successor=request.successor,
                    )
                }
            )
        planned.append(PlannedRequest(request, source))
    problems.extend(_successor_problems(planned))
    keys = [p.request.key for p in planned]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        problems.append(f"the same request appears more than once: {', '.join(duplicates)}")
    if problems:
        raise InputError("nothing was enqueued:\n  " + "\n  ".join(problems))
    return planned


def _successor_problems(planned: Sequence[PlannedRequest]) -> list[str]:
    """What the message model cannot see row by row: a successor who leaves in the same run (their
    boards would be handed to someone being offboarded), and one leaver given two successors."""
    leavers = {p.request.email for p in planned if p.request.email and p.request.is_destructive}
    problems: list[str] = []
    successors: dict[str, set[str]] = {}
    for item in planned:
        request = item.request
        if request.is_destructive:
            successors.setdefault(request.member_key, set()).add(request.successor or "none")
        if request.successor is None:
            continue
        if request.successor in leavers:
            problems.append(
                f"{item.source}: successor {request.successor} is offboarded by this command too; "
                "name someone who stays"
            )
    for member_key, named in sorted(successors.items()):
        if len(named) > 1:
            problems.append(
                f"{member_key} is given different successors ({', '.join(sorted(named))}): "
                "one successor per leaver"
            )
    return problems


def not_before_problem(not_before: datetime, now: datetime) -> str | None:
    """Why the CLI refuses this notBefore, or None: a time well in the past is a typo or a stale file
    (it would run at once), one more than MAX_NOT_BEFORE_AHEAD ahead is one the worker refuses."""
    from miro_sync.offboarding.messages import MAX_NOT_BEFORE_AHEAD, MAX_NOT_BEFORE_BEHIND_CLI

    if not_before < now - MAX_NOT_BEFORE_BEHIND_CLI:
        return (
            f"{not_before.isoformat()} is more than {_span(MAX_NOT_BEFORE_BEHIND_CLI)} in the past "
            f"(now {now.isoformat(timespec='seconds')})"
        )
    if not_before > now + MAX_NOT_BEFORE_AHEAD:
        return f"{not_before.isoformat()} is more than {_span(MAX_NOT_BEFORE_AHEAD)} ahead"
    return None


def _span(span: timedelta) -> str:
    if span >= timedelta(days=1):
        return f"{span.days} days"
    return f"{int(span.total_seconds() // 60)} minutes"


def new_submission(now: datetime | None = None) -> str:
    """One run of the command: its UTC time (readable in the ids) and a random part (two runs in the
    same second are still two submissions)."""
    import secrets

    at = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


# How many boards the plan names per request; the rest are counted.
PLAN_BOARDS_SHOWN = 10
LOOKUP_HINT = "(give --token to list the boards and check team admins)"
RESET_SESSIONS_NOTE = "(reset_sessions unless the stack turns it off)"


@dataclass(frozen=True)
class PlanDetail:
    """What the plan knows about one request besides its message: the member's Members-table record and,
    with a Miro token, what they leave behind (or why that could not be read)."""

    item: PlannedRequest
    record: MemberRecord | None
    successor_record: MemberRecord | None
    handover: Handover | None = None
    handover_error: str | None = None

    @property
    def admin_teams(self) -> list[TeamInfo]:
        """The teams the Members table says the member is admin of."""
        from miro_sync.offboarding.handover import TeamInfo
        from miro_sync.store.members import TEAM_ROLE_ADMIN

        if self.record is None:
            return []
        return [TeamInfo(m.id, m.name) for m in self.record.team_memberships if m.role == TEAM_ROLE_ADMIN]

    @property
    def refused_delete(self) -> bool:
        """A delete without a successor of the last admin of a team: Miro refuses it (SCIM 409), so the
        worker refuses it before it starts."""
        request = self.item.request
        return (
            request.action == "delete"
            and request.successor is None
            and self.handover is not None
            and bool(self.handover.sole_admin_teams)
        )


def plan_details(
    planned: Sequence[PlannedRequest],
    members: Any,
    directory: HandoverDirectory | None = None,
    *,
    on_progress: Callable[[], None] | None = None,
) -> list[PlanDetail]:
    """Read what the plan shows: the Members table for everyone and, with `directory` (a Miro client),
    each leaver's boards (when a successor takes them over) and, for deletes, the teams they are the
    last admin of. A Miro error is shown with its request, never fatal: the plan is information."""
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    from miro_sync.miro.errors import MiroError
    from miro_sync.offboarding.handover import find_handover
    from miro_sync.secrets import TokenUnavailableError

    details: list[PlanDetail] = []
    for item in planned:
        request = item.request
        record = members.find_by_email(request.email) if request.email else members.get(request.member_id)
        successor_record = members.find_by_email(request.successor) if request.successor else None
        detail = PlanDetail(item, record, successor_record)
        member_id = record.member_id if record is not None else request.member_id
        if directory is not None and member_id and request.is_destructive:
            try:
                handover = find_handover(
                    directory,
                    member_id,
                    detail.admin_teams if request.action == "delete" else [],
                    boards_counted=record.boards_owned if record is not None else None,
                    with_boards=request.successor is not None,
                )
                detail = PlanDetail(item, record, successor_record, handover=handover)
            except MiroError as error:
                detail = PlanDetail(item, record, successor_record, handover_error=str(error))
            except (GetParameterError, TokenUnavailableError) as error:
                # the token secret (e.g. the stack's) could not be read: the message names the secret and
                # the AWS error, never a value
                detail = PlanDetail(item, record, successor_record, handover_error=f"token: {error}")
        details.append(detail)
        if on_progress is not None:
            on_progress()
    return details


def render_plan(
    planned: Sequence[PlannedRequest],
    members: Any,
    directory: HandoverDirectory | None = None,
    *,
    details: Sequence[PlanDetail] | None = None,
    lookup_hint: str = LOOKUP_HINT,
) -> Group:
    """The plan: who, with which role/licence/boards according to the Members table, and per request its
    steps, its successor and what the successor takes over (read from Miro when `directory` is given;
    pass `details` from `plan_details` to render what was already read)."""
    if details is None:
        details = plan_details(planned, members, directory)
    table = Table(title=f"Offboarding plan ({len(planned)} request(s))")
    for column in (
        "action",
        "member",
        "role",
        "license",
        "status",
        "boards owned",
        "successor",
        "not before",
        "request id",
    ):
        table.add_column(column)
    for detail in details:
        request, record = detail.item.request, detail.record
        if record is None:
            who, role, license_, status, boards = request.member_key, "?", "?", "not in members table", "?"
        else:
            who = f"{record.email} ({record.member_id})"
            role, license_, status, boards = (
                record.role,
                record.license,
                record.status,
                str(record.boards_owned),
            )
        action = request.action + (" (dry run)" if request.dry_run else "")
        not_before = request.not_before.isoformat() if request.not_before else "-"
        # every cell comes from input or the tables: never read as rich markup
        table.add_row(
            *(
                escape(cell)
                for cell in (
                    action,
                    who,
                    role,
                    license_,
                    status,
                    boards,
                    request.successor or "-",
                    not_before,
                    request.key,
                )
            )
        )
    parts: list[RenderableType] = [table]
    for detail in details:
        parts.append(Text.from_markup(_plan_detail_markup(detail, lookup_hint, looked_up=directory)))
    refused = [d for d in details if d.refused_delete]
    if refused:
        parts.append(
            Text.from_markup(
                f"[bold red]{len(refused)} delete(s) will be refused by the worker[/bold red] (the leaver is "
                "the last admin of a team): give [bold]--successor EMAIL[/bold] (or a successor column) "
                "to make the successor admin of those teams first."
            )
        )
    return Group(*parts)


def _plan_detail_markup(detail: PlanDetail, lookup_hint: str, *, looked_up: object) -> str:
    """The lines under the table for one request (rich markup; everything from input, the tables or Miro
    is escaped)."""
    from miro_sync.offboarding.steps import RESET_SESSIONS, StepOptions, describe_steps, planned_steps

    request = detail.item.request
    record = detail.record
    steps = planned_steps(request.action, StepOptions(successor=request.successor, reset_sessions=True))
    who = record.email if record is not None else request.member_key
    lines = [f"[bold]{escape(request.action)} {escape(who)}[/bold] ({escape(request.key)})"]
    note = f" {RESET_SESSIONS_NOTE}" if RESET_SESSIONS in steps else ""
    lines.append(f"  steps: {escape(describe_steps(steps))}{escape(note)}")
    if request.is_destructive:
        lines.append(f"  successor: {_successor_markup(detail)}")
    if request.is_destructive and detail.handover_error is not None:
        lines.append(f"  [yellow]could not read Miro: {escape(detail.handover_error)}[/yellow]")
    elif request.is_destructive and detail.handover is not None:
        lines.extend(_handover_markup(detail, detail.handover))
    elif request.is_destructive:
        counted = str(record.boards_owned) if record is not None else "?"
        admin_teams = detail.admin_teams if request.action == "delete" else []
        # the hint only where a token would show more: boards to hand over, last-admin teams
        useful = looked_up is None and (request.successor is not None or bool(admin_teams))
        hint = f" {escape(lookup_hint)}" if useful else ""
        lines.append(f"  boards owned: {escape(counted)} (Members table){hint}")
        if admin_teams:
            named = ", ".join(f"{team.name} ({team.id})" for team in admin_teams)
            lines.append(
                f"  admin of team(s) {escape(named)}: if they are the last admin there, the worker "
                "refuses a delete without a successor"
            )
    return "\n".join(lines)


def _successor_markup(detail: PlanDetail) -> str:
    request = detail.item.request
    if request.successor is None:
        return "none: boards are not handed over" + (
            ", team admin roles are not passed on" if request.action == "delete" else ""
        )
    successor = detail.successor_record
    text = escape(request.successor)
    if successor is None:
        return f"{text} [yellow](not in the Members table: the worker refuses an unknown successor)[/yellow]"
    facts = escape(f"({successor.role}, {successor.license}, {successor.status})")
    if detail.record is not None and successor.member_id == detail.record.member_id:
        return f"{text} [red]is the leaver: the worker refuses this request[/red]"
    if successor.status != "active":
        return f"{text} {facts} [yellow]not active: the worker refuses this successor[/yellow]"
    return f"{text} {facts}"


def _handover_markup(detail: PlanDetail, handover: Handover) -> list[str]:
    request = detail.item.request
    lines: list[str] = []
    if request.successor is not None:
        boards = handover.boards
        lines.append(f"  boards to hand over: {len(boards)}")
        for board in boards[:PLAN_BOARDS_SHOWN]:
            lines.append(f"    {escape(board.name)} ({escape(board.id)})")
        if len(boards) > PLAN_BOARDS_SHOWN:
            lines.append(f"    and {len(boards) - PLAN_BOARDS_SHOWN} more")
        if handover.boards_unseen:
            lines.append(
                f"  [yellow]{handover.boards_unseen} more board(s) owned but not visible to the token "
                "(needs Content Admin): not handed over[/yellow]"
            )
    else:
        counted = str(detail.record.boards_owned) if detail.record is not None else "?"
        lines.append(f"  boards owned: {escape(counted)} (Members table; no successor: not handed over)")
    if request.action == "delete":
        teams = handover.sole_admin_teams
        named = ", ".join(f"{team.name} ({team.id})" for team in teams)
        if not teams:
            checked = len(detail.admin_teams)
            lines.append(
                f"  last admin of: no team (checked the {checked} team(s) the Members table "
                "lists them as admin of)"
            )
        elif request.successor is not None:
            lines.append(f"  last admin of: {escape(named)}: the successor is made admin there first")
        else:
            lines.append(
                "  [bold red]✗ the worker will refuse this delete:[/bold red] "
                f"last admin of {escape(named)}; give [bold]--successor EMAIL[/bold] to make "
                "someone admin there first"
            )
    return lines


def enqueue(planned: Sequence[PlannedRequest], queue: Any) -> int:
    from rich.progress import Progress

    from miro_sync.store.queue import OutgoingMessage

    messages = [OutgoingMessage(body=item.request.to_body()) for item in planned]
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("enqueueing", total=len(messages))
        failures = queue.send_batch(messages, on_sent=lambda count: progress.advance(task, count))
    for failure in failures:
        errors.print(
            f"[red]not enqueued[/red] {escape(planned[failure.index].source)}: "
            f"{escape(str(failure.code))} {escape(str(failure.message))}"
        )
    return len(messages) - len(failures)


DEFAULT_API_URL = "https://api.miro.com"


@dataclass(frozen=True)
class MiroAccess:
    """Where the plan reads boards and team admins from (optional: without a token the plan shows the
    Members table's counts)."""

    api_url: str = DEFAULT_API_URL
    org_id: str = ""
    token: str | None = None
    token_secret: str | None = None

    def directory(self) -> MiroRestClient | None:
        from miro_sync.miro import MiroRestClient
        from miro_sync.secrets import SecretsManagerToken

        if not (self.token or self.token_secret):
            return None
        if not self.org_id:
            errors.print("[red]with --token/--token-secret also set --org-id/MIRO_ORG_ID[/red]")
            raise typer.Exit(2)
        if self.token:
            return MiroRestClient(self.api_url, self.token, self.org_id)
        assert self.token_secret is not None
        return MiroRestClient(self.api_url, SecretsManagerToken(self.token_secret), self.org_id)


def _submit(
    action: str,
    emails: list[str],
    csv_file: Path | None,
    reason: str | None,
    not_before: str | None,
    dry_run: bool,
    yes: bool,
    by: str | None,
    queue_url: str,
    members_table: str,
    *,
    successor: str | None = None,
    miro: MiroAccess | None = None,
) -> None:
    from miro_sync.store.members import MembersRepository
    from miro_sync.store.queue import OffboardingQueue

    try:
        planned = build_requests(
            action,
            emails,
            csv_file,
            reason=reason,
            requested_by=_operator(by),
            not_before=not_before,
            dry_run=dry_run,
            successor=successor,
        )
    except (InputError, OSError, UnicodeDecodeError, csv.Error) as bad:
        errors.print(f"[red]{escape(str(bad))}[/red]")
        raise typer.Exit(2) from None
    import boto3

    members = MembersRepository(boto3.resource("dynamodb").Table(members_table))
    directory = (miro or MiroAccess()).directory()
    if directory is None:
        details = plan_details(planned, members)
    else:
        from rich.progress import Progress

        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("reading boards and team admins from Miro", total=len(planned))
            details = plan_details(planned, members, directory, on_progress=lambda: progress.advance(task, 1))
    console.print(render_plan(planned, members, directory, details=details))
    if not yes:
        console.print("Nothing enqueued. Re-run with [bold]--yes[/bold] to enqueue these requests.")
        raise typer.Exit(1)
    sent = enqueue(planned, OffboardingQueue.from_url(queue_url))
    console.print(f"Enqueued {sent} of {len(planned)} request(s). Follow with `miro-sync offboard status`.")
    if sent != len(planned):
        raise typer.Exit(1)


# Only on the actions that hand something over (suspend, delete): see _make_action_command.
_HANDOVER_PARAMETERS = ("successor", "api_url", "org_id", "token", "token_secret")


def _make_action_command(action: str, summary: str) -> None:
    def command(
        emails: Annotated[list[str] | None, typer.Argument(help="Member emails.", show_default=False)] = None,
        reason: Annotated[
            str | None, typer.Option("--reason", help="Why (recorded in the audit trail).")
        ] = None,
        csv_file: Annotated[
            Path | None,
            typer.Option(
                "--csv",
                exists=True,
                dir_okay=False,
                help="CSV with an email or memberId column (optional columns: reason, notBefore, "
                "requestId, dryRun, successor (suspend, delete), action).",
            ),
        ] = None,
        not_before: Annotated[
            str | None,
            typer.Option(
                "--not-before",
                help="ISO-8601 time with an offset, e.g. 2025-03-01T18:00:00Z (at most 366 days ahead); "
                "carried out when due (cancellable).",
            ),
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Check guards and record the plan only.")
        ] = False,
        yes: Annotated[
            bool, typer.Option("--yes", help="Enqueue (without it only the plan is shown).")
        ] = False,
        by: Operator = None,
        queue_url: QueueUrl = "",
        members_table: MembersTable = "",
        successor: Annotated[
            str | None,
            typer.Option(
                "--successor",
                help="Email of who takes over: co-owner of every board the leaver owns and, on delete, "
                "admin of the teams the leaver is the last admin of. Default for CSV rows without "
                "a successor column value.",
                show_default=False,
            ),
        ] = None,
        api_url: Annotated[
            str,
            typer.Option(
                "--api-url",
                envvar="MIRO_API_URL",
                help="Miro REST base URL (for the plan). Default: the stack's MiroApiUrl, else "
                f"{DEFAULT_API_URL}.",
                show_default=False,
            ),
        ] = "",
        org_id: Annotated[
            str, typer.Option("--org-id", envvar="MIRO_ORG_ID", help="Miro organization id (for the plan).")
        ] = "",
        token: Annotated[
            str | None,
            typer.Option(
                "--token",
                envvar="MIRO_TOKEN",
                help="Miro REST token (optional): the plan then lists the boards to hand over and the "
                "teams the leaver is the last admin of.",
                show_default=False,
            ),
        ] = None,
        token_secret: Annotated[
            str | None,
            typer.Option(
                "--token-secret",
                envvar="MIRO_TOKEN_SECRET",
                help="Secrets Manager name of the token (with --stack: the stack's MiroTokenSecretArn).",
            ),
        ] = None,
        stack: Stack = None,
    ) -> None:
        wanted: dict[str, str | None] = {"OFFBOARDING_QUEUE_URL": queue_url, "MEMBERS_TABLE": members_table}
        if action in {"suspend", "delete"}:
            # the plan reads the leaver's boards and team admins (with --token, or the stack's token)
            wanted.update({"MIRO_ORG_ID": org_id, "MIRO_API_URL": api_url})
            if not token:
                wanted["MIRO_TOKEN_SECRET"] = token_secret
        settings = fill_or_exit(
            stack, wanted, required=("OFFBOARDING_QUEUE_URL", "MEMBERS_TABLE"), console=errors
        )
        queue_url = settings["OFFBOARDING_QUEUE_URL"] or ""
        members_table = settings["MEMBERS_TABLE"] or ""
        if not queue_url or not members_table:
            errors.print(
                "[red]set --queue-url/OFFBOARDING_QUEUE_URL and --members-table/MEMBERS_TABLE "
                "(or --stack/MIRO_SYNC_STACK)[/red]"
            )
            raise typer.Exit(2)
        if "MIRO_ORG_ID" in settings:
            token_secret = settings.get("MIRO_TOKEN_SECRET", token_secret)
            org_id = settings["MIRO_ORG_ID"] or ""
            api_url = settings["MIRO_API_URL"] or ""
        _submit(
            action,
            emails or [],
            csv_file,
            reason,
            not_before,
            dry_run,
            yes,
            by,
            queue_url,
            members_table,
            successor=successor,
            miro=MiroAccess(api_url or DEFAULT_API_URL, org_id, token, token_secret),
        )

    command.__doc__ = summary
    if action not in {"suspend", "delete"}:
        # reactivate hands nothing over: no --successor (the message model refuses one) and no token
        signature = inspect.signature(command, eval_str=True)  # the typer.Option metadata, not strings
        command.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[p for p in signature.parameters.values() if p.name not in _HANDOVER_PARAMETERS]
        )
    app.command(name=action)(command)


_make_action_command("suspend", "Suspend members (SCIM active=false, confirmed by reading back).")
_make_action_command(
    "delete", "Delete members (suspend first); with --successor their boards and team admin roles go to them."
)
_make_action_command("reactivate", "Reactivate suspended members.")


def _records_table(records: Iterable[ActionRecord], title: str) -> Table:
    table = Table(title=title)
    for column in (
        "request id",
        "action",
        "member",
        "requested by",
        "outcome",
        "successor",
        "steps",
        "reason",
        "updated",
        "attempts",
    ):
        table.add_column(column, overflow="fold")
    for record in records:
        # everything in a record came from a message, an operator or Miro: escaped, never markup
        detail = escape(record.outcome_reason or record.last_error or "")
        if record.warning:
            detail = f"{detail} [yellow]{escape(record.warning)}[/yellow]"
        statuses = ",".join(str(a.status) if a.status is not None else "-" for a in record.attempts) or "-"
        table.add_row(
            escape(record.request_id),
            escape(record.action),
            escape(record.email or record.member_key),
            # who asked, and the AWS principal that sent the message (SQS SenderId)
            escape(record.requested_by + (f" via {record.sender_id}" if record.sender_id else "")),
            escape(record.outcome),
            escape(record.successor or "-"),
            escape(describe_record_steps(record)),
            detail,
            escape(record.updated_at),
            statuses,
        )
    return table


# How a recorded step's status reads in `status` (a step not recorded yet reads "…").
STEP_MARKS: dict[str, str] = {"done": "✓", "skipped": "skipped", "partly": "partly"}


def describe_record_steps(record: ActionRecord) -> str:
    """e.g. "hand_over_boards ✓ 12, deactivate ✓, read_back …, reset_sessions …": the steps recorded so
    far (with their count, e.g. boards handed over) and, while the request is open, the steps its action
    still has to take ("…"); a dry run lists its steps as planned. Plain text: escape before printing."""
    from miro_sync.offboarding.steps import StepOptions, planned_steps
    from miro_sync.store.actions import OPEN_OUTCOMES

    parts = []
    for step in record.steps:
        text = f"{step.kind} {STEP_MARKS.get(step.status, step.status)}"
        if step.count is not None:
            text += f" {step.count}"
        parts.append(text)
    try:
        planned = planned_steps(record.action, StepOptions(successor=record.successor))
    except KeyError:  # an invalid request's record names an action that has no steps
        planned = ()
    recorded = {step.kind for step in record.steps}
    remaining = [kind for kind in planned if kind not in recorded]
    if record.outcome in OPEN_OUTCOMES:
        parts.extend(f"{kind} …" for kind in remaining)
    elif record.outcome == "dry-run" and not record.steps and remaining:
        parts.append("planned: " + ", ".join(remaining))
    return ", ".join(parts) or "-"


def _actions(table_name: str) -> ActionsRepository:
    from miro_sync.store.actions import ActionsRepository

    if not table_name:
        errors.print("[red]set --actions-table/ACTIONS_TABLE (or --stack/MIRO_SYNC_STACK)[/red]")
        raise typer.Exit(2)
    return ActionsRepository.from_table_name(table_name)


def _from_stack(stack: str | None, values: dict[str, str | None], *required: str) -> dict[str, str]:
    """Blank options filled from --stack (explicit option > environment variable > stack output)."""
    filled = fill_or_exit(stack, values, required=required, console=errors)
    return {setting: value or "" for setting, value in filled.items()}


@app.command()
def status(
    request: Annotated[list[str] | None, typer.Option("--request", help="Request id(s).")] = None,
    member: Annotated[str | None, typer.Option("--member", help="Member email or id:MEMBER_ID.")] = None,
    outcome: Annotated[
        str | None, typer.Option("--outcome", help="e.g. held, pending, failed, refused.")
    ] = None,
    actions_table: ActionsTable = "",
    stack: Stack = None,
) -> None:
    """Show requests by id, by member or by outcome."""
    if not (request or member or outcome):
        errors.print("[red]name --request, --member or --outcome[/red]")
        raise typer.Exit(2)
    actions_table = _from_stack(stack, {"ACTIONS_TABLE": actions_table}, "ACTIONS_TABLE")["ACTIONS_TABLE"]
    repository = _actions(actions_table)
    records: list[ActionRecord] = []
    if request:
        records.extend(r for r in (repository.get(request_id) for request_id in request) if r is not None)
    if member:
        records.extend(repository.by_member(member.strip().lower() if "@" in member else member.strip()))
    if outcome:
        records.extend(repository.by_outcome(outcome))  # type: ignore[arg-type]
    if not records:
        console.print("No matching requests.")
        raise typer.Exit(1)
    console.print(_records_table(records, f"{len(records)} request(s)"))


def _default_release_max() -> int:
    """The worker's own default for MAX_ACTIONS_PER_HOUR (the template's MaxActionsPerHour default)."""
    from miro_sync.settings.offboarding import OffboardingSettings

    default = OffboardingSettings.model_fields["max_actions_per_hour"].default
    return int(default)


@app.command()
def release(
    request: Annotated[
        list[str] | None, typer.Option("--request", help="Only these held request ids.")
    ] = None,
    max_count: Annotated[
        int | None,
        typer.Option(
            "--max",
            min=1,
            envvar="MAX_ACTIONS_PER_HOUR",
            show_envvar=True,
            show_default=False,
            help="Release at most this many (oldest first). Default: MAX_ACTIONS_PER_HOUR, else 25 "
            "(the template's MaxActionsPerHour default), so one release is at most one hour's budget.",
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Release (without it only the plan is shown).")] = False,
    by: Operator = None,
    actions_table: ActionsTable = "",
    queue_url: QueueUrl = "",
    stack: Stack = None,
) -> None:
    """Show the held actions a release would let continue past the blast-radius limit; with --yes
    release them (the approval is recorded)."""
    from miro_sync.offboarding.worker import PHASE_ATTRIBUTE, PHASE_RELEASE
    from miro_sync.store.actions import ActionConflictError, utc_now_iso
    from miro_sync.store.queue import OffboardingQueue, OutgoingMessage

    wanted: dict[str, str | None] = {"ACTIONS_TABLE": actions_table, "OFFBOARDING_QUEUE_URL": queue_url}
    if max_count is None:
        wanted["MAX_ACTIONS_PER_HOUR"] = None  # the stack's MaxActionsPerHour
    required = ("ACTIONS_TABLE", "OFFBOARDING_QUEUE_URL") if yes else ("ACTIONS_TABLE",)
    settings = _from_stack(stack, wanted, *required)
    actions_table, queue_url = settings["ACTIONS_TABLE"], settings["OFFBOARDING_QUEUE_URL"]
    if max_count is None and settings.get("MAX_ACTIONS_PER_HOUR", "").isdigit():
        max_count = max(1, int(settings["MAX_ACTIONS_PER_HOUR"]))
    limit = max_count if max_count is not None else _default_release_max()
    repository = _actions(actions_table)
    if yes and not queue_url:
        errors.print("[red]set --queue-url/OFFBOARDING_QUEUE_URL (or --stack/MIRO_SYNC_STACK)[/red]")
        raise typer.Exit(2)
    more_held = False
    if request:
        candidates: list[ActionRecord] = []
        for request_id in request:
            record = repository.get(request_id)
            if record is None:
                errors.print(f"[yellow]{escape(request_id)}: no such request; skipped[/yellow]")
            elif record.outcome != "held":
                errors.print(
                    f"[yellow]{escape(request_id)} is not held ({escape(record.outcome)}); skipped[/yellow]"
                )
            else:
                candidates.append(record)
        more_held = len(candidates) > limit
    else:
        candidates = list(repository.by_outcome("held", limit=limit + 1))
        more_held = len(candidates) > limit
    candidates = candidates[:limit]
    if not candidates:
        console.print("Nothing to release.")
        raise typer.Exit(1)
    console.print(_records_table(candidates, f"Release plan: {len(candidates)} held request(s)"))
    if more_held:
        console.print(
            f"[yellow]More held requests wait beyond --max {limit}: release them in a later run.[/yellow]"
        )
    if not yes:
        console.print(
            f"Nothing released. Re-run with [bold]--yes[/bold] to release these {len(candidates)} request(s)."
        )
        return
    operator = _operator(by)
    released: list[tuple[ActionRecord, OutgoingMessage]] = []
    for record in candidates:
        now = datetime.now(UTC)
        try:
            updated = repository.update(
                record.request_id,
                at=now,
                expected={"held"},
                fields={"released_by": operator, "released_at": utc_now_iso(now)},
            )
        except ActionConflictError:
            current = repository.get(record.request_id)
            state = current.outcome if current else "unknown request"
            errors.print(
                f"[yellow]{escape(record.request_id)} is not held ({escape(state)}); skipped[/yellow]"
            )
            continue
        released.append(
            (updated, OutgoingMessage(body=updated.body, attributes={PHASE_ATTRIBUTE: PHASE_RELEASE}))
        )
    if not released:
        console.print("Nothing to release.")
        raise typer.Exit(1)
    failures = OffboardingQueue.from_url(queue_url).send_batch([message for _, message in released])
    for failure in failures:
        errors.print(
            f"[red]release of {escape(released[failure.index][0].request_id)} not enqueued: "
            f"{escape(str(failure.code))}[/red]"
        )
    console.print(
        _records_table([record for record, _ in released], f"Released {len(released) - len(failures)}")
    )
    if failures:
        raise typer.Exit(1)


# What a cancel may stop: requests waiting for their time (pending), for an operator (held) or for their
# next retry (failed). The worker claims a request (outcome received) before it calls Miro, so a cancel
# can never land while the request is inside Miro.
CANCELLABLE: frozenset[str] = frozenset({"pending", "held", "failed"})


@app.command()
def cancel(
    request: Annotated[
        list[str], typer.Argument(help="Request id(s) of pending, held or failed (retrying) actions.")
    ],
    by: Operator = None,
    actions_table: ActionsTable = "",
    stack: Stack = None,
) -> None:
    """Cancel pending (notBefore), held or failed-and-retrying actions; a cancelled request's later
    message does nothing."""
    from miro_sync.store.actions import ActionConflictError

    actions_table = _from_stack(stack, {"ACTIONS_TABLE": actions_table}, "ACTIONS_TABLE")["ACTIONS_TABLE"]
    repository = _actions(actions_table)
    operator = _operator(by)
    cancelled = 0
    for request_id in request:
        try:
            repository.update(
                request_id,
                at=datetime.now(UTC),
                # only while waiting: once the worker has claimed a request, it may be inside Miro
                expected=CANCELLABLE,
                outcome="cancelled",
                fields={"cancelled_by": operator, "outcome_reason": f"cancelled by {operator}"},
            )
            cancelled += 1
            console.print(f"cancelled {escape(request_id)}")
        except ActionConflictError:
            current = repository.get(request_id)
            state = current.outcome if current else "unknown request"
            errors.print(f"[yellow]{escape(request_id)} cannot be cancelled ({escape(state)})[/yellow]")
    if cancelled != len(request):
        raise typer.Exit(1)
