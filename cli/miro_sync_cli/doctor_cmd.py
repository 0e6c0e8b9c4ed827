"""`miro-sync doctor`: is this token (and SCIM token) good enough for the stack, before deploying and after
any change of token? Against Miro or the emulator, with explicit tokens or the stack's secret names.

One row per check (pass / warn / fail / skip, detail, how to fix); the exit code is 0 only when no check
that the configured stack uses fails. Nothing is changed at Miro: every call is a read (the session
reset is judged by its scope only). Token values are never printed; Miro's error texts are scrubbed of
them by the clients and shown as plain text, never read as rich markup.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from miro_sync_cli.stack_outputs import Stack

if TYPE_CHECKING:
    from miro_sync.miro.errors import MiroError
    from miro_sync.miro.scim import MiroScimClient
    from miro_sync.miro.token_info import TokenInfo, TokenInfoRestClient, TokenMaterial

DEFAULT_API_URL = "https://api.miro.com"
DEFAULT_SCIM_URL = "https://miro.com/api/v1/scim"
EMULATOR_SCIM_PATH = "/api/v1/scim"
# Boards owned by someone else whose membership is probed (GET board member, level 1) before concluding
# that the token's user only sees boards shared with it; and boards listed at most while looking for them.
CONTENT_ADMIN_PROBES = 10
CONTENT_ADMIN_MAX_LISTED = 500
# An expiring token without a refresh token that has less than this left is a warning.
EXPIRY_WARNING = timedelta(days=1)

MEMBERS, AUDIT, WEBHOOK, OFFBOARDING = (
    "MembersSyncFunction",
    "AuditLogSyncFunction",
    "BoardWebhookFunction",
    "OffboardingFunction",
)


class Result(StrEnum):
    PASS = "pass"  # nosec B105  # noqa: S105 - a result, not a password
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"  # not used by the configured stack, or impossible to tell without an earlier check


@dataclass
class Check:
    name: str
    result: Result
    detail: str
    fix: str = ""
    used_by: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "result": self.result.value,
            "detail": self.detail,
            "fix": self.fix,
            "usedBy": list(self.used_by),
        }


class DoctorConfigError(Exception):
    """Options that cannot make a connection (the message says what to pass)."""


@dataclass
class DoctorTarget:
    """Where Miro is, the org, the tokens (as read; never displayed) and what the stack uses."""

    api_url: str
    scim_url: str
    org_id: str
    token: TokenMaterial
    token_source: str
    scim_token: TokenMaterial | None
    scim_token_source: str | None
    webhook: bool = True
    reset_sessions: bool = True
    functions: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.functions:
            self.functions = (MEMBERS, AUDIT, OFFBOARDING) + ((WEBHOOK,) if self.webhook else ())

    def describe(self) -> dict[str, Any]:
        return {
            "apiUrl": self.api_url,
            "scimUrl": self.scim_url,
            "orgId": self.org_id,
            "token": self.token_source,
            "scimToken": self.scim_token_source,
            "functions": list(self.functions),
        }


SecretReader = Callable[[str], str]


def _read_secret(name: str) -> str:
    """The secret's string from Secrets Manager (AWS credentials and region from the environment)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        value = boto3.client("secretsmanager").get_secret_value(SecretId=name)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise DoctorConfigError(f"cannot read secret {name!r} from Secrets Manager: {code}") from None
    except BotoCoreError as error:
        raise DoctorConfigError(
            f"cannot read secret {name!r} from Secrets Manager: {type(error).__name__}"
        ) from None
    text = value.get("SecretString")
    if text is None:
        raise DoctorConfigError(f"secret {name!r} has no string value")
    return str(text)


