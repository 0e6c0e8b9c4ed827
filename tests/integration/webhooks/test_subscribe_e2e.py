"""`miro-sync subscribe` against the emulator, with the emulator delivering to the webhook over HTTP."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from miro_emulator import RunningEmulator
from miro_sync.miro.models import OrgMember
from miro_sync_cli.local.stack import LocalStack, MiroConnection
from miro_sync_cli.subscribe_cmd import app
from tests.integration.webhooks.conftest import serve_webhook

pytestmark = pytest.mark.integration


def test_create_deliver_list_check_disable_delete(emulator: RunningEmulator, local_stack: LocalStack) -> None:
    local_stack.connect_miro(
        MiroConnection(
            emulator.base_url, emulator.scim_url, emulator.org_id, emulator.token, emulator.scim_token
        )
    )
    board = emulator.state.boards[0]
    owner = emulator.state.all_members[board.owner_index]
    runner = CliRunner()
    with serve_webhook(local_stack) as webhook:
        webhook.members.upsert_from_miro(
            OrgMember.model_validate(
                {
                    "id": owner.id,
                    "email": "owner@example.com",
                    "role": "organization_internal_user",
                    "license": "full",
                    "active": True,
                }
            ),
            None,
        )
        env = {
            **local_stack.servers.endpoint_environment(),
            "MIRO_API_URL": emulator.base_url,
            "MIRO_ORG_ID": emulator.org_id,
            "MIRO_TOKEN": emulator.token,
            "STATE_TABLE": local_stack.tables["StateTable"],
            "COLUMNS": "200",
        }

        # Warm the handler up first: its Powertools Logger binds sys.stdout when the module is imported,
        # and inside runner.invoke that would be CliRunner's temporary (soon closed) stream.
        assert httpx.get(f"{webhook.url}/board-events/warm-up", timeout=10).status_code == 405

        created = runner.invoke(app, ["create", "--board", board.id, "--webhook-url", webhook.url], env=env)
        assert created.exit_code == 0, created.output
        [record] = list(webhook.subscriptions.list_all())
        assert (record.board_id, record.status) == (board.id, "enabled")
        assert record.subscription_id is not None
        assert record.secret_hash[:8] in created.output

        added = httpx.post(f"{emulator.base_url}/_emulator/boards/{board.id}/items", json={}, timeout=10)
        assert added.status_code < 300, added.text
        assert emulator.wait_for_deliveries(1, timeout_s=10)
        [event] = list(webhook.board_events.query_board(board.id))
        assert (event.event_type, event.actor_id) == ("create", owner.id)
        member = webhook.members.get(owner.id)
        assert member is not None
        assert member.last_board_activity_at is not None

        listed = runner.invoke(app, ["list"], env=env)
        assert listed.exit_code == 0, listed.output
        assert record.subscription_id in listed.output
        assert "enabled" in listed.output

        lost = httpx.post(
            f"{emulator.base_url}/_emulator/subscriptions/{record.subscription_id}/lose-access", timeout=10
        )
        assert lost.status_code < 300, lost.text
        checked = runner.invoke(app, ["check"], env=env)
        assert checked.exit_code == 2, checked.output
        assert "lost_access" in checked.output
        [after_check] = list(webhook.subscriptions.list_all())
        assert after_check.status == "lost_access"

        disabled = runner.invoke(app, ["disable", record.subscription_id], env=env)
        assert disabled.exit_code == 0, disabled.output
        assert [item.status for item in webhook.subscriptions.list_all()] == ["disabled"]

        deleted = runner.invoke(app, ["delete", record.subscription_id], env=env)
        assert deleted.exit_code == 0, deleted.output
        assert list(webhook.subscriptions.list_all()) == []
        assert webhook.subscriptions.get(record.secret_hash) is None
