"""`miro-sync demo`: the whole system on this machine, no AWS, no Docker. An emulated Miro org, DynamoDB
Local and moto server made from template.yaml, every function run through the local stack, the CLI run as
a user runs it. It checks what it shows and exits non-zero when something is not as it should be.

The terminal gets a summary per step; each function's JSON logs (Powertools Logger lines and EMF
metrics) go to <output-dir>/logs/<FunctionLogicalId>.jsonl, and to the terminal too with --verbose."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess  # nosec B404  # runs only this interpreter's own CLI (_cli)
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from miro_emulator import OrgState, RunningEmulator
    from miro_emulator.state import Member
    from miro_sync_cli.local.stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
OPERATOR = "it-ops@example.com"
REASON = "left the company (demo)"


@dataclass
class DemoChecks:
    rows: list[tuple[str, str, bool]] = field(default_factory=list)

    def check(self, what: str, shown: object, ok: bool) -> None:
        self.rows.append((what, str(shown), ok))

    @property
    def all_passed(self) -> bool:
        return all(ok for _, _, ok in self.rows)


def demo(
    members: Annotated[int, typer.Option(help="Members of the emulated org.")] = 5000,
    seed: Annotated[int, typer.Option(help="Seed of the emulated org (same seed, same org).")] = 7,
    output_dir: Annotated[
        Path, typer.Option(help="Where the reports and the functions' logs (logs/) are written.")
    ] = Path("demo-output"),
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Also show the functions' JSON logs and metrics as they come."),
    ] = False,
) -> None:
    from rich.console import Console

    from miro_sync_cli.local.invoke import FunctionLogs

    # The console writes to the terminal itself: sys.stdout is the functions' while their logs are captured.
    console = Console(file=sys.stdout, soft_wrap=True)
    checks = DemoChecks()
    logs = FunctionLogs(output_dir / "logs", echo=verbose)
    failed = False
    try:
        with _servers_output(output_dir / "logs" / "servers.log", keep=verbose), logs:
            _run(Demo(console, checks, verbose), members, seed, output_dir)
    except DemoError as error:
        console.print(f"[red]demo failed:[/red] {error}")
        failed = True
    if not failed:
        _check_logs(checks, logs)
        _summary(console, checks)
    _where_the_logs_are(console, logs, output_dir / "logs" / "servers.log")
    if failed or not checks.all_passed:
        raise typer.Exit(1)


class DemoError(Exception):
    pass


@dataclass
class Demo:
    console: Any
    checks: DemoChecks
    verbose: bool

    @contextlib.contextmanager
    def working(self, what: str) -> Iterator[None]:
        """A spinner with the time taken while a long step runs (in a terminal, and not with --verbose,
        whose scrolling logs show the progress); it leaves no trace in the output."""
        if self.verbose or not self.console.is_terminal:
            yield
            return
        from rich.live import Live
        from rich.spinner import Spinner

        started = time.monotonic()

        class Elapsed:
            def __rich__(self) -> str:
                return f"{what} [dim]{time.monotonic() - started:.0f} s[/dim]"

        with Live(
            Spinner("dots", text=Elapsed()),
            console=self.console,
            transient=True,
            refresh_per_second=8,
            redirect_stdout=False,  # sys.stdout is the functions' (their logs): not the terminal's
            redirect_stderr=False,
        ):
            yield


@contextlib.contextmanager
def _servers_output(path: Path, *, keep: bool) -> Iterator[None]:
    """What the in-process servers (the emulator, moto server) print from their own threads, e.g. a
    traceback for a connection a client reset, goes to `path` rather than between the steps."""
    path.unlink(missing_ok=True)
    if keep:
        yield
        return
    terminal = sys.stderr
    main = threading.get_ident()
    lock = threading.Lock()
    opened: list[Any] = []

    class ServersOutput:
        def write(self, text: str) -> int:
            if threading.get_ident() == main:
                return int(terminal.write(text))
            with lock:
                if not opened:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    opened.append(path.open("w", encoding="utf-8"))
                opened[0].write(text)
                opened[0].flush()
            return len(text)

        def flush(self) -> None:
            terminal.flush()

        def __getattr__(self, name: str) -> Any:
            return getattr(terminal, name)

    sys.stderr = ServersOutput()
    try:
        yield
    finally:
        sys.stderr = terminal
        with lock:
            for file in opened:
                file.close()


def _event(path: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / path).read_text())
    return loaded


def _cli(console: Any, env: dict[str, str], *arguments: str) -> str:
    """Run `miro-sync ARGS` as a user would (its own process), show the command and return its stdout."""
    _show_command(console, arguments)
    completed = subprocess.run(  # nosec B603  # noqa: S603 - our own interpreter and CLI
        [sys.executable, "-m", "miro_sync_cli.main", *arguments],
        env={**os.environ, **env, "COLUMNS": "160"},
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=600,
    )
    if completed.returncode != 0:
        raise DemoError(
            f"`miro-sync {' '.join(arguments)}` exited {completed.returncode}:\n{completed.stderr}"
        )
    return completed.stdout


def _show_command(console: Any, arguments: tuple[str, ...]) -> None:
    """The command on one line: a long list of emails shortened, the token not shown."""
    from rich.markup import escape

    shown: list[str] = []
    emails = 0
    for index, argument in enumerate(arguments):
        if index and arguments[index - 1] == "--token":
            shown.append("***")
        elif (
            "@" in argument
            and not argument.startswith("-")
            and (index == 0 or arguments[index - 1] != "--by")
        ):
            emails += 1
            if emails <= 2:
                shown.append(argument)
            elif emails == 3:
                shown.append("…")
        else:
            shown.append(f"'{argument}'" if " " in argument else argument)
    if emails > 2:
        shown[shown.index("…")] = f"… ({emails} emails)"
    console.print(f"[bold cyan]$ miro-sync {escape(' '.join(shown))}[/bold cyan]")


def _seconds(started: float) -> str:
    return f"{time.monotonic() - started:.1f} s"


def members_sync_summary(results: list[Any], took: str) -> list[str]:
    """Lines on a members sync run (its last invocation's result, and how many there were)."""
    last = results[-1] if results and isinstance(results[-1], dict) else {}
    invocations = f", {len(results)} invocations" if len(results) > 1 else ""
    lines = [
        f"[bold]{last.get('outcome', '?')}[/bold] in {took}{invocations}: "
        f"{last.get('fetched', 0):,} members fetched in {last.get('pages', 0)} pages, "
        f"{last.get('written', 0):,} written, {last.get('unchanged', 0):,} unchanged, "
        f"{last.get('removed', 0):,} removed"
    ]
    snapshot = last.get("snapshot") or {}
    if snapshot:
        status = snapshot.get("byStatus", {})
        idle = snapshot.get("inactiveSeats", {})
        lines.append(
            f"snapshot: {snapshot.get('members', 0):,} members ({status.get('active', 0):,} active, "
            f"{status.get('suspended', 0):,} suspended), {snapshot.get('boards', 0):,} boards, "
            f"{snapshot.get('fullLicensesAssigned', 0):,} of {snapshot.get('fullLicensesPurchased', 0):,} "
            f"full licenses assigned; idle 30/60/90+ days: "
            + " / ".join(f"{idle.get(days, 0):,}" for days in ("30", "60", "90"))
        )
    return lines


def audit_sync_summary(results: list[Any], took: str) -> str:
    last = results[-1] if results and isinstance(results[-1], dict) else {}
    invocations = f", {len(results)} invocations" if len(results) > 1 else ""
    return (
        f"[bold]{last.get('outcome', '?')}[/bold] in {took}{invocations}: "
        f"{last.get('events_seen', 0):,} events in {last.get('pages', 0)} pages, "
        f"{last.get('stored', 0):,} stored, {last.get('duplicates', 0):,} duplicates, "
        f"{last.get('rejected', 0):,} rejected, {last.get('signals_written', 0):,} sign-in signals; "
        f"watermark {last.get('watermark') or '-'}"
    )


def _run(demo: Demo, members: int, seed: int, output_dir: Path) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as resources:
        emulator = _start_org(demo, resources, members, seed)
        protected_admin = next(
            m for m in emulator.state.all_members if m.role == "organization_internal_admin" and m.active
        )
        stack = _start_local_aws(demo, resources, emulator, protected_admin.email)
        env = stack.env  # what the CLI runs with, as an operator's shell would have it
        _members_sync(demo, stack, emulator.state, members)
        _audit_log_sync(demo, stack)
        _board_webhook(demo, stack, env, emulator)
        report = _inactive_seat_report(demo, env, output_dir)
        _offboard_leavers(demo, stack, env, emulator, report, protected_admin)


def _start_org(demo: Demo, resources: ExitStack, members: int, seed: int) -> RunningEmulator:
    from miro_emulator import EmulatorConfig, start_emulator

    demo.console.rule("1. A Miro Enterprise org on 127.0.0.1 (the emulator)")
    emulator = resources.enter_context(start_emulator(EmulatorConfig(members=members, seed=seed), port=0))
    state = emulator.state
    demo.console.print(
        f"org {emulator.org_id}: {members} members, {len(state.teams)} teams, "
        f"{len(state.boards)} boards at {emulator.base_url}"
    )
    return emulator


def _start_local_aws(
    demo: Demo, resources: ExitStack, emulator: RunningEmulator, protected_email: str
) -> LocalStack:
    from miro_sync_cli.local.servers import local_servers
    from miro_sync_cli.local.stack import LocalStack, MiroConnection

    demo.console.rule("2. Local AWS from template.yaml (DynamoDB Local, moto server)")
    servers = resources.enter_context(local_servers())
    stack = LocalStack(
        servers,
        prefix="miro-sync-demo",
        parameter_overrides={
            "EnableWebhook": "true",
            "ProtectedEmails": protected_email,
            "MaxActionsPerHour": "50",
        },
    ).provision()
    resources.callback(stack.teardown)
    stack.connect_miro(
        MiroConnection(
            emulator.base_url, emulator.scim_url, emulator.org_id, emulator.token, emulator.scim_token
        )
    )
    engine = "DynamoDB Local" if servers.uses_dynamodb_local else "moto server"
    demo.console.print(f"{len(stack.tables)} tables on {engine}, queue + DLQ and secrets on moto server")
    return stack


def _members_sync(demo: Demo, stack: LocalStack, state: OrgState, members: int) -> None:
    demo.console.rule("3. Members sync (MembersSyncFunction)")
    started = time.monotonic()
    with demo.working(f"syncing {members:,} members, their teams and boards"):
        results = stack.invoke("MembersSyncFunction", _event("members_sync/scheduled.json"))
    for line in members_sync_summary(results, _seconds(started)):
        demo.console.print(line)
    live_members = sum(1 for m in state.all_members if not m.deleted)
    synced = _count_items(stack, "MembersTable")
    demo.checks.check(
        "members in the table = members in Miro", f"{synced} / {live_members}", synced == live_members
    )


def _audit_log_sync(demo: Demo, stack: LocalStack) -> None:
    demo.console.rule("4. Audit log sync (AuditLogSyncFunction)")
    started = time.monotonic()
    with demo.working("reading 30 days of the org's audit logs"):
        results = stack.invoke("AuditLogSyncFunction", _event("audit_log_sync/scheduled.json"))
    demo.console.print(audit_sync_summary(results, _seconds(started)))
    demo.checks.check(
        "audit sync completed",
        results[-1].get("outcome", "?") if isinstance(results[-1], dict) else results[-1],
        isinstance(results[-1], dict) and results[-1].get("outcome") == "complete",
    )


def _board_webhook(demo: Demo, stack: LocalStack, env: dict[str, str], emulator: RunningEmulator) -> None:
    import httpx

    console = demo.console
    console.rule("5. Board webhook: a subscription and live events")
    board = next(b for b in emulator.state.boards if not b.deleted)
    with stack.serve_function_url("BoardWebhookFunction") as webhook:
        console.print(f"BoardWebhookFunction's Function URL, served locally: {webhook.url}")
        _cli(console, env, "subscribe", "create", "--board", board.id, "--webhook-url", webhook.url)
        items = f"{emulator.base_url}/_emulator/boards/{board.id}/items"
        created = httpx.post(items, json={"type": "sticky_note", "data": {"content": "Q4 plan"}}).json()
        item_id = created.get("id") or created.get("item", {}).get("id")
        httpx.patch(f"{items}/{item_id}", json={"data": {"content": "Q4 plan v2"}})
        httpx.delete(f"{items}/{item_id}")
        arrived = emulator.wait_for_deliveries(3, timeout_s=20)
    stored = _count_board_events(stack, board.id)
    console.print(
        f"Miro delivered 3 board events (create, update, delete); {stored} stored for board {board.id}"
    )
    demo.checks.check("board events delivered and stored", f"{stored} / 3", arrived and stored == 3)


def _inactive_seat_report(demo: Demo, env: dict[str, str], output_dir: Path) -> dict[str, Any]:
    """The report as an HTML file and as JSON (returned: the offboarding step picks its leavers from it)."""
    console = demo.console
    console.rule("6. Inactive-seat report")
    html = output_dir / "inactive-seats.html"
    _cli(console, env, "report", "inactive", "--days", "90", "--format", "html", "--output", str(html))
    report: dict[str, Any] = json.loads(
        _cli(console, env, "report", "inactive", "--days", "90", "--format", "json")
    )
    totals = report["totals"]
    console.print(
        f"{totals['inactiveSeats']} paid seats unused for 90+ days out of {totals['paidSeats']}: "
        f"{report['currency']} {totals['reclaimableMonthly']:,.2f} a month reclaimable -> {html}"
    )
    console.print(_cli(console, env, "report", "licenses"))
    demo.checks.check("HTML report written", html, html.is_file() and html.stat().st_size > 1000)
    return report


@dataclass
class _Offboarding:
    """Who step 7 offboards, and who it must leave alone."""

    leavers: list[str]  # emails of everyone who must end up suspended
    handed_from: Member  # the leaver whose boards a successor takes over
    successor: Member
    from_hr_system: str  # the leaver an HR system asks for, twice, straight on the queue
    guest: Member  # refused: guests are not offboarded
    protected_admin: Member  # refused: in ProtectedEmails


def _offboard_leavers(
    demo: Demo,
    stack: LocalStack,
    env: dict[str, str],
    emulator: RunningEmulator,
    report: dict[str, Any],
    protected_admin: Member,
) -> None:
    console, state = demo.console, emulator.state
    console.rule("7. Offboarding ten leavers")
    leavers = [seat["email"] for seat in report["seats"] if seat["role"] == "organization_internal_user"][:7]
    guest = next(m for m in state.all_members if m.role == "organization_team_guest_user" and m.active)
    from_hr_system = leavers.pop()
    batch = [*leavers, guest.email, protected_admin.email]
    _cli(console, env, "offboard", "suspend", *batch, "--reason", REASON, "--by", OPERATOR, "--yes")
    handed_from, successor = _suspend_with_successor(console, env, emulator, {*leavers, from_hr_system})
    owned_boards = sum(1 for b in state.boards if not b.deleted and b.owner_index == handed_from.index)
    console.print(
        f"{len(batch)} requests enqueued, and one for {handed_from.email}: {successor.email} becomes "
        f"co-owner of the {owned_boards} boards they own, then they are suspended and signed out"
    )
    leavers.append(handed_from.email)
    _suspend_from_hr_system(console, stack, from_hr_system)
    leavers.append(from_hr_system)
    _drain_offboarding_queue(demo, stack)
    console.print(_requests_table(stack, [*batch, handed_from.email, from_hr_system]))
    offboarding = _Offboarding(leavers, handed_from, successor, from_hr_system, guest, protected_admin)
    _check_offboarding(demo.checks, stack, emulator, offboarding)


def _suspend_with_successor(
    console: Any, env: dict[str, str], emulator: RunningEmulator, exclude: set[str]
) -> tuple[Member, Member]:
    """One more leaver owns boards: a successor takes them over (co-owner), then the leaver is suspended
    and signed out everywhere. The plan reads the boards from Miro with the token."""
    handed_from, successor = _leaver_with_boards_and_successor(emulator.state, exclude=exclude)
    miro = ["--api-url", emulator.base_url, "--org-id", emulator.org_id, "--token", emulator.token]
    _cli(
        console,
        env,
        "offboard",
        "suspend",
        handed_from.email,
        "--successor",
        successor.email,
        "--reason",
        REASON,
        "--by",
        OPERATOR,
        "--yes",
        *miro,
    )
    return handed_from, successor


def _suspend_from_hr_system(console: Any, stack: LocalStack, email: str) -> None:
    """An HR system posting straight to the queue (the documented message format) sends the same
    message twice, as a retrying integration does: one request, one effect."""
    hr_message = {
        "action": "suspend",
        "email": email,
        "requestedBy": "hr-system@example.com",
        "reason": REASON,
    }
    sqs = stack.client("sqs")
    for _ in range(2):
        sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps(hr_message))
    console.print(f"HR system: the same suspend message for {email} sent twice to the queue")