def resolve_target(
    *,
    miro_url: str | None,
    scim_url: str | None,
    org_id: str | None,
    token: str | None,
    scim_token: str | None,
    token_secret: str | None,
    scim_token_secret: str | None,
    webhook: bool = True,
    reset_sessions: bool = True,
    read_secret: SecretReader = _read_secret,
) -> DoctorTarget:
    """Every option that says where Miro is and which tokens to use, in one place (a `--stack NAME` that
    reads the deployed stack's parameters and secret names belongs here). An explicit token wins over a
    secret name."""
    from miro_sync.miro.token_info import TokenFormatError, token_material

    api_url = (miro_url or DEFAULT_API_URL).rstrip("/")
    if not api_url.startswith(("https://", "http://")):
        raise DoctorConfigError("--miro-url must be an http(s) URL")
    if scim_url:
        resolved_scim = scim_url.rstrip("/")
    elif api_url == DEFAULT_API_URL:
        resolved_scim = DEFAULT_SCIM_URL
    else:  # the emulator (or another stand-in) serves SCIM under the same host
        resolved_scim = api_url + EMULATOR_SCIM_PATH
    if not org_id:
        raise DoctorConfigError("pass --org-id (or set MIRO_ORG_ID)")
    try:
        if token:
            material, source = token_material(token, what="--token"), "--token"
        elif token_secret:
            material = token_material(read_secret(token_secret), what=f"secret {token_secret!r}")
            source = f"secret {token_secret}"
        else:
            raise DoctorConfigError(
                "pass --token (or MIRO_TOKEN) or --token-secret (or MIRO_TOKEN_SECRET) with the REST token"
            )
        scim: TokenMaterial | None = None
        scim_source: str | None = None
        if scim_token:
            scim, scim_source = token_material(scim_token, what="--scim-token"), "--scim-token"
        elif scim_token_secret:
            scim = token_material(read_secret(scim_token_secret), what=f"secret {scim_token_secret!r}")
            scim_source = f"secret {scim_token_secret}"
    except TokenFormatError as error:
        raise DoctorConfigError(str(error)) from None
    return DoctorTarget(
        api_url=api_url,
        scim_url=resolved_scim,
        org_id=org_id,
        token=material,
        token_source=source,
        scim_token=scim,
        scim_token_source=scim_source,
        webhook=webhook,
        reset_sessions=reset_sessions,
    )


# --- the checks -----------------------------------------------------------------------------------

_REINSTALL = (
    "a Company Admin installs the Miro app again with the missing scope(s) ticked, then store the new "
    "token (update the REST token secret)"
)


def _fix_for(error: MiroError, *, not_found: str = "") -> str:
    from miro_sync.miro.errors import (
        MiroAuthError,
        MiroBadRequest,
        MiroNotFound,
        MiroRateLimited,
        MiroUnavailable,
    )

    if isinstance(error, MiroAuthError):
        if error.status == 401:
            return "the token is invalid, expired or revoked: create a new one and update the secret"
        parts = []
        if error.required_scope:
            parts.append(f"add scope {error.required_scope}: {_REINSTALL}")
        if error.required_role:
            parts.append(f"the token's user must be a {error.required_role} of the Enterprise org")
        return "; ".join(parts) or "the token lacks a permission Miro requires for this call"
    if isinstance(error, MiroNotFound) and not_found:
        return not_found
    if isinstance(error, MiroBadRequest):
        return "Miro rejected the request: check --org-id and --miro-url"
    if isinstance(error, MiroRateLimited):
        return "rate limited: run doctor again in a minute"
    if isinstance(error, MiroUnavailable):
        return "Miro could not be reached: check --miro-url / --scim-url and the network, then try again"
    return "see the detail; check --miro-url and --org-id"


def _failed(name: str, error: MiroError, used_by: tuple[str, ...], *, not_found: str = "") -> Check:
    return Check(name, Result.FAIL, str(error), _fix_for(error, not_found=not_found), used_by)


def _ref(ref: Any) -> str:
    if ref is None:
        return "?"
    return f"{ref.name} ({ref.id})" if ref.name else str(ref.id)


def check_token_info(client: TokenInfoRestClient, org_id: str) -> tuple[Check, TokenInfo | None]:
    from miro_sync.miro.errors import MiroBadRequest, MiroError

    used_by = (MEMBERS, AUDIT, WEBHOOK, OFFBOARDING)
    name = "token info (GET /v1/oauth-token)"
    try:
        info = client.token_info()
    except MiroBadRequest as error:  # Miro's documented answer to an invalid token
        return (
            Check(
                name,
                Result.FAIL,
                f"invalid token: {error}",
                "the token is invalid or revoked: create a new one and update the secret",
                used_by,
            ),
            None,
        )
    except MiroError as error:
        return _failed(name, error, used_by), None
    detail = (
        f"user {_ref(info.user)}, team {_ref(info.team)}, org {_ref(info.organization)}; "
        f"scopes: {', '.join(sorted(info.scopes)) or 'none'}"
    )
    token_org = info.organization.id if info.organization else None
    if token_org is not None and token_org != org_id:
        return (
            Check(
                name,
                Result.FAIL,
                f"{detail}; the token belongs to org {token_org}, not the configured org {org_id}",
                f"use --org-id {token_org} (MIRO_ORG_ID / MiroOrgId), or a token of org {org_id}",
                used_by,
            ),
            info,
        )
    return Check(name, Result.PASS, detail, "", used_by), info


