"""`miro-sync offboard ACTION` names what it needs before it reads or sends anything."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from miro_sync_cli.offboard_cmd import app

CLEAN_ENV = {"OFFBOARDING_QUEUE_URL": "", "MEMBERS_TABLE": "", "ACTIONS_TABLE": ""}


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["--queue-url", "http://127.0.0.1:1/queue/offboarding"],
        ["--members-table", "members"],
    ],
)
def test_an_action_without_its_queue_or_members_table_exits_2_naming_both(options: list[str]) -> None:
    result = CliRunner().invoke(
        app, ["suspend", "ann@example.com", "--reason", "left", *options], env=CLEAN_ENV
    )
    assert result.exit_code == 2
    assert "OFFBOARDING_QUEUE_URL" in result.output
    assert "MEMBERS_TABLE" in result.output
