"""`miro-sync emulator`: serve a local Miro Enterprise org until Ctrl-C."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer


@contextmanager
def _stop_on_ctrl_c() -> Iterator[threading.Event]:
    """Ctrl-C (SIGINT) and SIGTERM set an event instead of raising KeyboardInterrupt wherever the main
    thread happens to be (printing, inside the server's shutdown): the command always stops the server
    the same way and gives the prompt back."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def emulator(
    port: int = typer.Option(8765, "--port", help="TCP port on 127.0.0.1 (0 = any free port)."),
    members: int = typer.Option(200, "--members", min=1, help="Number of org members to generate."),
    seed: int = typer.Option(1, "--seed", help="Seed: same seed, same org and same faults."),
    org_id: str | None = typer.Option(
        None, "--org-id", help="Organization id (default: a fixed Miro-like id)."
    ),
    token: str | None = typer.Option(None, "--token", help="REST bearer token to accept."),
    scim_token: str | None = typer.Option(None, "--scim-token", help="SCIM bearer token to accept."),
    token_ttl: float | None = typer.Option(
        None,
        "--token-ttl",
        min=0.001,
        help=(
            "Expiring tokens: REST access tokens answer 401 (tokenExpired) after this many seconds "
            "(Miro: 3600). Default: they never expire."
        ),
    ),
    refresh_token: str | None = typer.Option(
        None,
        "--refresh-token",
        help=(
            "First refresh token for POST /v1/oauth/token (each refresh issues a new pair; a "
            "refresh token works once)."
        ),
    ),
    client_id: str | None = typer.Option(
        None, "--client-id", help="OAuth client id the token endpoint accepts."
    ),
    client_secret: str | None = typer.Option(
        None, "--client-secret", help="OAuth client secret the token endpoint accepts."
    ),
    scopes: str | None = typer.Option(
        None,
        "--scopes",
        help=(
            "Comma-separated scopes of the REST token (GET /v1/oauth-token reports them; an operation "
            "needing another answers 403). Default: every scope miro-sync needs."
        ),
    ),
    latency_ms: float = typer.Option(0.0, "--latency-ms", min=0, help="Added latency per request."),
    faults: str = typer.Option("none", "--faults", help="Fault profile: none, flaky, 429-storm, slow, ..."),
    window_s: float = typer.Option(60.0, "--window-s", min=0.001, help="Rate-limit window in seconds."),
    audit_events: int | None = typer.Option(
        None,
        "--audit-events",
        min=0,
        help="About this many audit events over the last 100 days (default: members x 10).",
    ),
    content_admin: bool = typer.Option(
        True,
        "--content-admin/--no-content-admin",
        help=(
            "Whether the token's user (the org's first member, an admin) is a Content Admin and sees "
            "every board; with --no-content-admin only boards it owns or was invited to, and other "
            "boards' member endpoints answer 404."
        ),
    ),
) -> None:
    # Heavy imports stay here so `miro-sync --help` does not build an org or load werkzeug.
    from rich.console import Console

    from miro_emulator import FAULT_PROFILES, EmulatorConfig, start_emulator

    console = Console()
    if faults not in FAULT_PROFILES:
        raise typer.BadParameter(f"unknown profile {faults!r}; choose from {', '.join(FAULT_PROFILES)}")
    defaults = EmulatorConfig()
    token_scopes = defaults.scopes if scopes is None else _parse_scopes(scopes)
    config = EmulatorConfig(
        members=members,
        seed=seed,
        latency_ms=latency_ms,
        faults=faults,
        window_s=window_s,
        audit_events=audit_events,
        org_id=org_id or defaults.org_id,
        token=token or defaults.token,
        scim_token=scim_token or defaults.scim_token,
        token_ttl_s=token_ttl,
        refresh_token=refresh_token or defaults.refresh_token,
        client_id=client_id or defaults.client_id,
        client_secret=client_secret or defaults.client_secret,
        content_admin=content_admin,
        scopes=token_scopes,
    )
    events = config.audit_event_count
    with _stop_on_ctrl_c() as stop:
        with console.status(
            f"Generating an org of {members} members, ~{events} audit events (seed {seed})..."
        ):
            running = start_emulator(config, port=port)
        _serve_until(stop, running, console, faults, window_s)


def _parse_scopes(text: str) -> tuple[str, ...]:
    """`--scopes a,b,c` (spaces around names ignored; an empty value: a token with no scope)."""
    names = [name.strip() for name in text.split(",")]
    if any(" " in name for name in names):
        raise typer.BadParameter("scopes are comma-separated names without spaces", param_hint="--scopes")
    return tuple(dict.fromkeys(name for name in names if name))


def _serve_until(stop: threading.Event, running: Any, console: Any, faults: str, window_s: float) -> None:
    with running:
        console.print(f"[bold green]Miro emulator[/] serving org [bold]{running.org_id}[/]")
        console.print(f"  REST        {running.base_url}")
        console.print(f"  SCIM        {running.scim_url}")
        console.print(f"  REST token  {running.token}")
        console.print(f"  SCIM token  {running.scim_token}")
        ttl = running.config.token_ttl_s
        if ttl is not None:
            console.print(
                f"  Expiring    access tokens live {ttl:g}s; refresh: POST {running.base_url}/v1/oauth/token",
                soft_wrap=True,
                highlight=False,
            )
            console.print(
                f"  Refresh     {running.config.refresh_token} (client id {running.config.client_id})"
            )
        console.print(
            f"  Scopes      {', '.join(running.config.scopes) or 'none'}", soft_wrap=True, highlight=False
        )
        console.print(f"  Introspect  {running.base_url}/_emulator/stats")
        console.print(f"  Faults      {faults}, rate-limit window {window_s}s")
        console.print(
            f"  Audit log   {len(running.state.audit)} events; add more: POST {running.base_url}"
            '/_emulator/audit-events {"count": N}',
            soft_wrap=True,
            highlight=False,
        )
        exports = (
            f"MIRO_API_URL={running.base_url} MIRO_SCIM_URL={running.scim_url} MIRO_ORG_ID={running.org_id}"
        )
        console.print(f"\nexport {exports}", soft_wrap=True, highlight=False)
        console.print("Press Ctrl-C to stop.")
        while not stop.wait(0.5):
            pass
        console.print("Stopping.")