def _drain_offboarding_queue(demo: Demo, stack: LocalStack) -> None:
    from miro_sync_cli.local.sqs_poller import drain_queue

    started = time.monotonic()
    with demo.working("OffboardingFunction working through the queue"):
        drained = drain_queue(stack, "OffboardingFunction", stack.queue_url, timeout_s=300)
    demo.console.print(
        f"queue drained in {_seconds(started)}: {drained.received} messages in {drained.batches} "
        f"batch(es), {drained.failed} retried"
    )


def _check_offboarding(
    checks: DemoChecks, stack: LocalStack, emulator: RunningEmulator, offboarding: _Offboarding
) -> None:
    state = emulator.state
    leavers, handed_from, successor = offboarding.leavers, offboarding.handed_from, offboarding.successor
    suspended = [email for email in leavers if not state.member_by_email(email).active]  # type: ignore[union-attr]
    checks.check(
        "leavers suspended in Miro", f"{len(suspended)} / {len(leavers)}", len(suspended) == len(leavers)
    )
    boards = [b for b in state.boards if not b.deleted and b.owner_index == handed_from.index]
    co_owned = [b for b in boards if b.members.get(successor.index) in {"coowner", "owner"}]
    checks.check(
        "boards handed over to the successor",
        f"{len(co_owned)} / {len(boards)} boards of {handed_from.email} co-owned by {successor.email}",
        bool(boards) and len(co_owned) == len(boards),
    )
    checks.check(
        "leaver signed out everywhere",
        handed_from.email,
        handed_from.sessions_reset_ms is not None and not handed_from.active,
    )
    checks.check("guest untouched (refused)", offboarding.guest.email, offboarding.guest.active)
    protected_admin = offboarding.protected_admin
    checks.check("protected admin untouched (refused)", protected_admin.email, protected_admin.active)
    patches = _scim_patches(emulator.stats())
    hr_requests = _requests_for(stack, offboarding.from_hr_system)
    checks.check(
        "duplicate message: one request, one effect",
        f"{hr_requests} request(s); {patches} SCIM PATCH for {len(leavers)} leavers",
        hr_requests == 1 and patches == len(leavers),
    )