def check_scopes(info: TokenInfo | None, target: DoctorTarget) -> list[Check]:
    from miro_sync.miro.scopes import FUNCTION_SCOPES

    checks = []
    for entry in FUNCTION_SCOPES:
        name = f"scopes: {entry.short_name}"
        used_by = (entry.function,)
        needed = [
            scope
            for scope in entry.scopes
            if not (dict(entry.conditional).get(scope) == "ResetSessions" and not target.reset_sessions)
        ]
        if entry.function not in target.functions:
            checks.append(Check(name, Result.SKIP, "not part of the configured stack", "", used_by))
            continue
        if info is None:
            checks.append(
                Check(
                    name,
                    Result.FAIL,
                    f"needs {', '.join(needed)}; the token's scopes are unknown (token info failed)",
                    "fix the token info check first",
                    used_by,
                )
            )
            continue
        missing = info.missing(needed)
        if missing:
            checks.append(
                Check(
                    name,
                    Result.FAIL,
                    f"missing {', '.join(missing)} (needs {', '.join(needed)})",
                    f"add {', '.join(missing)}: {_REINSTALL}",
                    used_by,
                )
            )
        else:
            checks.append(Check(name, Result.PASS, f"has {', '.join(needed)}", "", used_by))
    return checks


def check_enterprise_apis(
    client: TokenInfoRestClient, info: TokenInfo | None, target: DoctorTarget, now: datetime
) -> list[Check]:
    from miro_sync.miro.errors import MiroError

    checks: list[Check] = []
    not_found = f"org {target.org_id} is unknown to Miro: check --org-id (MIRO_ORG_ID)"
    name = f"organization (GET /v2/orgs/{target.org_id})"
    used_by: tuple[str, ...] = (MEMBERS, AUDIT, OFFBOARDING)
    try:
        org = client.get_organization()
        plan = f", plan {org.plan}" if org.plan else ""
        checks.append(Check(name, Result.PASS, f"{org.name}{plan}", "", used_by))
    except MiroError as error:
        checks.append(_failed(name, error, used_by, not_found=not_found))

    name, used_by = "members API (limit 1)", (MEMBERS, OFFBOARDING)
    try:
        page = next(client.iter_member_pages(limit=1))
        checks.append(Check(name, Result.PASS, f"answers ({len(page.data)} on the first page)", "", used_by))
    except MiroError as error:
        checks.append(_failed(name, error, used_by, not_found=not_found))

    name, used_by = "teams API (limit 1)", (MEMBERS, OFFBOARDING)
    try:
        teams = next(client.iter_team_pages(limit=1))
        checks.append(Check(name, Result.PASS, f"answers ({len(teams.data)} on the first page)", "", used_by))
    except MiroError as error:
        checks.append(_failed(name, error, used_by, not_found=not_found))

    name, used_by = "audit logs API (last hour, limit 1)", (AUDIT,)
    try:
        audit = next(client.iter_audit_pages(now - timedelta(hours=1), now, limit=1, sorting="DESC"))
        checks.append(Check(name, Result.PASS, f"answers ({len(audit.data)} on the first page)", "", used_by))
    except MiroError as error:
        checks.append(_failed(name, error, used_by))

    name, used_by = "sessions API (scope only)", (OFFBOARDING,)
    if not target.reset_sessions:
        checks.append(
            Check(name, Result.SKIP, "ResetSessions is off: the offboarding signs nobody out", "", ())
        )
    elif info is None:
        checks.append(
            Check(
                name,
                Result.FAIL,
                "scope sessions:delete unknown (token info failed); the call itself is never tried",
                "fix the token info check first",
                used_by,
            )
        )
    elif "sessions:delete" in info.scopes:
        checks.append(
            Check(
                name,
                Result.PASS,
                "scope sessions:delete present; the call itself is not tried (it would sign someone out)",
                "",
                used_by,
            )
        )
    else:
        checks.append(
            Check(
                name,
                Result.FAIL,
                "scope sessions:delete missing: offboarding cannot sign leavers out "
                "(the call itself is not tried)",
                f"add sessions:delete: {_REINSTALL}; or deploy with ResetSessions=false "
                "(doctor --no-reset-sessions)",
                used_by,
            )
        )
    return checks


