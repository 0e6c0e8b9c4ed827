"""AuditLogSyncFunction's invocation: metrics (SyncSucceeded only for a complete run; only the published
names, the other counters in the summary log line) and hand-over.

The handler's adapters are handed in: the real Miro client over a scripted transport, the real
repositories on moto, a recording invoker; metrics go to a Powertools EphemeralMetrics provider whose
EMF document is inspected, logs to a Powertools Logger writing JSON lines into a buffer."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import httpx
import pytest
from aws_lambda_powertools import Logger
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


@dataclass
class Invocation:
    summary: dict[str, Any]
    emf: dict[str, Any]
    invoker: RecordingInvoker
    log_lines: list[dict[str, Any]]

    def logged(self, message: str) -> dict[str, Any]:
        (line,) = [entry for entry in self.log_lines if entry["message"] == message]
        return line


def _invoke(
    app: ModuleType, tables: Tables, *, timeout_s: float = 900, min_remaining_ms: int = 60_000
) -> Invocation:
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
    stream = io.StringIO()
    # Powertools configures a service's logger once: a service name of its own per invocation.
    logger = Logger(
        service=f"audit-log-sync-{uuid.uuid4().hex}", logger_handler=logging.StreamHandler(stream)
    )
    summary = app.run_invocation(settings, adapters, context, sink, logger)
    log_lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return Invocation(summary, sink.serialize_metric_set(), invoker, log_lines)


def _metric_names(emf: dict[str, Any]) -> set[str]:
    return {metric["Name"] for metric in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}


def test_a_complete_run_emits_sync_succeeded_with_the_service_dimension(
    app: ModuleType, tables: Tables
) -> None:
    invocation = _invoke(app, tables)
    summary, emf, invoker = invocation.summary, invocation.emf, invocation.invoker
    assert summary["outcome"] == "complete"
    assert emf["SyncSucceeded"] == [1.0]
    assert emf["service"] == "audit-log-sync"
    assert emf["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert emf["AuditEventsStored"] == [4.0]
    assert emf["MiroRequests"] == [2.0]
    units = {m["Name"]: m["Unit"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units["DurationSeconds"] == "Seconds"
    assert units["SyncSucceeded"] == "Count"
    assert "Continuations" not in emf
    assert invoker.calls == []


def test_only_what_an_alarm_or_a_dashboard_needs_is_published_the_other_counters_are_logged(
    app: ModuleType, tables: Tables
) -> None:
    invocation = _invoke(app, tables)
    emf = invocation.emf
    assert _metric_names(emf) == {
        "SyncSucceeded",
        "DurationSeconds",
        "MiroRequests",
        "MiroRateLimited429",
        "AuditEventsStored",
    }
    finished = invocation.logged("audit log sync invocation finished")
    assert (finished["outcome"], finished["stored"], finished["handedOver"]) == ("complete", 4, False)
    counters = finished["counters"]
    assert (counters["AuditPages"], counters["AuditEventsSeen"], counters["AuditDuplicates"]) == (2, 4, 0)
    # Every other counter of the run and of the client stats: in the log line, not in the EMF.
    other_counters = {
        "AuditPages",
        "AuditEventsSeen",
        "AuditDuplicates",
        "AuditRejected",
        "AuditForwarded",
        "AuditSignalsWritten",
        "AuditWindowsNarrowed",
        "MiroRetries",
        "MiroCreditsSpent",
        "MiroTokenRefreshes",
        "MiroPacedSeconds",
        "MiroRetryWaitSeconds",
    }
    assert counters.keys() == other_counters
    assert not other_counters & emf.keys()


def test_an_invocation_that_only_continues_itself_does_not_emit_sync_succeeded(
    app: ModuleType, tables: Tables
) -> None:
    # Less time left than the reserve from the start: the sync hands over after its first page.
    invocation = _invoke(app, tables, timeout_s=0.5, min_remaining_ms=1_000)
    summary, emf, invoker = invocation.summary, invocation.emf, invocation.invoker
    assert summary["outcome"] == "continue"
    assert summary["handedOver"] is True
    assert "SyncSucceeded" not in _metric_names(emf)
    assert emf["Continuations"] == [1.0]
    finished = invocation.logged("audit log sync invocation finished")
    assert (finished["outcome"], finished["handedOver"], finished["counters"]["AuditPages"]) == (
        "continue",
        True,
        1,
    )
    assert invoker.calls == [("stack-audit-log-sync", {"source": "miro-sync.continuation", "sync": "audit"})]


def test_an_invocation_that_finds_the_lease_busy_does_not_emit_sync_succeeded(
    app: ModuleType, tables: Tables
) -> None:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    assert StateRepository(tables.state).acquire_lease(
        "audit", "other", now_ms=now_ms, until_ms=now_ms + 600_000
    )
    invocation = _invoke(app, tables)
    assert invocation.summary["outcome"] == "busy"
    assert "SyncSucceeded" not in _metric_names(invocation.emf)
    assert invocation.emf["MiroRequests"] == [0.0]
    assert invocation.logged("another invocation holds the audit log sync lease; nothing to do")
