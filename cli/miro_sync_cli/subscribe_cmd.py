"""`miro-sync subscribe`: Miro board subscriptions that deliver to the BoardWebhookFunction URL.

Secrets are generated here, stored only as hashes (StateTable) and sent only to Miro inside the
callback URL; nothing printed shows more than the first characters of the hash. Ids, statuses and
error texts from Miro or the table are escaped before printing (never read as rich markup)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from miro_sync.miro import MiroRestClient
    from miro_sync.store.subscriptions import SubscriptionsRepository

app = typer.Typer(no_args_is_help=True, help="Create, list, disable, delete and check board subscriptions.")

ApiUrl = Annotated[str, typer.Option("--api-url", envvar="MIRO_API_URL", help="Miro REST base URL.")]
OrgId = Annotated[str, typer.Option("--org-id", envvar="MIRO_ORG_ID", help="Miro organization id.")]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="MIRO_TOKEN",
        help="Miro REST token (else read from MIRO_TOKEN_SECRET).",
        show_default=False,
    ),
]
TokenSecret = Annotated[
    str | None,
    typer.Option("--token-secret", envvar="MIRO_TOKEN_SECRET", help="Secrets Manager name of the token."),
]
StateTable = Annotated[str, typer.Option("--state-table", envvar="STATE_TABLE", help="StateTable name.")]


def _client(api_url: str, org_id: str, token: str | None, token_secret: str | None) -> MiroRestClient:
    from miro_sync.miro import MiroRestClient
    from miro_sync.secrets import SecretsManagerToken

    if token:
        return MiroRestClient(api_url, token, org_id)
    if token_secret:
        return MiroRestClient(api_url, SecretsManagerToken(token_secret), org_id)
    raise typer.BadParameter("set MIRO_TOKEN (or --token) or MIRO_TOKEN_SECRET (or --token-secret)")


def _store(state_table: str) -> SubscriptionsRepository:
    import boto3

    from miro_sync.store.subscriptions import SubscriptionsRepository

    return SubscriptionsRepository(boto3.resource("dynamodb").Table(state_table))


def _e(value: object) -> str:
    """Untrusted text, safe inside rich markup."""
    from rich.markup import escape

    return escape(str(value))


def _fail(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[red]error:[/red] {_e(message)}")
    raise typer.Exit(1)


@app.command()
def create(
    webhook_url: Annotated[
        str,
        typer.Option(
            "--webhook-url", envvar="WEBHOOK_URL", help="The BoardWebhookFunction URL (stack output)."
        ),
    ],
    board: Annotated[list[str] | None, typer.Option("--board", help="Board id (repeatable).")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Subscribe to every board of this team.")] = None,
    api_url: ApiUrl = "https://api.miro.com",
    org_id: OrgId = "",
    token: Token = None,
    token_secret: TokenSecret = None,
    state_table: StateTable = "",
) -> None:
    """Subscribe to a board (or every board of a team) with a fresh secret per subscription."""
    from rich.console import Console

    from miro_sync.miro.errors import MiroError
    from miro_sync.webhooks.subscriptions import create_subscription

    if not board and not team:
        raise typer.BadParameter("pass --board ID (repeatable) or --team ID")
    if not webhook_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise typer.BadParameter("--webhook-url must be https (http only for a local 127.0.0.1 webhook)")
    client = _client(api_url, org_id, token, token_secret)
    store = _store(state_table)
    board_ids = list(board or [])
    if team:
        board_ids += [item.id for item in client.iter_boards(team_id=team)]
    console = Console()
    failures = 0
    for board_id in board_ids:
        try:
            record = create_subscription(client, store, board_id, webhook_url)
        except MiroError as error:
            failures += 1
            console.print(f"[red]✗[/red] board {_e(board_id)}: {_e(error)}")
            continue
        console.print(
            f"[green]✓[/green] board {_e(board_id)}: subscription {_e(record.subscription_id)} "
            f"{_e(record.status)} (secret hash {_e(record.secret_hash[:8])}…)"
        )
    if failures:
        _fail(f"{failures} of {len(board_ids)} subscriptions failed")


@app.command("list")
def list_subscriptions(
    api_url: ApiUrl = "https://api.miro.com",
    org_id: OrgId = "",
    token: Token = None,
    token_secret: TokenSecret = None,
    state_table: StateTable = "",
) -> None:
    """Subscriptions created by miro-sync, with Miro's current status."""
    from rich.console import Console
    from rich.table import Table

    from miro_sync.webhooks.subscriptions import subscription_statuses

    rows = subscription_statuses(_client(api_url, org_id, token, token_secret), _store(state_table))
    table = Table(title=f"{len(rows)} board subscriptions")
    for column in ("subscription", "board", "status at Miro", "stored status", "secret hash"):
        table.add_column(column, overflow="fold")
    for row in rows:
        miro_status = _e(row.miro_status) if row.miro_status else "[yellow]unknown to Miro[/yellow]"
        if row.miro_status == "lost_access":
            miro_status = "[red]lost_access[/red]"
        table.add_row(
            _e(row.subscription_id or "-"),
            _e(row.board_id),
            miro_status,
            _e(row.stored_status),
            f"{_e(row.secret_hash_prefix)}…",
        )
    Console().print(table)