def check_scim(scim: MiroScimClient | None, target: DoctorTarget) -> Check:
    from miro_sync.miro.errors import MiroAuthError, MiroError

    name, used_by = "SCIM token (GET /Users?count=1)", (MEMBERS, OFFBOARDING)
    if scim is None:
        return Check(
            name,
            Result.FAIL,
            "no SCIM token given: the members sync cannot resolve SCIM ids and offboarding cannot act",
            "pass --scim-token or --scim-token-secret (MIRO_SCIM_TOKEN_SECRET); a Company Admin finds the "
            "SCIM token under Settings > Enterprise integrations > SCIM",
            used_by,
        )
    try:
        page = next(scim.iter_user_pages(count=1))
    except MiroAuthError as error:
        return Check(
            name,
            Result.FAIL,
            str(error),
            "the SCIM token is wrong or was regenerated: copy the current one from Miro (Settings > "
            "Enterprise integrations > SCIM) into the SCIM token secret",
            used_by,
        )
    except MiroError as error:
        return _failed(name, error, used_by)
    return Check(
        name, Result.PASS, f"valid ({page.total_results} SCIM users at {target.scim_url})", "", used_by
    )


def check_content_admin(client: TokenInfoRestClient, info: TokenInfo | None) -> Check:
    """Can the token see every board? `GET /v2/boards` lists, to a user without Content Admin, only the
    boards it owns or was invited to (Miro publishes no org-wide board count to compare with). So: find
    boards owned by someone else and ask whether the token's user is a member of one; a board listed to
    a user who is neither owner nor member proves Content Admin."""
    from miro_sync.miro.errors import MiroError, MiroNotFound

    name, used_by = "Content Admin (every board visible)", (MEMBERS, OFFBOARDING)
    if info is None:
        return Check(
            name,
            Result.FAIL,
            "cannot tell: the token's user is unknown (token info failed)",
            "fix the token info check first",
            used_by,
        )
    user_id = info.user.id
    listed, total = 0, None
    others: list[str] = []
    try:
        for page in client.iter_board_pages(limit=50):
            total = page.total if page.total is not None else total
            for board in page.data:
                listed += 1
                if board.owner is not None and board.owner.id != user_id:
                    others.append(board.id)
            if len(others) >= CONTENT_ADMIN_PROBES or listed >= CONTENT_ADMIN_MAX_LISTED:
                break
        for board_id in others[:CONTENT_ADMIN_PROBES]:
            try:
                client.get_board_member(board_id, user_id)
            except MiroNotFound:
                shown = total if total is not None else f"{listed}+"
                return Check(
                    name,
                    Result.PASS,
                    f"{shown} boards listed, including boards {_ref(info.user)} neither owns nor was "
                    "invited to (e.g. " + board_id + ")",
                    "",
                    used_by,
                )
    except MiroError as error:
        return _failed(name, error, used_by)
    fix = (
        f"a Company Admin gives the token's user {_ref(info.user)} Content Admin permissions (Miro help: "
        "'Content Admin permissions for Company Admins'), or use a token of a user who has them"
    )
    if listed == 0:
        detail = (
            "GET /v2/boards lists no board: either the org has none or the token's user is no Content Admin"
        )
    else:
        detail = (
            f"every board listed ({total if total is not None else listed}) is owned by or shared with "
            f'{_ref(info.user)}: not a Content Admin, so "boards owned" is undercounted and offboarding '
            "cannot hand over private boards"
        )
    return Check(name, Result.FAIL, detail, fix, used_by)


def check_webhooks(client: TokenInfoRestClient, target: DoctorTarget) -> Check:
    from miro_sync.miro.errors import MiroError

    name, used_by = "webhooks API (GET subscriptions, limit 1)", (WEBHOOK,)
    if WEBHOOK not in target.functions:
        return Check(name, Result.SKIP, "the board webhook is off (EnableWebhook=false)", "", ())
    try:
        first = next(client.iter_subscriptions(limit=1), None)
    except MiroError as error:
        check = _failed(name, error, used_by)
        check.fix += "; or deploy with EnableWebhook=false (doctor --no-webhook): the webhook is optional"
        return check
    detail = "answers (no subscriptions yet)" if first is None else "answers (subscriptions exist)"
    return Check(name, Result.PASS, detail, "", used_by)