def _leaver_with_boards_and_successor(state: Any, exclude: set[str]) -> tuple[Any, Any]:
    """An active internal user who owns boards (and is no team's only admin), and someone to take over."""
    owned = Counter(board.owner_index for board in state.boards if not board.deleted)
    internal = [
        m
        for m in state.all_members
        if m.role == "organization_internal_user"
        and m.active
        and not m.deleted
        and m.license == "full"
        and m.email not in exclude
    ]
    # the one with the most boards (first such in member order), to show a real hand-over
    leaver = max(
        (m for m in internal if owned[m.index] and not state.teams_with_sole_admin(m)),
        key=lambda m: owned[m.index],
    )
    successor = next(m for m in internal if m is not leaver and not owned[m.index])
    return leaver, successor


def _requests_table(stack: Any, emails: list[str]) -> Any:
    """The offboarding requests of these members as `miro-sync offboard status` reads them, narrower."""
    from rich.markup import escape
    from rich.table import Table

    from miro_sync.store.actions import ActionsRepository
    from miro_sync_cli.local.invoke import process_environment
    from miro_sync_cli.offboard_cmd import describe_record_steps

    with process_environment(stack.env):
        repository = ActionsRepository.from_table_name(stack.tables["ActionsTable"])
        records = [record for email in emails for record in repository.by_member(email)]
    table = Table(title=f"Offboarding requests ({len(records)})", title_justify="left")
    for column in ("member", "requested by", "outcome"):
        table.add_column(column, no_wrap=True)
    for column in ("steps", "detail"):
        table.add_column(column, overflow="fold")
    colours = {"done": "green", "refused": "yellow", "failed": "red"}
    for record in records:
        colour = colours.get(record.outcome, "white")
        table.add_row(
            escape(record.email or record.member_key),
            escape(record.requested_by),
            f"[{colour}]{escape(record.outcome)}[/{colour}]",
            escape(describe_record_steps(record)),
            escape(record.outcome_reason or record.last_error or ""),
        )
    return table


