"""`miro-sync subscribe`: Miro board subscriptions that deliver to the BoardWebhookFunction URL.

Secrets are generated here, stored only as hashes (StateTable) and sent only to Miro inside the
callback URL; nothing printed shows more than the first characters of the hash. Ids, statuses and
error texts from Miro or the table are escaped before printing (never read as rich markup).

The org id, token secret, state table and webhook URL come from the options, else their environment
variables, else the deployed stack named by --stack/MIRO_SYNC_STACK (parameters OrgId and MiroApiUrl,
outputs MiroTokenSecretArn, StateTableName and BoardWebhookBaseUrl):

    miro-sync subscribe create --stack miro-sync-prod --board uXjVN...
    miro-sync subscribe check --stack miro-sync-prod
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from miro_sync_cli.stack_outputs import Stack, fill_or_exit

if TYPE_CHECKING:
    from miro_sync.miro import MiroRestClient
    from miro_sync.store.subscriptions import SubscriptionsRepository

app = typer.Typer(no_args_is_help=True, help="Create, list, disable, delete and check board subscriptions.")

DEFAULT_API_URL = "https://api.miro.com"

ApiUrl = Annotated[
    str,
    typer.Option(
        "--api-url",
        envvar="MIRO_API_URL",
        help=f"Miro REST base URL. Default: the stack's MiroApiUrl, else {DEFAULT_API_URL}.",
        show_default=False,
    ),
]
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


@dataclass(frozen=True)
class Access:
    """Where a subscribe command talks to: Miro (URL, org, token or its secret) and the StateTable."""

    api_url: str
    org_id: str
    token: str | None
    token_secret: str | None
    state_table: str
    webhook_url: str = ""

    def client(self) -> MiroRestClient:
        return _client(self.api_url, self.org_id, self.token, self.token_secret)

    def store(self) -> SubscriptionsRepository:
        return _store(self.state_table)


def resolve_access(
    stack: str | None,
    api_url: str,
    org_id: str,
    token: str | None,
    token_secret: str | None,
    state_table: str,
    webhook_url: str | None = None,
) -> Access:
    """Blank options filled from --stack (explicit option > environment variable > stack): the stack's
    OrgId and MiroApiUrl parameters, MiroTokenSecretArn (unless --token), StateTableName and, for
    `create` (webhook_url not None), BoardWebhookBaseUrl. With a stack, a missing one is an error
    naming it."""
    wanted: dict[str, str | None] = {
        "MIRO_API_URL": api_url,
        "MIRO_ORG_ID": org_id,
        "STATE_TABLE": state_table,
    }
    required = ["MIRO_ORG_ID", "STATE_TABLE"]
    if not token:
        wanted["MIRO_TOKEN_SECRET"] = token_secret
        required.append("MIRO_TOKEN_SECRET")
    if webhook_url is not None:
        wanted["WEBHOOK_URL"] = webhook_url
        required.append("WEBHOOK_URL")
    settings = fill_or_exit(stack, wanted, required=required)
    return Access(
        api_url=settings["MIRO_API_URL"] or DEFAULT_API_URL,
        org_id=settings["MIRO_ORG_ID"] or "",
        token=token or None,
        token_secret=settings.get("MIRO_TOKEN_SECRET", token_secret) or None,
        state_table=settings["STATE_TABLE"] or "",
        webhook_url=settings.get("WEBHOOK_URL") or "",
    )


def _client(api_url: str, org_id: str, token: str | None, token_secret: str | None) -> MiroRestClient:
    from miro_sync.miro import MiroRestClient
    from miro_sync.secrets import SecretsManagerToken

    if token:
        return MiroRestClient(api_url, token, org_id)
    if token_secret:
        return MiroRestClient(api_url, SecretsManagerToken(token_secret), org_id)
    raise typer.BadParameter(
        "set MIRO_TOKEN (or --token), MIRO_TOKEN_SECRET (or --token-secret) or --stack/MIRO_SYNC_STACK"
    )


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
            "--webhook-url",
            envvar="WEBHOOK_URL",
            help="The BoardWebhookFunction URL (stack output BoardWebhookBaseUrl; --stack reads it).",
            show_default=False,
        ),
    ] = "",
    board: Annotated[list[str] | None, typer.Option("--board", help="Board id (repeatable).")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Subscribe to every board of this team.")] = None,
    api_url: ApiUrl = "",
    org_id: OrgId = "",
    token: Token = None,
    token_secret: TokenSecret = None,
    state_table: StateTable = "",
    stack: Stack = None,
) -> None:
    """Subscribe to a board (or every board of a team) with a fresh secret per subscription."""
    from rich.console import Console

    from miro_sync.miro.errors import MiroError
    from miro_sync.webhooks.subscriptions import create_subscription

    if not board and not team:
        raise typer.BadParameter("pass --board ID (repeatable) or --team ID")
    access = resolve_access(stack, api_url, org_id, token, token_secret, state_table, webhook_url)
    webhook_url = access.webhook_url
    if not webhook_url:
        raise typer.BadParameter(
            "set --webhook-url/WEBHOOK_URL (the stack output BoardWebhookBaseUrl) or --stack"
        )
    if not webhook_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise typer.BadParameter("--webhook-url must be https (http only for a local 127.0.0.1 webhook)")
    client = access.client()
    store = access.store()
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
    api_url: ApiUrl = "",
    org_id: OrgId = "",
    token: Token = None,
    token_secret: TokenSecret = None,
    state_table: StateTable = "",
    stack: Stack = None,
) -> None:
    """Subscriptions created by miro-sync, with Miro's current status."""
    from rich.console import Console
    from rich.table import Table

    from miro_sync.webhooks.subscriptions import subscription_statuses

    access = resolve_access(stack, api_url, org_id, token, token_secret, state_table)
    rows = subscription_statuses(access.client(), access.store())
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