def _duration(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds >= 86_400:
        return f"{seconds / 86_400:.1f} days"
    if seconds >= 3_600:
        return f"{seconds / 3_600:.1f} h"
    return f"{max(1, round(seconds / 60))} min"


def check_expiry(target: DoctorTarget, now: datetime) -> Check:
    name, used_by = "token expiry", (MEMBERS, AUDIT, WEBHOOK, OFFBOARDING)
    token = target.token
    left = token.seconds_left(now)
    if left is None or token.expires_at is None:
        return Check(name, Result.PASS, "plain token: non-expiring (no expiresAt)", "", used_by)
    refresh = "refresh token present" if token.has_refresh_token else "no refresh token"
    at = token.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    renew = (
        "store the token as JSON with refreshToken, clientId and clientSecret so the functions refresh it, "
        "or create a new token"
    )
    if left <= 0:
        if token.has_refresh_token:
            return Check(
                name,
                Result.WARN,
                f"expired {_duration(left)} ago ({at}); {refresh}: the functions refresh it at their next "
                "use; doctor never refreshes (that would spend the refresh token), so its calls get 401",
                "run a function once (or wait for a schedule) so the pair is refreshed and stored, then run "
                "doctor again",
                used_by,
            )
        return Check(name, Result.FAIL, f"expired {_duration(left)} ago ({at}); {refresh}", renew, used_by)
    detail = f"expires in {_duration(left)} ({at}); {refresh}"
    if not token.has_refresh_token and left < EXPIRY_WARNING.total_seconds():
        return Check(name, Result.WARN, detail, renew, used_by)
    return Check(name, Result.PASS, detail, "", used_by)


def run_checks(
    target: DoctorTarget,
    client: TokenInfoRestClient,
    scim: MiroScimClient | None,
    now: datetime | None = None,
) -> list[Check]:
    """Every check, in the order shown. Checks the configured stack does not use are marked skip."""
    moment = now or datetime.now(UTC)
    token_check, info = check_token_info(client, target.org_id)
    checks = [token_check, *check_scopes(info, target)]
    checks += check_enterprise_apis(client, info, target, moment)
    checks.append(check_scim(scim, target))
    checks.append(check_content_admin(client, info))
    checks.append(check_webhooks(client, target))
    checks.append(check_expiry(target, moment))
    for check in checks:
        if (
            check.result is not Result.SKIP
            and check.used_by
            and not set(check.used_by) & set(target.functions)
        ):
            check.result, check.detail = Result.SKIP, f"not used by the configured stack ({check.detail})"
    return checks


def passed(checks: Iterable[Check]) -> bool:
    return not any(check.result is Result.FAIL for check in checks)


def build_clients(target: DoctorTarget) -> tuple[TokenInfoRestClient, MiroScimClient | None]:
    from miro_sync.miro.scim import MiroScimClient
    from miro_sync.miro.token_info import TokenInfoRestClient

    # Few attempts: doctor answers quickly; a failing call is a finding, not something to wait out.
    rest = TokenInfoRestClient(target.api_url, target.token.access_token, target.org_id, max_attempts=2)
    scim = None
    if target.scim_token is not None:
        scim = MiroScimClient(target.scim_url, target.scim_token.access_token, max_attempts=2)
    return rest, scim


# --- output ---------------------------------------------------------------------------------------

_STYLE = {Result.PASS: "green", Result.WARN: "yellow", Result.FAIL: "red", Result.SKIP: "dim"}


def render_table(checks: list[Check], target: DoctorTarget) -> Any:
    from rich.table import Table
    from rich.text import Text

    ok = passed(checks)
    table = Table(
        title=Text(
            f"miro-sync doctor: {target.api_url}, org {target.org_id} ({target.token_source})",
            style="bold",
        ),
        caption=Text(
            "ready: every check the stack uses passes"
            if ok
            else "NOT ready: fix the failing checks and run doctor again",
            style="green" if ok else "bold red",
        ),
        show_lines=True,
    )
    table.add_column("check", overflow="fold", ratio=2)
    table.add_column("result", no_wrap=True)
    table.add_column("detail", overflow="fold", ratio=4)
    table.add_column("how to fix", overflow="fold", ratio=3)
    for check in checks:
        style = _STYLE[check.result]
        table.add_row(
            Text(check.name),
            Text(check.result.value, style=style),
            Text(check.detail),
            Text(check.fix or "-", style="" if check.fix else "dim"),
        )
    return table


def doctor(
    miro_url: Annotated[
        str | None,
        typer.Option(
            "--miro-url",
            "--api-url",
            envvar="MIRO_API_URL",
            help="Miro REST base URL (default https://api.miro.com).",
        ),
    ] = None,
    scim_url: Annotated[
        str | None,
        typer.Option(
            envvar="MIRO_SCIM_URL",
            help="SCIM base URL (default: Miro's; for another --miro-url: that URL + /api/v1/scim).",
        ),
    ] = None,
    org_id: Annotated[str | None, typer.Option(envvar="MIRO_ORG_ID", help="Miro organization id.")] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="MIRO_TOKEN", help="REST token (plain, or the JSON form).", show_default=False),
    ] = None,
    scim_token: Annotated[
        str | None, typer.Option(envvar="MIRO_SCIM_TOKEN", help="SCIM token.", show_default=False)
    ] = None,
    token_secret: Annotated[
        str | None,
        typer.Option(
            envvar="MIRO_TOKEN_SECRET", help="Secrets Manager name/ARN of the REST token (if no --token)."
        ),
    ] = None,
    scim_token_secret: Annotated[
        str | None,
        typer.Option(
            envvar="MIRO_SCIM_TOKEN_SECRET",
            help="Secrets Manager name/ARN of the SCIM token (if no --scim-token).",
        ),
    ] = None,
    webhook: Annotated[
        bool, typer.Option("--webhook/--no-webhook", help="The stack has the board webhook (EnableWebhook).")
    ] = True,
    reset_sessions: Annotated[
        bool,
        typer.Option(
            "--reset-sessions/--no-reset-sessions", help="Offboarding signs leavers out (ResetSessions)."
        ),
    ] = True,
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    stack: Stack = None,
) -> None:
    """Check the token(s) against everything the stack needs; exit 0 only when all of that passes."""
    from rich.console import Console

    from miro_sync.miro.http import close_shared_http_clients
    from miro_sync_cli.stack_outputs import fill_or_exit

    if output not in ("table", "json"):
        raise typer.BadParameter("--format must be table or json")
    errors = Console(stderr=True)
    if stack:
        # option > environment variable > the deployed stack's outputs and parameters
        wanted: dict[str, str | None] = {
            "MIRO_API_URL": miro_url,
            "MIRO_SCIM_URL": scim_url,
            "MIRO_ORG_ID": org_id,
        }
        if not token:
            wanted["MIRO_TOKEN_SECRET"] = token_secret
        if not scim_token:
            wanted["MIRO_SCIM_TOKEN_SECRET"] = scim_token_secret
        filled = fill_or_exit(stack, wanted, required=["MIRO_ORG_ID"])
        miro_url, scim_url, org_id = filled["MIRO_API_URL"], filled["MIRO_SCIM_URL"], filled["MIRO_ORG_ID"]
        token_secret = filled.get("MIRO_TOKEN_SECRET", token_secret)
        scim_token_secret = filled.get("MIRO_SCIM_TOKEN_SECRET", scim_token_secret)
    try:
        target = resolve_target(
            miro_url=miro_url,
            scim_url=scim_url,
            org_id=org_id,
            token=token,
            scim_token=scim_token,
            token_secret=token_secret,
            scim_token_secret=scim_token_secret,
            webhook=webhook,
            reset_sessions=reset_sessions,
        )
    except DoctorConfigError as error:
        errors.print("[red]error:[/red] ", end="")
        errors.print(str(error), markup=False)
        raise typer.Exit(2) from None
    rest, scim = build_clients(target)
    try:
        checks = run_checks(target, rest, scim)
    finally:
        close_shared_http_clients()
    ok = passed(checks)
    if output == "json":
        typer.echo(
            json.dumps(
                {"ok": ok, "target": target.describe(), "checks": [check.as_json() for check in checks]},
                indent=2,
            )
        )
    else:
        Console(soft_wrap=False).print(render_table(checks, target))
    raise typer.Exit(0 if ok else 1)
