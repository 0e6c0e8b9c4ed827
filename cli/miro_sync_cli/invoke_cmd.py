"""`miro-sync invoke FUNCTION --event FILE`: run one function's handler locally, exactly as Lambda would,
against local stand-ins made from template.yaml (DynamoDB Local, moto server) and the Miro emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer


def _read_event(path: Path) -> dict[str, Any]:
    from miro_sync_cli.local.errors import LocalStackError

    if not path.is_file():
        raise LocalStackError(f"event file {path} does not exist")
    try:
        event = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise LocalStackError(
            f"event file {path} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from error
    except (OSError, UnicodeDecodeError) as error:
        raise LocalStackError(f"cannot read event file {path}: {error}") from error
    if not isinstance(event, dict):
        raise LocalStackError(f"event file {path} must hold a JSON object, not {type(event).__name__}")
    return event


def _parse_pairs(pairs: list[str], what: str) -> dict[str, str]:
    from miro_sync_cli.local.errors import LocalStackError

    parsed: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise LocalStackError(f"{what} {pair!r} must look like KEY=VALUE")
        parsed[key] = value
    return parsed


def invoke(
    function: Annotated[
        str, typer.Argument(help="Logical id of the function in template.yaml, e.g. MembersSyncFunction.")
    ],
    event: Annotated[Path, typer.Option("--event", "-e", help="JSON event file (see events/).")],
    template: Annotated[Path, typer.Option(help="SAM template.")] = Path("template.yaml"),
    members: Annotated[int, typer.Option(help="Members of the emulated org.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the emulated org.")] = 1,
    miro_url: Annotated[
        str | None,
        typer.Option(help="Use this Miro (e.g. a running `miro-sync emulator`) instead of starting one."),
    ] = None,
    scim_url: Annotated[
        str | None,
        typer.Option(help="SCIM base URL when --miro-url is given (default: MIRO_URL/api/v1/scim)."),
    ] = None,
    org_id: Annotated[str | None, typer.Option(help="Org id when --miro-url is given.")] = None,
    token: Annotated[str | None, typer.Option(help="REST token when --miro-url is given.")] = None,
    scim_token: Annotated[str | None, typer.Option(help="SCIM token when --miro-url is given.")] = None,
    parameter: Annotated[
        list[str] | None, typer.Option("--parameter", "-p", help="Template parameter override KEY=VALUE.")
    ] = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", help="Extra environment variable KEY=VALUE.")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="Override the function's timeout in seconds (e.g. to see it continue itself)."),
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="Keep DynamoDB Local's data here between runs (default: in memory).")
    ] = None,
) -> None:
    from rich.console import Console

    from miro_sync_cli.local.errors import LocalStackError
    from miro_sync_cli.local.invoke import FunctionError

    console = Console(stderr=True, soft_wrap=True)
    try:
        payload = _read_event(event)
        # Locally the optional webhook is on unless asked otherwise: it costs nothing here.
        overrides = {"EnableWebhook": "true"} | _parse_pairs(parameter or [], "parameter")
        extra_env = _parse_pairs(env or [], "--env")
        results = _run(
            function,
            payload,
            template,
            members,
            seed,
            miro_url,
            scim_url,
            org_id,
            token,
            scim_token,
            overrides,
            extra_env,
            timeout,
            state_dir,
            console,
        )
    except LocalStackError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    except FunctionError as error:
        typer.echo(json.dumps(error.payload, indent=2))
        raise typer.Exit(1) from None
    for index, result in enumerate(results):
        if index:
            console.print(f"[dim]continuation {index}[/dim]")
        typer.echo(json.dumps(result, indent=2, default=str))


def _run(
    function: str,
    payload: dict[str, Any],
    template: Path,
    members: int,
    seed: int,
    miro_url: str | None,
    scim_url: str | None,
    org_id: str | None,
    token: str | None,
    scim_token: str | None,
    overrides: dict[str, str],
    extra_env: dict[str, str],
    timeout: float | None,
    state_dir: Path | None,
    console: Any,
) -> list[Any]:
    import contextlib

    from miro_sync_cli.local.errors import LocalStackError
    from miro_sync_cli.local.servers import local_servers
    from miro_sync_cli.local.stack import LocalStack, MiroConnection
    from miro_sync_cli.local.template import Template

    # Fail on a bad template or unknown function before any server starts.
    Template.load(template).function(function)
    with contextlib.ExitStack() as stack:
        if miro_url is None:
            from miro_emulator import EmulatorConfig, start_emulator

            emulator = stack.enter_context(start_emulator(EmulatorConfig(members=members, seed=seed), port=0))
            miro = MiroConnection(
                emulator.base_url, emulator.scim_url, emulator.org_id, emulator.token, emulator.scim_token
            )
            console.print(
                f"[dim]Miro emulator: {emulator.base_url} (org {emulator.org_id}, {members} members)[/dim]"
            )
        else:
            if not (org_id and token and scim_token):
                raise LocalStackError("--miro-url needs --org-id, --token and --scim-token")
            miro = MiroConnection(
                miro_url, scim_url or f"{miro_url.rstrip('/')}/api/v1/scim", org_id, token, scim_token
            )
        servers = stack.enter_context(local_servers(state_dir))
        kind = "DynamoDB Local" if servers.uses_dynamodb_local else "moto server"
        console.print(
            f"[dim]local stack: {kind} at {servers.dynamodb_url}, moto server at {servers.moto_url}[/dim]"
        )
        local = LocalStack(
            servers, template_path=template, prefix="miro-sync-local", parameter_overrides=overrides
        )
        local.provision().connect_miro(miro)
        return local.invoke(function, payload, extra_env, timeout_s=timeout)
    raise AssertionError("unreachable")
