"""`miro-sync subscribe` prints ids and statuses from Miro and the StateTable as they are: never as rich
markup (a board id or a status like `[/x]` made rich raise MarkupError)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from typer.testing import CliRunner

from miro_sync.store.subscriptions import SubscriptionRecord
from miro_sync_cli import subscribe_cmd

runner = CliRunner()
ARGS = ["--org-id", "o-1", "--token", "t", "--state-table", "state"]


@dataclass
class AtMiro:
    id: str
    status: str


class FakeApi:
    def iter_subscriptions(self) -> Iterator[AtMiro]:
        yield AtMiro("[/x]sub", "[/x]")


class FakeStore:
    def __init__(self) -> None:
        self.records = [
            SubscriptionRecord(
                secret_hash="[/z]" + "0" * 60,
                board_id="[/x]board",
                status="enabled",
                created_at="2026-03-01T00:00:00.000Z",
                updated_at="2026-03-01T00:00:00.000Z",
                subscription_id="[/x]sub",
            )
        ]

    def list_all(self) -> Iterator[SubscriptionRecord]:
        yield from self.records

    def find_by_subscription_id(self, subscription_id: str) -> SubscriptionRecord | None:
        return next((r for r in self.records if r.subscription_id == subscription_id), None)


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    # the command builds its adapters in these two functions: hand in fakes there
    def client(*_args: Any) -> FakeApi:
        return FakeApi()

    store = FakeStore()
    monkeypatch.setattr(subscribe_cmd, "_client", client)
    monkeypatch.setattr(subscribe_cmd, "_store", lambda _table: store)


def test_list_shows_markup_like_ids_and_statuses_as_they_are() -> None:
    result = runner.invoke(subscribe_cmd.app, ["list", *ARGS], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    assert "[/x]sub" in result.output
    assert "[/x]board" in result.output
    assert "[/z]" in result.output


def test_errors_show_markup_like_ids_as_they_are() -> None:
    result = runner.invoke(subscribe_cmd.app, ["disable", "[/y]", *ARGS], env={"COLUMNS": "200"})

    assert result.exit_code == 1, result.output
    assert "subscription [/y] was not created by miro-sync" in result.output
