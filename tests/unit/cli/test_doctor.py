"""`miro-sync doctor`'s decisions against a fake Miro (httpx.MockTransport): which rows pass, warn, fail or
are skipped, what the fix says, the exit decision, and that no token value is ever shown."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from miro_sync.miro.scim import MiroScimClient
from miro_sync.miro.scopes import FUNCTION_SCOPES, all_scopes
from miro_sync.miro.token_info import TokenInfoRestClient, TokenMaterial
from miro_sync_cli import doctor_cmd
from miro_sync_cli.doctor_cmd import (
    DoctorConfigError,
    DoctorTarget,
    Result,
    passed,
    render_table,
    resolve_target,
    run_checks,
)

ORG = "3458764500000000001"
USER = "3458764500000000100"
OTHER = "3458764500000000200"
TOKEN = "rest-token-SECRET-value"
SCIM_TOKEN = "scim-token-SECRET-value"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeMiro:
    scopes: list[str] = field(default_factory=lambda: list(all_scopes()))
    content_admin: bool = True
    token_org: str = ORG
    token_valid: bool = True
    scim_valid: bool = True
    company_admin: bool = True
    # board id -> (owner id, member ids)
    boards: dict[str, tuple[str, set[str]]] = field(
        default_factory=lambda: {
            "b-own": (USER, {USER}),
            "b-shared": (OTHER, {OTHER, USER}),
            "b-private": (OTHER, {OTHER}),
        }
    )
    seen: list[str] = field(default_factory=list)

    def _error(self, status: int, message: str) -> httpx.Response:
        return httpx.Response(
            status, json={"status": status, "code": "error", "message": message, "type": "error"}
        )

    def _needs(self, scope: str, admin: bool = False) -> httpx.Response | None:
        if scope not in self.scopes:
            return self._error(403, f"Insufficient scope: {scope}")
        if admin and not self.company_admin:
            return self._error(403, "Company Admin role required")
        return None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.seen.append(f"{request.method} {path}")
        assert request.method == "GET", "doctor must never change anything at Miro"
        bearer = request.headers.get("Authorization", "")
        if path.startswith("/scim"):
            if not self.scim_valid or bearer != f"Bearer {SCIM_TOKEN}":
                return httpx.Response(401, json={"status": "401", "detail": "Unauthorized"})
            return httpx.Response(
                200,
                json={
                    "totalResults": 7,
                    "startIndex": 1,
                    "itemsPerPage": 1,
                    "Resources": [{"id": "s1", "userName": "a@example.com", "active": True}],
                },
            )
        if not self.token_valid or bearer != f"Bearer {TOKEN}":
            return self._error(401, "Token is invalid")
        if path == "/v1/oauth-token":
            return httpx.Response(
                200,
                json={
                    "type": "oauth",
                    "organization": {"type": "organization", "name": "Acme", "id": self.token_org},
                    "team": {"type": "team", "name": "Core", "id": "t1"},
                    "createdBy": {"type": "user", "name": "Ada Admin", "id": USER},
                    "user": {"type": "user", "name": "Ada Admin", "id": USER},
                    "scopes": self.scopes,
                },
            )
        if path == f"/v2/orgs/{ORG}":
            return self._needs("organizations:read", admin=True) or httpx.Response(
                200, json={"id": ORG, "name": "Acme", "plan": "enterprise", "type": "organization"}
            )
        if path.startswith("/v2/orgs/"):
            if path.endswith("/members"):
                denied = self._needs("organizations:read", admin=True)
                item: dict[str, Any] = {
                    "id": USER,
                    "email": "ada@example.com",
                    "role": "organization_internal_admin",
                    "license": "full",
                    "active": True,
                    "type": "organization-member",
                }
            elif path.endswith("/teams"):
                denied = self._needs("organizations:teams:read", admin=True)
                item = {"id": "t1", "name": "Core", "type": "team"}
            else:
                return self._error(404, "Not found")
            return denied or httpx.Response(
                200, json={"type": "cursor-list", "limit": 1, "size": 1, "data": [item]}
            )
        if path == "/v2/audit/logs":
            return self._needs("auditlogs:read", admin=True) or httpx.Response(
                200, json={"type": "cursor-list", "limit": 1, "size": 0, "data": []}
            )
        if path == "/v2/boards":
            denied = self._needs("boards:read")
            visible = [
                (board_id, owner)
                for board_id, (owner, members) in self.boards.items()
                if self.content_admin or USER in members
            ]
            data = [
                {"id": b, "name": b, "type": "board", "owner": {"id": o, "name": o, "type": "user"}}
                for b, o in visible
            ]
            return denied or httpx.Response(
                200,
                json={
                    "data": data,
                    "total": len(data),
                    "size": len(data),
                    "offset": 0,
                    "limit": 50,
                    "type": "list",
                },
            )
        if path.startswith("/v2/boards/") and "/members/" in path:
            _, _, _, board_id, _, member_id = path.split("/")
            _owner, members = self.boards[board_id]
            if member_id in members:
                return httpx.Response(200, json={"id": member_id, "role": "editor", "type": "board_member"})
            return self._error(404, "Board member not found")
        if path == "/v2-experimental/webhooks/subscriptions":
            return self._needs("boards:read") or httpx.Response(
                200, json={"type": "cursor-list", "limit": 1, "size": 0, "data": []}
            )
        return self._error(404, f"no route {path}")


def _target(**overrides: Any) -> DoctorTarget:
    values: dict[str, Any] = {
        "api_url": "https://miro.test",
        "scim_url": "https://miro.test/scim",
        "org_id": ORG,
        "token": TokenMaterial(TOKEN),
        "token_source": "--token",
        "scim_token": TokenMaterial(SCIM_TOKEN),
        "scim_token_source": "--scim-token",
    }
    values.update(overrides)
    return DoctorTarget(**values)


def _run(miro: FakeMiro, target: DoctorTarget | None = None) -> dict[str, Any]:
    target = target or _target()
    transport = httpx.Client(transport=httpx.MockTransport(miro))
    rest = TokenInfoRestClient(
        target.api_url,
        target.token.access_token,
        target.org_id,
        http=transport,
        max_attempts=1,
        sleep=lambda _: None,
    )
    scim = None
    if target.scim_token is not None:
        scim = MiroScimClient(
            target.scim_url,
            target.scim_token.access_token,
            http=transport,
            max_attempts=1,
            sleep=lambda _: None,
        )
    checks = run_checks(target, rest, scim, NOW)
    return {"checks": {check.name: check for check in checks}, "ok": passed(checks), "list": checks}


def _row(result: dict[str, Any], prefix: str) -> doctor_cmd.Check:
    matches = [check for name, check in result["checks"].items() if name.startswith(prefix)]
    assert len(matches) == 1, (prefix, list(result["checks"]))
    return matches[0]


def test_everything_passes_with_every_scope_and_content_admin() -> None:
    miro = FakeMiro()
    result = _run(miro)
    assert result["ok"], [(c.name, c.result, c.detail) for c in result["list"]]
    assert {check.result for check in result["list"]} == {Result.PASS}
    assert "Ada Admin" in _row(result, "token info").detail
    assert "b-private" in _row(result, "Content Admin").detail
    assert "not tried" in _row(result, "sessions").detail
    assert not any("reset_all" in call for call in miro.seen)


def test_missing_auditlogs_scope_fails_the_audit_sync_and_names_the_fix() -> None:
    miro = FakeMiro(scopes=[s for s in all_scopes() if s != "auditlogs:read"])
    result = _run(miro)
    assert not result["ok"]
    scopes = _row(result, "scopes: audit log sync")
    assert scopes.result is Result.FAIL
    assert "auditlogs:read" in scopes.detail
    assert "auditlogs:read" in scopes.fix
    audit = _row(result, "audit logs API")
    assert audit.result is Result.FAIL
    assert "auditlogs:read" in audit.fix
    assert _row(result, "scopes: members sync").result is Result.PASS


def test_without_content_admin_the_boards_check_fails_saying_boards_owned_is_undercounted() -> None:
    result = _run(FakeMiro(content_admin=False))
    assert not result["ok"]
    row = _row(result, "Content Admin")
    assert row.result is Result.FAIL
    assert "undercounted" in row.detail
    assert "Content Admin" in row.fix
    assert "Ada Admin" in row.fix
    failing = [check.name for check in result["list"] if check.result is Result.FAIL]
    assert failing == [row.name]


def test_a_token_of_another_org_fails_naming_the_right_org_id() -> None:
    result = _run(FakeMiro(token_org="999"))
    row = _row(result, "token info")
    assert row.result is Result.FAIL
    assert "--org-id 999" in row.fix


def test_an_invalid_token_fails_every_check_that_needs_it_and_never_shows_the_token() -> None:
    result = _run(FakeMiro(token_valid=False))
    assert not result["ok"]
    row = _row(result, "token info")
    assert row.result is Result.FAIL
    assert "invalid" in row.fix
    assert _row(result, "scopes: offboarding").result is Result.FAIL
    assert _row(result, "Content Admin").result is Result.FAIL
    text = json.dumps([check.as_json() for check in result["list"]])
    assert TOKEN not in text
    assert SCIM_TOKEN not in text


def test_no_company_admin_role_names_the_role() -> None:
    result = _run(FakeMiro(company_admin=False))
    row = _row(result, "members API")
    assert row.result is Result.FAIL
    assert "Company Admin" in row.fix


def test_scim_token_missing_or_wrong_fails() -> None:
    missing = _run(FakeMiro(), _target(scim_token=None, scim_token_source=None))
    assert _row(missing, "SCIM token").result is Result.FAIL
    assert "--scim-token" in _row(missing, "SCIM token").fix
    wrong = _run(FakeMiro(scim_valid=False))
    row = _row(wrong, "SCIM token")
    assert row.result is Result.FAIL
    assert "SCIM" in row.fix
    assert SCIM_TOKEN not in row.detail


def test_sessions_scope_is_only_needed_with_reset_sessions() -> None:
    scopes = [s for s in all_scopes() if s != "sessions:delete"]
    on = _run(FakeMiro(scopes=scopes))
    assert _row(on, "sessions").result is Result.FAIL
    assert "ResetSessions=false" in _row(on, "sessions").fix
    assert "sessions:delete" in _row(on, "scopes: offboarding").detail
    off = _run(FakeMiro(scopes=scopes), _target(reset_sessions=False))
    assert off["ok"], [(c.name, c.result, c.detail) for c in off["list"] if c.result is Result.FAIL]
    assert _row(off, "sessions").result is Result.SKIP


def test_webhook_off_skips_the_webhook_rows() -> None:
    miro = FakeMiro()
    result = _run(miro, _target(webhook=False))
    assert _row(result, "webhooks API").result is Result.SKIP
    assert _row(result, "scopes: board webhook").result is Result.SKIP
    assert not any("webhooks" in call for call in miro.seen)


def test_a_skipped_failure_does_not_fail_the_run() -> None:
    # Only the audit sync lacks its scope, and the stack is told it has no audit sync.
    miro = FakeMiro(scopes=[s for s in all_scopes() if s != "auditlogs:read"])
    target = _target()
    target.functions = tuple(f for f in target.functions if f != doctor_cmd.AUDIT)
    result = _run(miro, target)
    assert result["ok"]
    assert _row(result, "audit logs API").result is Result.SKIP


@pytest.mark.parametrize(
    ("material", "expected", "words"),
    [
        (TokenMaterial(TOKEN), Result.PASS, "non-expiring"),
        (TokenMaterial(TOKEN, NOW + timedelta(days=30), True, True), Result.PASS, "refresh token present"),
        (TokenMaterial(TOKEN, NOW + timedelta(hours=3), False, True), Result.WARN, "no refresh token"),
        (
            TokenMaterial(TOKEN, NOW - timedelta(hours=3), True, True),
            Result.WARN,
            "refresh it at their next",
        ),
        (TokenMaterial(TOKEN, NOW - timedelta(hours=3), False, True), Result.FAIL, "expired"),
    ],
)
def test_token_expiry(material: TokenMaterial, expected: Result, words: str) -> None:
    row = doctor_cmd.check_expiry(_target(token=material), NOW)
    assert row.result is expected
    assert words in row.detail


def test_resolve_target_prefers_explicit_tokens_and_reads_secrets_otherwise() -> None:
    secrets = {
        "prod/rest": json.dumps(
            {"accessToken": TOKEN, "refreshToken": "r", "expiresAt": "2026-03-02T00:00:00Z"}
        ),
        "prod/scim": SCIM_TOKEN,
    }
    target = resolve_target(
        miro_url=None,
        scim_url=None,
        org_id=ORG,
        token=None,
        scim_token=None,
        token_secret="prod/rest",
        scim_token_secret="prod/scim",
        read_secret=secrets.__getitem__,
    )
    assert target.api_url == "https://api.miro.com"
    assert target.scim_url == "https://miro.com/api/v1/scim"
    assert target.token.access_token == TOKEN
    assert target.token.has_refresh_token
    assert target.token.expires_at == datetime(2026, 3, 2, tzinfo=UTC)
    assert target.token_source == "secret prod/rest"
    assert TOKEN not in repr(target)
    emulator = resolve_target(
        miro_url="http://127.0.0.1:9/",
        scim_url=None,
        org_id=ORG,
        token="t",
        scim_token=None,
        token_secret="ignored",
        scim_token_secret=None,
        read_secret=secrets.__getitem__,
    )
    assert emulator.scim_url == "http://127.0.0.1:9/api/v1/scim"
    assert emulator.token_source == "--token"
    assert emulator.scim_token is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"org_id": None}, "--org-id"),
        ({"token": None}, "--token-secret"),
        ({"token": '{"refreshToken": "x"}'}, "accessToken"),
        ({"miro_url": "ftp://x"}, "http"),
    ],
)
def test_resolve_target_errors_name_the_option(kwargs: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {
        "miro_url": None,
        "scim_url": None,
        "org_id": ORG,
        "token": TOKEN,
        "scim_token": None,
        "token_secret": None,
        "scim_token_secret": None,
    }
    values.update(kwargs)
    with pytest.raises(DoctorConfigError, match=message.replace("-", r"\-")):
        resolve_target(**values)


def test_table_renders_every_row_and_the_verdict() -> None:
    from rich.console import Console

    result = _run(FakeMiro(content_admin=False))
    console = Console(record=True, width=200)
    console.print(render_table(result["list"], _target()))
    text = console.export_text()
    assert "NOT ready" in text
    assert "undercounted" in text
    assert TOKEN not in text
    for check in result["list"]:
        assert check.name.split(" ")[0] in text


def test_command_without_org_or_token_exits_2_with_the_option_to_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "MIRO_ORG_ID",
        "MIRO_TOKEN",
        "MIRO_TOKEN_SECRET",
        "MIRO_API_URL",
        "MIRO_SCIM_TOKEN",
        "MIRO_SCIM_TOKEN_SECRET",
        "MIRO_SCIM_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    import typer

    app = typer.Typer()
    app.command()(doctor_cmd.doctor)
    result = CliRunner().invoke(app, ["--token", TOKEN])
    assert result.exit_code == 2
    assert "--org-id" in result.output
    assert TOKEN not in result.output


def test_scope_table_matches_the_clients_auth_hints() -> None:
    """Every scope the REST client's AuthHints name is in some function's row, and the README table is
    generated from the same rows."""
    from miro_sync.miro import client
    from miro_sync.miro.scopes import markdown_table

    hinted = {
        value.scope
        for name, value in vars(client).items()
        if name.startswith("_") and isinstance(value, client.AuthHint) and value.scope
    }
    listed = {scope for entry in FUNCTION_SCOPES for scope in entry.scopes}
    assert hinted == listed
    table = markdown_table()
    for entry in FUNCTION_SCOPES:
        assert entry.function in table
