"""AuditLogSyncFunction end to end: the handler as `miro-sync invoke` runs it (continuations included)
against the Miro emulator over HTTP and the local AWS stack, compared with the emulator's audit log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from miro_emulator import EmulatorConfig, start_emulator
from miro_sync_cli.local.stack import LocalStack, MiroConnection

pytestmark = pytest.mark.integration

EVENT = json.loads((Path(__file__).resolve().parents[3] / "events/audit_log_sync/scheduled.json").read_text())


def _stored_ids(stack: LocalStack) -> list[str]:
    dynamodb = stack.client("dynamodb")
    ids: list[str] = []
    # A Scan is fine in a test: it reads what the function wrote; the function itself never scans.
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=stack.tables["AuditTable"], ConsistentRead=True, ProjectionExpression="eventId"
    ):
        ids.extend(item["eventId"]["S"] for item in page["Items"])
    return sorted(ids)


def test_backfill_and_rerun_store_every_visible_event_once(local_stack: LocalStack) -> None:
    with start_emulator(EmulatorConfig(members=40, seed=3, audit_events=900)) as emulator:
        local_stack.connect_miro(
            MiroConnection(
                emulator.base_url, emulator.scim_url, emulator.org_id, emulator.token, emulator.scim_token
            )
        )
        # Small windows and pages and an early hand-over: several invocations, each resuming.
        env = {
            "AUDIT_WINDOW_HOURS": "240",
            "AUDIT_PAGE_SIZE": "50",
            "AUDIT_BACKFILL_DAYS": "30",
        }
        results: list[Any] = local_stack.invoke("AuditLogSyncFunction", EVENT, env)
        assert results[-1]["outcome"] == "complete"
        state = emulator.state
        log = state.audit
        from miro_sync.sync.audit_events import parse_timestamp

        start = parse_timestamp(results[0]["run_start"])
        end = parse_timestamp(results[0]["run_end"])
        assert start is not None
        assert end is not None
        first, last = log.range_positions(int(start.timestamp() * 1000) - 1, int(end.timestamp() * 1000))
        expected = sorted(log.event_id(position) for position in range(first, last))
        assert len(expected) > 100
        assert _stored_ids(local_stack) == expected

        again = local_stack.invoke("AuditLogSyncFunction", EVENT, env)
        assert again[-1]["outcome"] == "complete"
        assert sum(result["stored"] for result in again) == 0
        assert _stored_ids(local_stack) == expected
