"""`miro-sync doctor` as a user runs it (its own process, real exit codes) against the emulator: it passes
on a default emulator, and fails naming the fix when the token lacks `auditlogs:read` (`--scopes`) or its
user is no Content Admin (`--no-content-admin`). Token values never appear in what it prints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from miro_emulator import EmulatorConfig, RunningEmulator, start_emulator
from miro_sync.miro.scopes import all_scopes
from tests.fixtures.cli import CliRun, run_cli

pytestmark = pytest.mark.integration

# `EmulatorConfig.scopes` comes with the emulator's `GET /v1/oauth-token`; until both are there the
# emulator cannot tell doctor what the token may do.
needs_token_info = pytest.mark.skipif(
    "scopes" not in EmulatorConfig.model_fields,
    reason="the emulator has no GET /v1/oauth-token / EmulatorConfig.scopes yet",
)

# Variables a developer's shell may hold that would otherwise reach the command through typer's envvars.
CLEAN_ENV = dict.fromkeys(
    (
        "MIRO_TOKEN",
        "MIRO_TOKEN_SECRET",
        "MIRO_SCIM_TOKEN",
        "MIRO_SCIM_TOKEN_SECRET",
        "MIRO_SCIM_URL",
        "MIRO_API_URL",
        "MIRO_ORG_ID",
    ),
    "",
) | {"COLUMNS": "220"}


@contextmanager
def _emulator(**config: Any) -> Iterator[RunningEmulator]:
    with start_emulator(EmulatorConfig(members=60, seed=5, **config), port=0) as running:
        yield running


def _doctor(emulator: RunningEmulator, *extra: str) -> CliRun:
    run = run_cli(
        "doctor",
        "--miro-url",
        emulator.base_url,
        "--org-id",
        emulator.org_id,
        "--token",
        emulator.token,
        "--scim-token",
        emulator.scim_token,
        *extra,
        env=CLEAN_ENV,
    )
    for text in (run.stdout, run.stderr):
        assert emulator.token not in text
        assert emulator.scim_token not in text
    return run


def _rows(run: CliRun) -> dict[str, dict[str, Any]]:
    report = json.loads(run.stdout)
    return {row["check"]: row for row in report["checks"]}


def _row(rows: dict[str, dict[str, Any]], prefix: str) -> dict[str, Any]:
    matches = [row for name, row in rows.items() if name.startswith(prefix)]
    assert len(matches) == 1, (prefix, list(rows))
    return matches[0]


@needs_token_info
def test_doctor_passes_on_a_default_emulator() -> None:
    with _emulator() as emulator:
        run = _doctor(emulator, "--format", "json")
    assert run.returncode == 0, run.stdout + run.stderr
    rows = _rows(run)
    assert all(row["result"] == "pass" for row in rows.values()), rows
    assert emulator.org_id in _row(rows, "token info")["detail"]
    assert "not tried" in _row(rows, "sessions")["detail"]


@needs_token_info
def test_doctor_fails_without_auditlogs_read_and_names_the_fix() -> None:
    scopes = [scope for scope in all_scopes() if scope != "auditlogs:read"]
    with _emulator(scopes=scopes) as emulator:
        table = _doctor(emulator)
        report = _doctor(emulator, "--format", "json")
    assert table.returncode == 1
    assert report.returncode == 1
    assert "NOT ready" in table.stdout
    assert "add auditlogs:read" in table.stdout
    rows = _rows(report)
    scope_row = _row(rows, "scopes: audit log sync")
    assert scope_row["result"] == "fail"
    assert "auditlogs:read" in scope_row["fix"]
    api_row = _row(rows, "audit logs API")
    assert api_row["result"] == "fail"
    assert "auditlogs:read" in api_row["fix"]
    failing = {name for name, row in rows.items() if row["result"] == "fail"}
    assert failing == {scope_row["check"], api_row["check"]}


@needs_token_info
def test_doctor_fails_without_content_admin_saying_boards_owned_is_undercounted() -> None:
    with _emulator(content_admin=False) as emulator:
        table = _doctor(emulator)
        report = _doctor(emulator, "--format", "json")
    assert table.returncode == 1
    assert report.returncode == 1
    assert "undercounted" in table.stdout
    rows = _rows(report)
    row = _row(rows, "Content Admin")
    assert row["result"] == "fail"
    assert "Content Admin" in row["fix"]
    assert [name for name, check in rows.items() if check["result"] == "fail"] == [row["check"]]


def test_doctor_without_a_token_exits_2_naming_the_options() -> None:
    run = run_cli("doctor", "--org-id", "3458764500000000001", env=CLEAN_ENV)
    assert run.returncode == 2
    assert "--token" in run.stderr
    assert "--token-secret" in run.stderr


def test_doctor_with_a_wrong_token_fails_without_showing_it() -> None:
    with _emulator() as emulator:
        run = run_cli(
            "doctor",
            "--miro-url",
            emulator.base_url,
            "--org-id",
            emulator.org_id,
            "--token",
            "not-the-emulator-token-XYZ",
            "--scim-token",
            "not-the-scim-token-XYZ",
            "--format",
            "json",
            env=CLEAN_ENV,
        )
    assert run.returncode == 1
    assert "XYZ" not in run.stdout + run.stderr
    rows = _rows(run)
    assert _row(rows, "token info")["result"] == "fail"
    assert _row(rows, "SCIM token")["result"] == "fail"
    assert "invalid" in _row(rows, "members API")["fix"]


@pytest.mark.parametrize("content_admin", [True, False])
def test_content_admin_check_reads_the_emulators_board_listing(content_admin: bool) -> None:
    """The Content Admin row on its own (the token's user handed in, so this needs no token info)."""
    from miro_sync.miro.token_info import TokenInfo, TokenInfoRestClient
    from miro_sync_cli.doctor_cmd import Result, check_content_admin

    with _emulator(content_admin=content_admin) as emulator:
        user = emulator.emulator.state.token_user()
        info = TokenInfo.model_validate({"user": {"id": user.id, "name": "token user"}, "scopes": []})
        client = TokenInfoRestClient(emulator.base_url, emulator.token, emulator.org_id)
        row = check_content_admin(client, info)
    assert row.result is (Result.PASS if content_admin else Result.FAIL), row
    if not content_admin:
        assert "undercounted" in row.detail
        assert "Content Admin" in row.fix
