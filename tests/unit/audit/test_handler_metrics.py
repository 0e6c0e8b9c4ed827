"""AuditLogSyncFunction's invocation: metrics (SyncSucceeded only for a complete run) and hand-over.

The handler's adapters are handed in: the real Miro client over a scripted transport, the real
repositories on moto, a recording invoker; metrics go to a Powertools EphemeralMetrics provider whose
EMF document is inspected."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import httpx
import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics

from miro_sync.continuation import Continuation
from miro_sync.miro import MiroRestClient
from miro_sync.settings.audit_log_sync import AuditLogSyncSettings
from miro_sync.store.audit import AuditRepository, RejectedEventsRepository
from miro_sync.store.members import MembersRepository
from miro_sync.store.state import StateRepository
from miro_sync_cli.local.invoke import LocalLambdaContext
from tests.fixtures.functions import load_function_app
from tests.unit.audit.fakes import make_event
from tests.unit.audit.tables import Tables
from tests.unit.miro.fakes import FakeTime


@pytest.fixture(scope="module")
def app() -> ModuleType:
    return load_function_app("audit_log_sync")


@dataclass
class RecordingInvoker:
    calls: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)

    def invoke_async(self, function_name: str, payload: Mapping[str, Any]) -> None:
        self.calls.append((function_name, payload))


def _miro(now: datetime) -> MiroRestClient:
    """Two pages of recent events for any window (the sync asks for one window: 1 day backfill)."""
    events = [make_event(f"e{n}", now - timedelta(hours=n + 1)) for n in range(4)]
    events.sort(key=lambda event: str(event["createdAt"]))

    def respond(request: httpx.Request) -> httpx.Response:
        second = request.url.params.get("cursor") == "c2"
        data = events[2:] if second else events[:2]
        body = {
            "type": "cursor-list",
            "limit": 2,
            "size": 2,
            "data": data,
            "cursor": None if second else "c2",
        }
        return httpx.Response(200, content=json.dumps(body).encode(), headers={"X-RateLimit-Limit": "100000"})

    return MiroRestClient(
        "https://api.miro.test",
        "token",
        "org-1",
        http=httpx.Client(transport=httpx.MockTransport(respond)),
        sleep=FakeTime().sleep,
        clock=FakeTime().clock,
    )


def _invoke(
    app: ModuleType, tables: Tables, *, timeout_s: float = 900, min_remaining_ms: int = 60_000
) -> tuple[dict[str, Any], dict[str, Any], RecordingInvoker]:
    settings = AuditLogSyncSettings.from_env(
        {
            "MIRO_ORG_ID": "org-1",
            "MIRO_TOKEN_SECRET": "miro-token",
            "AUDIT_TABLE": tables.audit.name,
            "STATE_TABLE": tables.state.name,
            "MEMBERS_TABLE": tables.members.name,
            "AUDIT_BACKFILL_DAYS": "1",
            "SYNC_MIN_REMAINING_MS": str(min_remaining_ms),
        }
    )
    invoker = RecordingInvoker()
    adapters = app.Adapters(
        miro=_miro(datetime.now(UTC)),
        audit=AuditRepository(tables.audit),
        rejects=RejectedEventsRepository(tables.state),
        state=StateRepository(tables.state),
        members=MembersRepository(tables.members),
        forwarder=None,
        continuation=Continuation(invoker, "stack-audit-log-sync"),
    )
    sink = EphemeralMetrics(namespace="MiroSync", service="audit-log-sync")
    context = LocalLambdaContext(
        function_name="stack-audit-log-sync", memory_limit_in_mb=512, timeout_s=timeout_s
    )
    summary = app.run_invocation(settings, adapters, context, sink)
    return summary, sink.serialize_metric_set(), invoker


def _metric_names(emf: dict[str, Any]) -> set[str]:
    return {metric["Name"] for metric in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}


def test_a_complete_run_emits_sync_succeeded_with_the_service_dimension(
    app: ModuleType, tables: Tables
) -> None:
    summary, emf, invoker = _invoke(app, tables)
    assert summary["status"] == "complete"
    assert emf["SyncSucceeded"] == [1.0]
    assert emf["service"] == "audit-log-sync"
    assert emf["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert emf["AuditEventsStored"] == [4.0]
    assert emf["MiroRequests"] == [2.0]
    assert "MiroCreditsSpent" in emf  # every counter of the client stats is reported
    units = {m["Name"]: m["Unit"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units["DurationSeconds"] == "Seconds"
    assert units["SyncSucceeded"] == "Count"
    assert "Continuations" not in emf
    assert invoker.calls == []


def test_an_invocation_that_only_continues_itself_does_not_emit_sync_succeeded(
    app: ModuleType, tables: Tables
) -> None:
    # Less time left than the reserve from the start: the sync hands over after its first page.
    summary, emf, invoker = _invoke(app, tables, timeout_s=0.5, min_remaining_ms=1_000)
    assert summary["status"] == "continue"
    assert summary["handedOver"] is True
    assert "SyncSucceeded" not in _metric_names(emf)
    assert emf["Continuations"] == [1.0]
    assert emf["AuditPages"] == [1.0]
    assert invoker.calls == [("stack-audit-log-sync", {"source": "miro-sync.continuation", "sync": "audit"})]


def test_an_invocation_that_finds_the_lease_busy_does_not_emit_sync_succeeded(
    app: ModuleType, tables: Tables
) -> None:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    assert StateRepository(tables.state).acquire_lease(
        "audit", "other", now_ms=now_ms, until_ms=now_ms + 600_000
    )
    summary, emf, _ = _invoke(app, tables)
    assert summary["status"] == "busy"
    assert "SyncSucceeded" not in _metric_names(emf)
    assert emf["MiroRequests"] == [0.0]
