"""The plan `miro-sync offboard` shows before it enqueues: per request the member as the Members table
knows them, the steps, the successor and, with a Miro token, the boards the successor takes over and the
teams the leaver is the last admin of. Everything shown that came from input, the tables or Miro is
escaped (never read as rich markup)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from miro_sync_cli.offboard.input import PlannedRequest
from miro_sync_cli.offboard.terminal import errors

if TYPE_CHECKING:
    from miro_sync.miro import MiroRestClient
    from miro_sync.offboarding.handover import Handover, HandoverDirectory, TeamInfo
    from miro_sync.store.members import MemberRecord

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
        """A Miro client with --token (else the secret --token-secret names); None without either."""
        from miro_sync.miro import MiroRestClient
        from miro_sync.secrets import SecretsManagerToken

        credential: str | SecretsManagerToken
        if self.token:
            credential = self.token
        elif self.token_secret:
            credential = SecretsManagerToken(self.token_secret)
        else:
            return None
        if not self.org_id:
            errors.print("[red]with --token/--token-secret also set --org-id/MIRO_ORG_ID[/red]")
            raise typer.Exit(2)
        return MiroRestClient(self.api_url, credential, self.org_id)
