"""MembersSyncFunction's invocation: metrics (SyncSucceeded only for a complete run; only the published
names, the other counters in the summary log line), hand-over and the lost-access check of webhook
subscriptions after a complete run.

The handler's adapters are handed in: the sync's in-memory fakes, a Miro subscription listing, a
recording invoker; metrics go to a Powertools EphemeralMetrics provider whose EMF document is inspected,
logs to a Powertools Logger writing JSON lines into a buffer.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics

from miro_sync.continuation import Continuation
from miro_sync.miro.errors import MiroUnavailable
from miro_sync.miro.http import RequestStats
from miro_sync.miro.models import BoardSubscription
from miro_sync.settings.members_sync import MembersSyncSettings
from miro_sync.store.subscriptions import SubscriptionRecord
from miro_sync_cli.local.invoke import LocalLambdaContext
from tests.fixtures.functions import load_function_app
from tests.unit.sync.fakes import FakeMembersStore, FakeMiro, FakeScim, FakeStateStore
from tests.unit.sync.test_members_sync import org

FUNCTION_NAME = "stack-members-sync"


@pytest.fixture(scope="module")
def app() -> ModuleType:
    return load_function_app("members_sync")


@dataclass
class RecordingInvoker:
    calls: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)

    def invoke_async(self, function_name: str, payload: Mapping[str, Any]) -> None:
        self.calls.append((function_name, payload))


@dataclass
class CountingMiro(FakeMiro):
    """The fake org, counting its requests in container-lived stats like the real client does."""

    stats: RequestStats = field(default_factory=lambda: RequestStats(requests=50))

    def _call(self) -> None:
        self.stats.requests += 1
        super()._call()


@dataclass
class FakeSubscriptionApi:
    at_miro: dict[str, str] = field(default_factory=dict)  # subscription id -> status
    error: Exception | None = None
    listings: int = 0

    def iter_subscriptions(self, limit: int = 100) -> Iterator[BoardSubscription]:
        self.listings += 1
        if self.error is not None:
            raise self.error
        for subscription_id, status in self.at_miro.items():
            yield BoardSubscription.model_validate({"id": subscription_id, "status": status})


@dataclass
class FakeSubscriptionStore:
    records: dict[str, SubscriptionRecord] = field(default_factory=dict)  # secret hash -> record

    def put(self, record: SubscriptionRecord) -> None:
        self.records[record.secret_hash] = record

    def delete(self, secret_hash: str) -> None:
        self.records.pop(secret_hash, None)

    def list_all(self) -> Iterator[SubscriptionRecord]:
        yield from list(self.records.values())

    def find_by_subscription_id(self, subscription_id: str) -> SubscriptionRecord | None:
        return next((r for r in self.records.values() if r.subscription_id == subscription_id), None)


def _subscription(secret_hash: str, subscription_id: str, board_id: str) -> SubscriptionRecord:
    at = "2026-03-01T00:00:00.000Z"
    return SubscriptionRecord(
        secret_hash=secret_hash,
        board_id=board_id,
        status="enabled",
        created_at=at,
        updated_at=at,
        subscription_id=subscription_id,
    )


@dataclass
class Harness:
    miro: CountingMiro = field(default_factory=lambda: CountingMiro(org(25)))
    state: FakeStateStore = field(default_factory=FakeStateStore)
    members: FakeMembersStore = field(default_factory=FakeMembersStore)
    invoker: RecordingInvoker = field(default_factory=RecordingInvoker)
    subscription_api: FakeSubscriptionApi = field(
        default_factory=lambda: FakeSubscriptionApi({"sub-1": "lost_access", "sub-2": "enabled"})
    )
    subscriptions: FakeSubscriptionStore = field(
        default_factory=lambda: FakeSubscriptionStore(
            {
                "hash-1": _subscription("hash-1", "sub-1", "b1"),
                "hash-2": _subscription("hash-2", "sub-2", "b2"),
            }
        )
    )

    sink: EphemeralMetrics = field(
        default_factory=lambda: EphemeralMetrics(namespace="MiroSync", service="members-sync")
    )
    log_lines: io.StringIO = field(default_factory=io.StringIO)
    # Powertools configures a service's logger once: a service name of its own per harness.
    logger: Logger = field(init=False)

    def __post_init__(self) -> None:
        self.logger = Logger(
            service=f"members-sync-{uuid.uuid4().hex}", logger_handler=logging.StreamHandler(self.log_lines)
        )

    def logged(self, message: str) -> dict[str, Any]:
        (line,) = [
            entry
            for entry in map(json.loads, self.log_lines.getvalue().splitlines())
            if entry["message"] == message
        ]
        return line

    def invoke(
        self,
        app: ModuleType,
        *,
        webhook_enabled: bool = True,
        timeout_s: float = 900,
        min_remaining_ms: int = 60_000,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        settings = MembersSyncSettings.from_env(
            {
                "MIRO_ORG_ID": "org-1",
                "MIRO_TOKEN_SECRET": "miro-token",
                "MEMBERS_TABLE": "members",
                "STATE_TABLE": "state",
                "MEMBERS_PAGE_SIZE": "10",
                "SYNC_MIN_REMAINING_MS": str(min_remaining_ms),
                "WEBHOOK_ENABLED": "true" if webhook_enabled else "false",
            }
        )
        adapters = app.Adapters(
            miro=self.miro,
            scim=FakeScim({}),
            members=self.members,
            state=self.state,
            continuation=Continuation(self.invoker, FUNCTION_NAME),
            usage=(self.miro.stats,),
            subscription_api=self.subscription_api,
            subscriptions=self.subscriptions,
        )
        context = LocalLambdaContext(function_name=FUNCTION_NAME, memory_limit_in_mb=512, timeout_s=timeout_s)
        summary = app.run_invocation(settings, adapters, context, self.sink, self.logger)
        return summary, self.sink.serialize_metric_set()


def _metric_names(emf: dict[str, Any]) -> set[str]:
    return {metric["Name"] for metric in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}


def test_a_complete_run_emits_sync_succeeded_with_the_service_dimension(app: ModuleType) -> None:
    harness = Harness()
    summary, emf = harness.invoke(app)
    assert summary["outcome"] == "complete"
    assert emf["SyncSucceeded"] == [1.0]
    assert emf["service"] == "members-sync"
    assert emf["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert emf["MembersWritten"] == [25.0]
    # Only this invocation's share of the container-lived client counters (they started at 50).
    assert emf["MiroRequests"] == [float(harness.miro.requests)]
    units = {m["Name"]: m["Unit"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units["DurationSeconds"] == "Seconds"
    assert units["SyncSucceeded"] == "Count"
    assert "Continuations" not in emf
    assert harness.invoker.calls == []


def test_only_what_an_alarm_or_a_dashboard_needs_is_published_the_other_counters_are_logged(
    app: ModuleType,
) -> None:
    harness = Harness()
    summary, emf = harness.invoke(app, webhook_enabled=False)
    assert _metric_names(emf) == {
        "SyncSucceeded",
        "DurationSeconds",
        "MiroRequests",
        "MiroRateLimited429",
        "MembersWritten",
    }
    finished = harness.logged("members sync invocation finished")
    assert (finished["outcome"], finished["fetched"], finished["handedOver"]) == ("complete", 25, False)
    assert finished["run_id"] == summary["runId"]
    counters = finished["counters"]
    assert (counters["MembersFetched"], counters["MembersUnchanged"], counters["Resumes"]) == (25, 0, 0)
    # Every other counter of the run and of the client stats: in the log line, not in the EMF.
    other_counters = {
        "MembersFetched",
        "MembersUnchanged",
        "MembersRemoved",
        "WriteRequests",
        "ScimLookups",
        "Resumes",
        "MiroRetries",
        "MiroCreditsSpent",
        "MiroTokenRefreshes",
        "MiroPacedSeconds",
        "MiroRetryWaitSeconds",
    }
    assert counters.keys() == other_counters
    assert not other_counters & emf.keys()


def test_an_invocation_that_only_continues_itself_does_not_emit_sync_succeeded(app: ModuleType) -> None:
    harness = Harness()
    # Less time left than the reserve from the start: the sync hands over after its first phase.
    summary, emf = harness.invoke(app, timeout_s=0.5, min_remaining_ms=1_000)
    assert summary["outcome"] == "continue"
    assert summary["handedOver"] is True
    assert "SyncSucceeded" not in _metric_names(emf)
    assert emf["Continuations"] == [1.0]
    assert harness.invoker.calls == [
        (FUNCTION_NAME, {"source": "miro-sync.continuation", "runId": summary["runId"]})
    ]
    assert harness.logged("members sync invocation finished")["handedOver"] is True
    # The lost-access check belongs to the end of a complete run, not to every invocation.
    assert harness.subscription_api.listings == 0


def test_an_invocation_that_finds_the_lease_busy_does_not_emit_sync_succeeded(app: ModuleType) -> None:
    harness = Harness()
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    assert harness.state.acquire_lease("members", "other", now_ms=now_ms, until_ms=now_ms + 600_000)
    summary, emf = harness.invoke(app)
    assert summary["outcome"] == "busy"
    assert "SyncSucceeded" not in _metric_names(emf)
    assert emf["MiroRequests"] == [0.0]
    assert harness.subscription_api.listings == 0
    assert harness.logged("another invocation holds the members sync lease; nothing to do")


def test_a_failed_run_emits_sync_failed_and_no_success(app: ModuleType) -> None:
    harness = Harness()
    harness.miro.faults.at, harness.miro.faults.error = 1, MiroUnavailable("Miro is down", status=503)
    with pytest.raises(MiroUnavailable):
        harness.invoke(app)
    emf = harness.sink.serialize_metric_set()
    assert emf["SyncFailed"] == [1.0]
    assert "SyncSucceeded" not in _metric_names(emf)
    # The usage is reported for failed invocations too (the aux listings run concurrently).
    assert emf["MiroRequests"] == [float(harness.miro.requests)]
    assert harness.miro.requests >= 1
    assert harness.subscription_api.listings == 0
    # The counters that are not published are logged with the failure.
    failed = harness.logged("members sync failed; the checkpoint is kept and the next run resumes")
    assert "MiroCreditsSpent" in failed["counters"]
    assert "MiroCreditsSpent" not in emf


def test_a_complete_run_with_the_webhook_reports_and_records_lost_access(app: ModuleType) -> None:
    harness = Harness()
    summary, emf = harness.invoke(app)
    assert summary["outcome"] == "complete"
    assert emf["WebhookSubscriptionsLostAccess"] == [1.0]
    assert harness.subscriptions.records["hash-1"].status == "lost_access"
    assert harness.subscriptions.records["hash-2"].status == "enabled"
    assert emf["SyncSucceeded"] == [1.0]


def test_without_the_webhook_no_subscription_is_checked(app: ModuleType) -> None:
    harness = Harness()
    summary, emf = harness.invoke(app, webhook_enabled=False)
    assert summary["outcome"] == "complete"
    assert harness.subscription_api.listings == 0
    assert "WebhookSubscriptionsLostAccess" not in _metric_names(emf)
    assert harness.subscriptions.records["hash-1"].status == "enabled"


def test_a_failing_lost_access_check_never_fails_the_sync(app: ModuleType) -> None:
    harness = Harness()
    harness.subscription_api.error = MiroUnavailable("webhooks endpoint down", status=503)
    summary, emf = harness.invoke(app)
    assert summary["outcome"] == "complete"
    assert harness.subscription_api.listings == 1
    assert emf["WebhookLostAccessCheckFailed"] == [1.0]
    assert emf["SyncSucceeded"] == [1.0]
    assert "SyncFailed" not in _metric_names(emf)
    assert harness.subscriptions.records["hash-1"].status == "enabled"