def _change(subscription_id: str, status: str | None, access: Access) -> None:
    from rich.console import Console

    from miro_sync.miro.errors import MiroError
    from miro_sync.webhooks.subscriptions import UnknownSubscriptionError, delete_subscription, set_status

    client, store = access.client(), access.store()
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
    api_url: ApiUrl = "",
    org_id: OrgId = "",
    token: Token = None,
    token_secret: TokenSecret = None,
    state_table: StateTable = "",
    stack: Stack = None,
) -> None:
    """Stop deliveries for a subscription (it can be enabled again)."""
    _change(
        subscription_id, "disabled", resolve_access(stack, api_url, org_id, token, token_secret, state_table)
    )


@app.command()
def enable(
    subscription_id: Annotated[str, typer.Argument(help="Subscription id (see `list`).")],
    api_url: ApiUrl = "",
    org_id: OrgId = "",
    token: Token = None,
    token_secret: TokenSecret = None,
    state_table: StateTable = "",
    stack: Stack = None,
) -> None:
    """Resume deliveries (also after regaining access to a `lost_access` board)."""
    _change(
        subscription_id, "enabled", resolve_access(stack, api_url, org_id, token, token_secret, state_table)
    )


@app.command()
def delete(
    subscription_id: Annotated[str, typer.Argument(help="Subscription id (see `list`).")],
    api_url: ApiUrl = "",
    org_id: OrgId = "",
    token: Token = None,
    token_secret: TokenSecret = None,
    state_table: StateTable = "",
    stack: Stack = None,
) -> None:
    """Delete the subscription at Miro and forget its secret."""
    _change(subscription_id, None, resolve_access(stack, api_url, org_id, token, token_secret, state_table))


@app.command()
def check(
    api_url: ApiUrl = "",
    org_id: OrgId = "",
    token: Token = None,
    token_secret: TokenSecret = None,
    state_table: StateTable = "",
    stack: Stack = None,
) -> None:
    """Report subscriptions that lost access to their board (exit code 2 when any did)."""
    from rich.console import Console

    from miro_sync.webhooks.subscriptions import check_lost_access

    access = resolve_access(stack, api_url, org_id, token, token_secret, state_table)
    report = check_lost_access(access.client(), access.store())
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