def _check_logs(checks: DemoChecks, logs: Any) -> None:
    """Every function that ran wrote its logs to its own file, and only JSON lines."""
    counts = {name: _json_lines(logs.path(name)) for name in logs.lines}
    lines = sum(json_lines for json_lines, _ in counts.values())
    other = sum(other_lines for _, other_lines in counts.values())
    checks.check(
        "each function's logs in its file, JSON lines",
        f"{len(counts)} files, {lines:,} JSON lines" + (f", {other} other" if other else ""),
        bool(counts) and all(json_lines and not other_lines for json_lines, other_lines in counts.values()),
    )


def _json_lines(path: Path) -> tuple[int, int]:
    """(JSON object lines, other lines) of a file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    json_lines = sum(1 for line in lines if _is_json(line))
    return json_lines, len(lines) - json_lines


def _is_json(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _where_the_logs_are(console: Any, logs: Any, servers: Path) -> None:
    if not logs.lines:
        return
    live = "" if logs.echo else "; --verbose shows them as they come"
    console.print(f"Logs in {logs.directory}/ (JSON lines: Powertools Logger and EMF metrics{live}):")
    files = [f"{logs.path(name).name} ({count:,} lines)" for name, count in logs.lines.items()]
    if servers.is_file():
        files.append(f"{servers.name} (what the local servers printed)")
    console.print("  " + ", ".join(files))


def _requests_for(stack: Any, email: str) -> int:
    """Offboarding requests recorded for a member (ActionsTable's ByMember index)."""
    response = stack.client("dynamodb").query(
        TableName=stack.tables["ActionsTable"],
        IndexName="ByMember",
        KeyConditionExpression="memberKey = :member",
        ExpressionAttributeValues={":member": {"S": email}},
        Select="COUNT",
    )
    return int(response["Count"])


def _count_items(stack: Any, table_logical_id: str) -> int:
    dynamodb = stack.client("dynamodb")
    description = dynamodb.describe_table(TableName=stack.tables[table_logical_id])["Table"]
    return int(description.get("ItemCount", 0))


def _count_board_events(stack: Any, board_id: str) -> int:
    response = stack.client("dynamodb").query(
        TableName=stack.tables["BoardEventsTable"],
        KeyConditionExpression="boardId = :board",
        ExpressionAttributeValues={":board": {"S": board_id}},
        Select="COUNT",
    )
    return int(response["Count"])


def _scim_patches(stats: dict[str, Any]) -> int:
    """Successful SCIM PATCH /Users/{id} calls (the emulator counts them as "patchUser <status>")."""
    return sum(
        count
        for operation_status, count in stats.get("byOperationStatus", {}).items()
        if operation_status.startswith("patchUser 2")
    )


def _summary(console: Any, checks: DemoChecks) -> None:
    from rich.table import Table

    table = Table(title="miro-sync demo")
    table.add_column("check")
    table.add_column("seen")
    table.add_column("ok")
    for what, shown, ok in checks.rows:
        table.add_row(what, shown, "[green]yes[/green]" if ok else "[red]NO[/red]")
    console.print(table)
