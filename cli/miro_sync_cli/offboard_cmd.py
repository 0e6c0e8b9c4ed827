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

This module holds the typer commands; what they do lives in offboard/: the input validated with the
worker's own message model before anything is sent, a CSV all or nothing (input.py), the plan with
each request's steps and successor and, with a Miro token, the boards the successor takes over and the
teams the leaver is the last admin of (plan.py), the status table (records.py) and releasing held
requests (release.py). Everything shown that came from input, the tables or Miro is escaped (never read
as rich markup). The CLI talks to AWS only through miro_sync.store adapters; heavy imports stay inside
the commands so `miro-sync --help` stays fast.
"""

from __future__ import annotations

import csv
import getpass
import inspect
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from miro_sync_cli.offboard.input import InputError, PlannedRequest, build_requests
from miro_sync_cli.offboard.plan import DEFAULT_API_URL, MiroAccess, plan_details, render_plan
from miro_sync_cli.offboard.records import describe_record_steps, records_table
from miro_sync_cli.offboard.release import (
    held_requests,
    release_limit,
    release_requests,
    show_release_plan,
)
from miro_sync_cli.offboard.terminal import console, errors
from miro_sync_cli.stack_outputs import Stack, fill_or_exit

if TYPE_CHECKING:
    from collections.abc import Sequence

    from miro_sync.store.actions import ActionRecord, ActionsRepository

# Imported from here by report_cmd.py (build_requests, InputError, render_plan, enqueue, console,
# _operator), demo_cmd.py (describe_record_steps) and tests/unit/offboarding.
__all__ = [
    "InputError",
    "app",
    "build_requests",
    "console",
    "describe_record_steps",
    "enqueue",
    "render_plan",
]

app = typer.Typer(no_args_is_help=True, help="Enqueue and follow offboarding actions.")

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

# The options of suspend, delete and reactivate (see _make_action_command).
Emails = Annotated[list[str] | None, typer.Argument(help="Member emails.", show_default=False)]
Reason = Annotated[str | None, typer.Option("--reason", help="Why (recorded in the audit trail).")]
CsvFile = Annotated[
    Path | None,
    typer.Option(
        "--csv",
        exists=True,
        dir_okay=False,
        help="CSV with an email or memberId column (optional columns: reason, notBefore, "
        "requestId, dryRun, successor (suspend, delete), action).",
    ),
]
NotBefore = Annotated[
    str | None,
    typer.Option(
        "--not-before",
        help="ISO-8601 time with an offset, e.g. 2025-03-01T18:00:00Z (at most 366 days ahead); "
        "carried out when due (cancellable).",
    ),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Check guards and record the plan only.")]
EnqueueYes = Annotated[bool, typer.Option("--yes", help="Enqueue (without it only the plan is shown).")]
Successor = Annotated[
    str | None,
    typer.Option(
        "--successor",
        help="Email of who takes over: co-owner of every board the leaver owns and, on delete, "
        "admin of the teams the leaver is the last admin of. Default for CSV rows without "
        "a successor column value.",
        show_default=False,
    ),
]
ApiUrl = Annotated[
    str,
    typer.Option(
        "--api-url",
        envvar="MIRO_API_URL",
        help=f"Miro REST base URL (for the plan). Default: the stack's MiroApiUrl, else {DEFAULT_API_URL}.",
        show_default=False,
    ),
]
OrgId = Annotated[
    str, typer.Option("--org-id", envvar="MIRO_ORG_ID", help="Miro organization id (for the plan).")
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="MIRO_TOKEN",
        help="Miro REST token (optional): the plan then lists the boards to hand over and the "
        "teams the leaver is the last admin of.",
        show_default=False,
    ),
]
TokenSecret = Annotated[
    str | None,
    typer.Option(
        "--token-secret",
        envvar="MIRO_TOKEN_SECRET",
        help="Secrets Manager name of the token (with --stack: the stack's MiroTokenSecretArn).",
    ),
]


def _operator(by: str | None) -> str:
    return by or os.environ.get("MIRO_SYNC_OPERATOR") or getpass.getuser()


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
        emails: Emails = None,
        reason: Reason = None,
        csv_file: CsvFile = None,
        not_before: NotBefore = None,
        dry_run: DryRun = False,
        yes: EnqueueYes = False,
        by: Operator = None,
        queue_url: QueueUrl = "",
        members_table: MembersTable = "",
        successor: Successor = None,
        api_url: ApiUrl = "",
        org_id: OrgId = "",
        token: Token = None,
        token_secret: TokenSecret = None,
        stack: Stack = None,
    ) -> None:
        queue_url, members_table, miro = _submit_settings(
            action,
            stack,
            queue_url=queue_url,
            members_table=members_table,
            api_url=api_url,
            org_id=org_id,
            token=token,
            token_secret=token_secret,
        )
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
            miro=miro,
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


def _submit_settings(
    action: str,
    stack: str | None,
    *,
    queue_url: str,
    members_table: str,
    api_url: str,
    org_id: str,
    token: str | None,
    token_secret: str | None,
) -> tuple[str, str, MiroAccess]:
    """The queue, the Members table and where the plan reads Miro: each option, else its environment
    variable, else the stack's; without a queue or a table the command exits (2)."""
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
    return queue_url, members_table, MiroAccess(api_url or DEFAULT_API_URL, org_id, token, token_secret)


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
    console.print(records_table(records, f"{len(records)} request(s)"))


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
    wanted: dict[str, str | None] = {"ACTIONS_TABLE": actions_table, "OFFBOARDING_QUEUE_URL": queue_url}
    if max_count is None:
        wanted["MAX_ACTIONS_PER_HOUR"] = None  # the stack's MaxActionsPerHour
    required = ("ACTIONS_TABLE", "OFFBOARDING_QUEUE_URL") if yes else ("ACTIONS_TABLE",)
    settings = _from_stack(stack, wanted, *required)
    actions_table, queue_url = settings["ACTIONS_TABLE"], settings["OFFBOARDING_QUEUE_URL"]
    limit = release_limit(max_count, settings.get("MAX_ACTIONS_PER_HOUR", ""))
    repository = _actions(actions_table)
    if yes and not queue_url:
        errors.print("[red]set --queue-url/OFFBOARDING_QUEUE_URL (or --stack/MIRO_SYNC_STACK)[/red]")
        raise typer.Exit(2)
    candidates, more_held = held_requests(repository, request, limit)
    if not candidates:
        console.print("Nothing to release.")
        raise typer.Exit(1)
    show_release_plan(candidates, limit, more_held=more_held)
    if not yes:
        console.print(
            f"Nothing released. Re-run with [bold]--yes[/bold] to release these {len(candidates)} request(s)."
        )
        return
    release_requests(repository, candidates, _operator(by), queue_url)


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