def _change(
    subscription_id: str,
    status: str | None,
    api_url: str,
    org_id: str,
    token: str | None,
    token_secret: str | None,
    state_table: str,
) -> None:
    from rich.console import Console

    from miro_sync.miro.errors import MiroError
    from miro_sync.webhooks.subscriptions import UnknownSubscriptionError, delete_subscription, set_status

    client, store = _client(api_url, org_id, token, token_secret), _store(state_table)
    try:
        if status is None:
            record = delete_subscription(client, store, subscription_id)
            Console().print(f"deleted subscription {_e(subscription_id)} (board {_e(record.board_id)})")
        else:
            record = set_status(client, store, subscription_id, status)
            Console().print(
                f"subscription {_e(subscription_id)} (board {_e(record.board_id)}) is now {_e(record.status)}"
            )
    except (UnknownSubscriptionError, MiroError) as error:
        _fail(str(error))


@app.command()
def disable(
    subscription_id: Annotated[str, typer.Argument(help="Subscription id (see `list`).")],
    api_url: ApiUrl = "https://api.miro.com",
    org_id: OrgId = "",
    token: Token = None,
    token_secret: TokenSecret = None,
    state_table: StateTable = "",
) -> None:
    """Stop deliveries for a subscription (it can be enabled again)."""
    _change(subscription_id, "disabled", api_url, org_id, token, token_secret, state_table)


@app.command()
def enable(
    subscription_id: Annotated[str, typer.Argument(help="Subscription id (see `list`).")],
    api_url: ApiUrl = "https://api.miro.com",
    org_id: OrgId = "",
    token: Token = None,
    token_secret: TokenSecret = None,
    state_table: StateTable = "",
) -> None:
    """Resume deliveries (also after regaining access to a `lost_access` board)."""
    _change(subscription_id, "enabled", api_url, org_id, token, token_secret, state_table)


@app.command()
def delete(
    subscription_id: Annotated[str, typer.Argument(help="Subscription id (see `list`).")],
    api_url: ApiUrl = "https://api.miro.com",
    org_id: OrgId = "",
    token: Token = None,
    token_secret: TokenSecret = None,
    state_table: StateTable = "",
) -> None:
    """Delete the subscription at Miro and forget its secret."""
    _change(subscription_id, None, api_url, org_id, token, token_secret, state_table)


@app.command()
def check(
    api_url: ApiUrl = "https://api.miro.com",
    org_id: OrgId = "",
    token: Token = None,
    token_secret: TokenSecret = None,
    state_table: StateTable = "",
) -> None:
    """Report subscriptions that lost access to their board (exit code 2 when any did)."""
    from rich.console import Console

    from miro_sync.webhooks.subscriptions import check_lost_access

    report = check_lost_access(_client(api_url, org_id, token, token_secret), _store(state_table))
    console = Console()
    console.print(f"checked {report.checked} subscriptions at Miro")
    for item in report.lost_access:
        console.print(
            f"[red]lost_access[/red] subscription {_e(item.subscription_id)} board {_e(item.board_id)}"
        )
    if report.unmanaged:
        console.print(f"{len(report.unmanaged)} subscriptions at Miro were not created by miro-sync")
    if report.lost_access:
        raise typer.Exit(2)
